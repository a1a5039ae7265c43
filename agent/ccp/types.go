package ccp

import (
	"errors"
	"fmt"

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

// Class is what a person can act on. The first five are the classes Power
// Automate's troubleshooting names; the rest refine them.
type Class string

const (
	ClassStoreMisconfigured Class = "store_misconfigured"  // wrong address, path or AppID
	ClassVaultUnreachable   Class = "vault_unreachable"    // network, untrusted server, proxy, Vault down
	ClassNotFound           Class = "not_found"            // no such object, or the AppID may not read it
	ClassClientCertRejected Class = "client_cert_rejected" // APPAP306E, APPAP330E, IIS 403.x
	ClassAppCertUnreadable  Class = "app_cert_unreadable"  // missing, corrupt or not for this machine
	ClassTooManyObjects     Class = "too_many_objects"     // APPAP227E/228E/229E
	ClassPasswordChanging   Class = "password_changing"    // APPAP282E
	ClassTimeout            Class = "timeout"              // no answer within the budget
	ClassInvalidRequest     Class = "invalid_request"      // refused before sending, or AIMWS030E and the like
	ClassServerError        Class = "server_error"         // other 5xx or unparseable answers
)

// Error is a failed CCP call. It never carries a secret or a query string.
type Error struct {
	Class         Class
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

// ClassOf returns the class of err, or "" if err is not a *Error.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return ""
}
