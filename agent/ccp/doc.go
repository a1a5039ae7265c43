// Package ccp is the client for CyberArk's Central Credential Provider: it
// fetches one account with an application's TLS client certificate.
//
// A Client is one application identity against one store. Build it once
// (New, with the Options for a store) and keep it: it holds the connection pool,
// so that a busy machine makes one TLS handshake and not one per request.
//
// # Requests
//
// Get sends GET {server}{path}/api/Accounts with the Request's parameters in
// a fixed order, spaces as %20 and backslashes percent-encoded. Values CCP
// refuses ('+', '&', '%', and ';' except between the pairs of a Query) are
// refused before anything is sent, with apitype.ClassInvalidRequest.
//
// # TLS
//
// The client certificate comes from a CertSource, asked before every Get and
// on every handshake. When its fingerprint changes, the Client starts a new
// pool and a new session cache, so the next request presents the new
// certificate (a resumed session would carry the old one). Renegotiation is
// allowed once, as IIS requests certificates that way; HTTP/2, which forbids
// it, is off unless Options.HTTP2. The server must chain to the system roots
// or the store's CA bundle, and match a pin when pins are set.
//
// # Failures
//
// Every error is an *Error with a Class a person can act on, CCP's code and
// message, the HTTP status, the server and a correlation ID. Transient
// failures (connection errors, timeouts, 5xx other than APPAP282E, and
// APPAP007E) are retried with backoff and jitter, failing over between
// servers, the one that last answered first; authentication failures and
// not-found never are. APPAP282E is waited out, bounded, when the request
// sets FailRequestOnPasswordChange.
//
// No error and no log line holds a password or a query string with values:
// the URL never appears, and the criteria CCP echoes in its messages are
// withheld.
//
// # Coalescing
//
// Concurrent Gets with an equal Request (Reason included, so that CCP's audit
// names every reason it served) share one call to CCP; each gets its own copy
// of the password to wipe, and the shared one is wiped when the last caller
// has its copy.
package ccp
