package ccp

import (
	"fmt"

	"github.com/credagent/credagent/agent/localapi/apitype"

	"github.com/credagent/credagent/agent/secret"
)

// Request selects one account. Either Query is set (and then Safe, Folder
// and Object are ignored by CCP), or Safe/Folder/Object are.
type Request struct {
	AppID  string
	Safe   string
	Folder string // default Root on the server
	Object string
	// Query is "Key=Value;Key=Value"; QueryFormat is "Exact" or "Regexp".
	Query       string
	QueryFormat string
	// Reason is written to CyberArk's audit log (the agent sends the run ID).
	Reason string
	// ConnectionTimeout is CCP's own budget for its trip to the Vault, in
	// seconds; 0 leaves the server's default.
	ConnectionTimeout int
	// FailRequestOnPasswordChange makes CCP answer APPAP282E while the CPM is
	// changing the password; the client then waits and retries, bounded.
	FailRequestOnPasswordChange bool
}

// Account is one account as CCP returned it.
type Account struct {
	// Content is the password.
	Content secret.Secret
	// Properties holds every other property CCP returned (UserName, Address,
	// LogonDomain, custom categories ...), as the strings CCP sent.
	Properties map[string]string
	// PasswordChangeInProcess is CCP's flag of the same name.
	PasswordChangeInProcess bool
	// Server is the base URL that answered.
	Server string
	// CorrelationID identifies this call in the agent's logs and audit.
	CorrelationID string
}

// UserName returns the account's UserName property.
func (a *Account) UserName() string { return a.Properties["UserName"] }

// Wipe zeroes the password.
func (a *Account) Wipe() { a.Content.Wipe() }

// Error is a failed CCP call. It never carries a secret or a query string.
type Error struct {
	Class         apitype.Class
	Code          string // CCP's ErrorCode (APPAP004E ...), "IIS 403.7" for an IIS page, "HTTP 403, HTML page" for another, or ""
	Message       string // CCP's ErrorMsg, or a description
	HTTPStatus    int    // 0 when no HTTP answer was had
	Server        string // base URL that answered or failed, no query
	CorrelationID string
	Err           error // the underlying error, if any
	// LateCertRequest: the attempt was TLS 1.3, the server asked for no
	// client certificate during the handshake, and its answer says none
	// came. It probably asks after the handshake (post-handshake
	// authentication), which this client cannot answer; TLS 1.2 would do.
	LateCertRequest bool
}

func (e *Error) Error() string {
	s := fmt.Sprintf("ccp: %s", e.Class)
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.HTTPStatus != 0 {
		s += fmt.Sprintf(" [HTTP %d]", e.HTTPStatus)
	}
	if e.Server != "" {
		s += " from " + e.Server
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.LateCertRequest {
		s += " (the server asked for no client certificate during the TLS 1.3 handshake; if it asks afterwards, " +
			"negotiate the certificate at the handshake on the server or set the store's tls_max_version to 1.2)"
	}
	if e.CorrelationID != "" {
		s += " (correlation " + e.CorrelationID + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorClass returns e.Class: *Error is an apitype.Classed error, so
// apitype.ClassOf, IsForbidden and IsRateLimited see it.
func (e *Error) ErrorClass() apitype.Class { return e.Class }
