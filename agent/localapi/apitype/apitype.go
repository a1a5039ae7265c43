// Package apitype holds the JSON types of the agent's local API, shared by
// the server (agent/localapi) and the Go client (agent/localapi/client), and
// the password encoding both sides use.
//
// Paths (HTTP/1.1 on the local socket):
//
//	POST /v1/resolve  ResolveRequest -> ResolveResponse
//	POST /v1/check    ResolveRequest -> CheckResponse
//	GET  /v1/status   -> Status
//
// Every error is an ErrorResponse, with a 4xx or 5xx status. A password is
// sent as a JSON string written by AppendPassword and read by
// DecodePassword, so that neither side passes it through encoding/json's
// pooled, never-wiped buffers.
package apitype

import (
	"time"

	"github.com/credagent/credagent/platform/harden"
)

// ResolveRequest is the body of /v1/resolve and /v1/check.
type ResolveRequest struct {
	// RunID identifies the flow run; it is sent to CCP as the Reason.
	RunID string `json:"run_id"`
	// FlowID identifies the flow, for the audit log.
	FlowID string `json:"flow_id"`
	// Names are the credentials wanted.
	Names []string `json:"names"`
}

// Limits on a ResolveRequest's strings, in bytes.
const (
	MaxNameBytes = 256
	MaxIDBytes   = 256
)

