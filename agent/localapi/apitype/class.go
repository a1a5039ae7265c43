package apitype

import "errors"

// Class is what a person can act on when something fails: the "class" of an
// Error on the wire, in the audit log and in `credagent status`. It is the
// one vocabulary of failures: the CCP client (agent/ccp), the resolver
// (agent/resolve), the local API server (agent/localapi) and its clients all
// use these constants, and README.md's troubleshooting table has one row per
// class (a test keeps the two in step).
//
// The wire names never change: runners of other vendors match on them.
type Class string

// The classes the CCP client produces. The first five are the classes Power
// Automate's troubleshooting names; the rest refine them.
const (
	ClassStoreMisconfigured Class = "store_misconfigured"  // wrong address, path or AppID
	ClassVaultUnreachable   Class = "vault_unreachable"    // network, untrusted server, proxy, Vault down
	ClassNotFound           Class = "not_found"            // no such object, or the AppID may not read it
	ClassClientCertRejected Class = "client_cert_rejected" // APPAP306E, APPAP330E, IIS 403.x
	ClassAppCertUnreadable  Class = "app_cert_unreadable"  // missing, corrupt or not for this machine
	ClassTooManyObjects     Class = "too_many_objects"     // APPAP227E/228E/229E
	ClassPasswordChanging   Class = "password_changing"    // APPAP282E
	ClassTimeout            Class = "timeout"              // no answer within the budget
	ClassInvalidRequest     Class = "invalid_request"      // refused before sending, or AIMWS030E and the like; also a malformed local API request
	ClassServerError        Class = "server_error"         // other 5xx or unparseable answers; also the agent's own failure to answer
)

// The classes the resolver adds.
const (
	ClassForbidden         Class = "forbidden"          // the policy refused the caller
	ClassRateLimited       Class = "rate_limited"       // the caller's rate limit or its requests in progress (429)
	ClassUnknownCredential Class = "unknown_credential" // no credential of that name has been delivered
	ClassCanceled          Class = "canceled"           // the caller went away
	ClassNeedsReenroll     Class = "needs_reenroll"     // the machine key cannot be used: re-enrol the machine
	ClassFeedStale         Class = "feed_stale"         // feed.fail_closed_after: the feed has given no fresh manifest
)

// The class the local API server adds.
const (
	ClassOverloaded Class = "overloaded" // the agent as a whole is at capacity (503): connections or resolutions
)

// The class a client reports itself, never sent by the agent.
const (
	ClassAgentUnreachable Class = "agent_unreachable" // the agent's socket or pipe could not be reached, or gave no answer
)

// Classes returns every class, in the order of README.md's troubleshooting
// table.
func Classes() []Class {
	return []Class{
		ClassStoreMisconfigured, ClassVaultUnreachable, ClassNotFound, ClassClientCertRejected,
		ClassAppCertUnreadable, ClassTooManyObjects, ClassPasswordChanging, ClassTimeout,
		ClassForbidden, ClassRateLimited, ClassOverloaded, ClassUnknownCredential, ClassCanceled,
		ClassFeedStale, ClassNeedsReenroll, ClassServerError, ClassInvalidRequest, ClassAgentUnreachable,
	}
}

// Known reports whether c is one of Classes.
func (c Class) Known() bool {
	for _, k := range Classes() {
		if c == k {
			return true
		}
	}
	return false
}

// Classed is an error that has a Class: *ccp.Error, *resolve.Error and
// *client.Error.
type Classed interface {
	error
	ErrorClass() Class
}

// ClassOf returns the class of the first error in err's chain that has one,
// or "".
func ClassOf(err error) Class {
	var c Classed
	if errors.As(err, &c) {
		return c.ErrorClass()
	}
	return ""
}

// IsForbidden reports whether the agent's policy refused the caller.
func IsForbidden(err error) bool { return ClassOf(err) == ClassForbidden }

// IsRateLimited reports whether the agent turned the request away for load,
// so that the same request may succeed later: the caller's own limit
// (rate_limited, 429) or the agent's as a whole (overloaded, 503). The
// answer's Retry-After (client.Error.RetryAfter, resolve.Error.RetryAfter)
// says when. Other 503s (feed_stale, needs_reenroll) are not: retrying does
// not help until someone acts.
func IsRateLimited(err error) bool {
	c := ClassOf(err)
	return c == ClassRateLimited || c == ClassOverloaded
}
