// Package storeprobe is doctor's check of the CCP stores, run inside the
// agent: the application certificates' private keys never leave the
// agent's process, so `credagent doctor` asks the agent (POST
// /v1/doctor/stores) and the agent probes each store with its own CCP
// client. It takes no config: the agent passes each store's client options.
package storeprobe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/localapi/apitype"
)

// The levels of a probe step, as doctor prints them (doctor.Pass, Warn and
// Fail are these).
const (
	Pass = "PASS"
	Warn = "WARN"
	Fail = "FAIL"
)

// Result is one probe step, as the local API carries it.
type Result = apitype.ProbeResult

// Store is what probing one CCP store needs. The agent fills it from its
// state and configuration (the store, ccp.OptionsFor, and the application's
// certificate), so that the private key never leaves the agent's process
// and the probe runs the agent's own CCP client: the same transport, proxy,
// trust, pins and TLS versions as a resolution.
type Store struct {
	Name         string
	AppID        string
	Safe         string
	Folder       string
	HealthObject string // the account requested to prove the client certificate works
	// Options are the store's CCP client options (servers, path, CA
	// bundle, pins, proxy, TLS version, timeouts).
	Options    ccp.Options
	ClientCert *tls.Certificate
}

// lateCertCause and lateCertFix say what a server that asks for the client
// certificate after a TLS 1.3 handshake does, and the two ways out.
const (
	lateCertCause = "this server asked for the client certificate after a TLS 1.3 handshake (post-handshake authentication), " +
		"which the agent cannot answer: Go's TLS has no post-handshake authentication, so the certificate never reaches CCP"
	lateCertFix = "either, on the server, negotiate the client certificate at the handshake " +
		"(IIS: netsh http update sslcert ... clientcertnegotiation=enable), " +
		"or cap the store at TLS 1.2 (tls_max_version: \"1.2\" in the store delivery, or ccp.tls_max_version in the config)"
)

// ProbeStore checks each server of s in turn, through the agent's CCP
// client: name resolution, the connection (through the store's proxy if it
// has one), the TLS handshake with the chain (and pins) validated, and the
// client certificate accepted, by requesting the health-check object. It
// never sends an empty AppID or object, which would only fill CCP's error
// log.
func ProbeStore(ctx context.Context, s Store) []Result {
	if len(s.Options.Servers) == 0 {
		return []Result{{Name: "store " + s.Name, Level: Fail, Detail: "no servers", Fix: "fix the store's delivery in the portal"}}
	}
	src := func() (*tls.Certificate, error) {
		if s.ClientCert == nil {
			return nil, ccp.ErrNoClientCertificate
		}
		return s.ClientCert, nil
	}
	opts := s.Options
	opts.Retries = 0
	c, err := ccp.New(opts, src)
	if err != nil {
		return []Result{{Name: "store " + s.Name, Level: Fail, Detail: err.Error(), Fix: "fix the store's delivery in the portal"}}
	}
	defer c.CloseIdleConnections()
	var req *ccp.Request
	if s.HealthObject != "" && s.ClientCert != nil {
		req = &ccp.Request{AppID: s.AppID, Safe: s.Safe, Folder: s.Folder, Object: s.HealthObject, Reason: "credagent doctor health check"}
	}
	var out []Result
	for i, srv := range s.Options.Servers {
		out = append(out, probeServer(s, srv, c.ProbeServer(ctx, i, req))...)
	}
	return out
}

