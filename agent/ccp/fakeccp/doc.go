// Package fakeccp is a fake CyberArk Central Credential Provider (CCP) that
// behaves like the real one, as written up in the project's ccp-api.md
// (sections 1 to 4): the same request parsing, the same flat all-string JSON
// bodies, the same error codes, statuses and message texts, IIS-style HTML
// pages where IIS answers by itself, and the same application
// authentication (certificate serial numbers, certificate attributes,
// allowed machines) and safe permissions.
//
// It is used like net/http/httptest:
//
//	pki, err := fakeccp.EnsureDevPKI(t.TempDir())
//	fix, err := fakeccp.LoadFixture(pki.FixtureFile)
//	srv, err := fakeccp.New(fix, pki.ServerOptions())
//	err = srv.Start()
//	defer srv.Close()
//	// GET srv.AccountsURL()+"?AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin"
//	// with pki.ClientTLSConfig().
//
// # Fixtures
//
// A fixture (YAML, or JSON, which is YAML too) describes applications,
// safes, accounts, faults and the settings for the points ccp-api.md leaves
// open. It is decoded strictly: an unknown key is an error, and every error
// names the file, the line and the problem. See Fixture for the format and
// dev_fixture.yaml.tmpl for the dev fixture that EnsureDevPKI writes.
//
// # Control
//
// A running Server can be changed from Go (SetPassword, SetChangeInProgress,
// SetFaults) or over a small JSON admin API on a separate plain-HTTP
// listener (see the Admin* route constants). Counters and an audit of every
// request (AppID, query, result, client certificate serial) can be read both
// ways.
//
// # Secrets
//
// The fake's logs never contain passwords or query strings. Request logs
// are written at debug level and carry the AppID, status, code and client
// serial only.
package fakeccp