// Error is a typed failure.
type Error struct {
	// Class is what a person can act on (see Class); a newer agent may
	// send a class this one does not know.
	Class         Class  `json:"class"`
	Code          string `json:"code,omitempty"`
	Message       string `json:"message"`
	CorrelationID string `json:"correlation_id,omitempty"`
	// Rule names the policy rule that refused, if one did.
	Rule string `json:"rule,omitempty"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error Error `json:"error"`
}

// Credential is one name's answer in a ResolveResponse, without its
// password: on the wire, a successful item is this object with a "password"
// member added first.
type Credential struct {
	Username                string            `json:"username"`
	Properties              map[string]string `json:"properties,omitempty"`
	FromCache               bool              `json:"from_cache"`
	Stale                   bool              `json:"stale,omitempty"`
	CacheAgeMS              int64             `json:"cache_age_ms"`
	PasswordChangeInProcess bool              `json:"password_change_in_process"`
}

// ItemError is one name's answer when it failed.
type ItemError struct {
	Error *Error `json:"error"`
}

// ResolveResponse is, for documentation, the shape of /v1/resolve's answer:
//
//	{"results": {"NAME": {"password": "...", "username": "...", ...}
//	                    | {"error": {...}}, ...}}
//
// Results holds one member per requested name, in request order.
type ResolveResponse struct{}

// CheckResult is one name's answer in a CheckResponse.
type CheckResult struct {
	OK    bool   `json:"ok"`
	Error *Error `json:"error,omitempty"`
}

// CheckResponse is /v1/check's answer. OK is true when every name resolved.
type CheckResponse struct {
	OK      bool                   `json:"ok"`
	Results map[string]CheckResult `json:"results"`
}

// Status is /v1/status: health and readiness.
type Status struct {
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
	UptimeMS  int64     `json:"uptime_ms"`
	// Socket is the socket path or pipe name the agent listens on.
	Socket string `json:"socket"`
	// Ready is true when the agent can resolve: the machine key is usable
	// and at least one store and application are in place.
	Ready    bool     `json:"ready"`
	Problems []string `json:"problems,omitempty"`
	// Limited says this is the view of an unprivileged caller: only the
	// credentials its policy rule grants, and the agent's health.
	Limited bool `json:"limited,omitempty"`

	KeyStore     KeyStoreStatus      `json:"keystore"`
	Applications []ApplicationStatus `json:"applications"`
	Stores       []StoreStatus       `json:"stores"`
	Credentials  []CredentialStatus  `json:"credentials"`
	// Rejected are the most recent refused deliveries, newest last.
	Rejected  []RejectedDelivery `json:"rejected"`
	Hardening harden.Report      `json:"hardening"`
	// Runtime is the agent process's own figures, for finding leaks from
	// outside (the soak test samples them). Only a privileged caller gets
	// them; they hold no secret.
	Runtime *RuntimeStatus `json:"runtime,omitempty"`
	// Feed is one entry per followed feed address; empty without a feed.
	Feed []FeedStatus `json:"feed,omitempty"`
	// PendingRestart are the config keys changed in the file and reloaded,
	// whose new value the agent takes only at its next restart.
	PendingRestart []string `json:"pending_restart,omitempty"`
}

// FeedStatus is what the agent knows of one feed address (agent/feed):
// its newest accepted manifest and the last poll.
type FeedStatus struct {
	Address     string    `json:"address"` // "machine NAME" or "group NAME"
	Seq         uint64    `json:"seq"`     // 0: no manifest accepted yet
	Created     time.Time `json:"created,omitzero"`
	Expires     time.Time `json:"expires,omitzero"`
	Expired     bool      `json:"expired"`
	AgeSeconds  int64     `json:"age_s"`
	Deliveries  int       `json:"deliveries"`
	Pending     int       `json:"pending"`
	URL         string    `json:"url,omitempty"`
	LastPoll    time.Time `json:"last_poll,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// RuntimeStatus is what the Go runtime says of the agent process.
type RuntimeStatus struct {
	Goroutines int `json:"goroutines"`
	// HeapInuseBytes are the heap's spans in use (runtime.MemStats.HeapInuse).
	HeapInuseBytes uint64 `json:"heap_inuse_bytes"`
	// HeapLiveBytes is the heap marked live by the last GC: what the agent
	// holds on to, without the garbage made since.
	HeapLiveBytes uint64 `json:"heap_live_bytes"`
	HeapObjects   uint64 `json:"heap_objects"`
	GCCycles      uint64 `json:"gc_cycles"`
	// HeapFreeBytes is heap the runtime has freed but not yet returned to
	// the operating system: still resident, until its scavenger returns it.
	HeapFreeBytes uint64 `json:"heap_free_bytes"`
	// StackBytes is the heap reserved for goroutine stacks.
	StackBytes uint64 `json:"stack_bytes"`
}

// KeyStoreStatus describes the machine key.
type KeyStoreStatus struct {
	Backend        string `json:"backend"`
	HardwareBacked bool   `json:"hardware_backed"`
	KeyID          string `json:"key_id,omitempty"`
	// Detail is the backend's own description: the device, the provider,
	// and why the key is in software when a TPM was tried first.
	Detail string `json:"detail,omitempty"`
	// NeedsReenroll explains why the machine key is unusable, if it is.
	NeedsReenroll string `json:"needs_reenroll,omitempty"`
}

// ApplicationStatus is one application identity and its certificate.
type ApplicationStatus struct {
	AppID       string    `json:"app_id"`
	Owner       string    `json:"owner,omitempty"`
	Serial      string    `json:"serial"`
	Fingerprint string    `json:"fingerprint"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	Expired     bool      `json:"expired"`
	// ExpiresSoon is set within the configured expiry warning.
	ExpiresSoon bool `json:"expires_soon"`
}

// StoreStatus is one CCP store and what the agent has seen of it.
type StoreStatus struct {
	Name           string        `json:"name"`
	Owner          string        `json:"owner,omitempty"`
	AppID          string        `json:"app_id"`
	Servers        []string      `json:"servers"`
	CacheTTL       time.Duration `json:"cache_ttl_ns,omitempty"`
	CacheMaxStale  time.Duration `json:"cache_max_stale_ns,omitempty"`
	LastSuccess    time.Time     `json:"last_success,omitzero"`
	LastError      string        `json:"last_error,omitempty"`
	LastErrorClass string        `json:"last_error_class,omitempty"`
	LastErrorAt    time.Time     `json:"last_error_at,omitzero"`
	// ServerHealth is each server's record since the store's CCP client
	// was built (the store's or its certificate's last delivery, or the
	// agent's start or reload); empty until the store is first used.
	ServerHealth []ServerStatus `json:"server_health,omitempty"`
}

// ServerStatus is what the agent has seen of one CCP server of a store.
type ServerStatus struct {
	Server string `json:"server"` // as delivered: scheme, host, port
	// Successes and Errors count HTTP attempts. An error may be CCP
	// answering that an object does not exist: LastErrorClass tells.
	Successes      uint64    `json:"successes"`
	Errors         uint64    `json:"errors"`
	LastSuccess    time.Time `json:"last_success,omitzero"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
	LastErrorClass string    `json:"last_error_class,omitempty"`
	LastErrorCode  string    `json:"last_error_code,omitempty"`
	// TLS12Fallback: the server asks for the client certificate only
	// after a TLS 1.3 handshake, which the agent cannot answer, so the
	// agent speaks TLS 1.2 to it until it restarts.
	TLS12Fallback bool `json:"tls12_fallback,omitempty"`
}

// CredentialStatus is one delivered credential name.
type CredentialStatus struct {
	Name  string `json:"name"`
	Owner string `json:"owner,omitempty"`
	Store string `json:"store"`
}

// RejectedDelivery is a delivery that was refused.
type RejectedDelivery struct {
	File       string    `json:"file"`
	DeliveryID string    `json:"delivery_id,omitempty"`
	Kind       string    `json:"kind,omitempty"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

// ProbeResult is one line of POST /v1/doctor/stores: the agent's own probe
// of a CCP store (DNS, TCP, TLS, and the client certificate accepted), run in
// the agent because only it holds the applications' private keys.
type ProbeResult struct {
	Name   string `json:"name"`
	Level  string `json:"level"` // PASS, WARN or FAIL
	Detail string `json:"detail,omitempty"`
	Fix    string `json:"fix,omitempty"`
}

// ProbeResponse is the body of POST /v1/doctor/stores.
type ProbeResponse struct {
	Results []ProbeResult `json:"results"`
}