// probeServer turns one probe into results: dns, tcp, tls and client
// certificate, stopping at the first step that failed.
func probeServer(s Store, srv string, p ccp.Probe) []Result {
	prefix := "store " + s.Name + " " + srv
	r := func(step string, l string, detail, fix string) Result {
		return Result{Name: prefix + " " + step, Level: l, Detail: detail, Fix: fix}
	}
	host := srv
	if u, err := url.Parse(srv); err == nil && u.Host != "" {
		host = u.Host
	}
	msg := func() string {
		if p.Err == nil {
			return ""
		}
		return p.Err.Message
	}
	var out []Result

	switch {
	case p.Proxy != "":
		out = append(out, r("dns", Pass, "resolved by the proxy "+p.Proxy, ""))
	case p.DNSErr != nil || ccp.IsDNSFailure(p.Err):
		detail := msg()
		if p.DNSErr != nil {
			detail = p.DNSErr.Error()
		}
		return append(out, r("dns", Fail, detail, "check the name and this machine's DNS servers"))
	case len(p.Addrs) == 0:
		out = append(out, r("dns", Pass, "no lookup (an address)", ""))
	default:
		out = append(out, r("dns", Pass, strings.Join(p.Addrs, ", "), ""))
	}

	if p.Remote == "" || (p.Err != nil && p.Err.Code == "PROXY") {
		fix := "check firewalls and proxies between this machine and " + host
		if p.Proxy != "" {
			fix = "check the store's proxy " + p.Proxy + " and that it allows CONNECT to " + host
		}
		return append(out, r("tcp", Fail, msg(), fix))
	}
	via := ""
	if p.Proxy != "" {
		via = " (the proxy)"
	}
	out = append(out, r("tcp", Pass, p.Remote+via, ""))

	switch {
	case p.TLS != nil:
		detail := tls.VersionName(p.TLS.Version)
		if ch := p.TLS.VerifiedChains; len(ch) > 0 && len(ch[0]) > 0 {
			root := ch[0][len(ch[0])-1].Subject
			name := root.CommonName
			if name == "" {
				name = root.String()
			}
			detail += fmt.Sprintf(", chain to %q valid", name)
		}
		out = append(out, r("tls", Pass, detail, ""))
	case p.Err != nil && (p.Err.Class == apitype.ClassClientCertRejected || p.Err.Class == apitype.ClassAppCertUnreadable):
		out = append(out, r("tls", Pass, "server trusted; the handshake ended over the client certificate", ""))
	default:
		return append(out, r("tls", Fail, msg(), "check the server's certificate chain against the store's CA bundle and pins, and the server URL"))
	}

	const step = "client certificate"
	switch {
	case s.ClientCert == nil:
		return append(out, r(step, Fail, "no certificate for application "+s.AppID, "have the portal deliver the application's certificate"))
	case s.HealthObject == "":
		return append(out, r(step, Warn, "not checked: the store has no health-check object",
			"name a health-check account for the store in the portal (an empty request would fill CCP's error log)"))
	case p.Found && p.TLS12Fallback:
		return append(out, r(step, Warn, "accepted over TLS 1.2 only: "+lateCertCause+"; the agent falls back to TLS 1.2 with this server", lateCertFix))
	case p.Found:
		return append(out, r(step, Pass, "accepted; health-check object "+s.HealthObject+" retrieved", ""))
	case p.Err == nil:
		return append(out, r(step, Warn, "no answer", "see the agent's log"))
	case p.Err.LateCertRequest:
		return append(out, r(step, Fail, lateCertCause+" ("+p.Err.Code+": "+p.Err.Message+")", lateCertFix))
	case p.Err.Class == apitype.ClassClientCertRejected:
		return append(out, r(step, Fail, describe(p)+": application "+s.AppID+" failed authentication",
			"in CyberArk, allow the certificate (serial or issuer) for application "+s.AppID+" and the machine's address; make sure TLS is not ended before CCP"))
	case p.Err.Class == apitype.ClassNotFound:
		return append(out, r(step, Warn, "accepted, but the health-check object was not found ("+describe(p)+")",
			"create "+s.HealthObject+" in safe "+s.Safe+" or fix the store's health-check object"))
	case p.Err.Class == apitype.ClassVaultUnreachable || p.Err.Class == apitype.ClassTimeout:
		return append(out, r(step, Fail, describe(p), "the server accepted the TLS session, then failed the request: see CCP's and IIS's logs"))
	case p.Err.Class == apitype.ClassStoreMisconfigured:
		return append(out, r(step, Fail, describe(p), "check the store in the portal: server URL, web-service path, AppID"))
	default:
		return append(out, r(step, Warn, "the TLS session was accepted, CCP answered "+describe(p), "see CCP's log for the request from this machine"))
	}
}

// describe is the status, code and message of a failed probe, never the
// request's URL.
func describe(p ccp.Probe) string {
	var parts []string
	if p.HTTPStatus != 0 {
		parts = append(parts, fmt.Sprintf("%d %s", p.HTTPStatus, http.StatusText(p.HTTPStatus)))
	}
	if p.Err != nil {
		if p.Err.Code != "" && !strings.HasPrefix(p.Err.Code, "HTTP ") {
			parts = append(parts, p.Err.Code)
		}
		if p.Err.Message != "" {
			parts = append(parts, p.Err.Message)
		}
	}
	return strings.Join(parts, ", ")
}
