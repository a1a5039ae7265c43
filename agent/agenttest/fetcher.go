package agenttest

import (
	"context"
	"crypto/tls"
	"sync"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/secret"
	"github.com/credagent/credagent/agent/state"
)

// FakeServer is the server URL a Fetcher's accounts and errors name.
const FakeServer = "https://ccp.test"

// Fetcher is an in-memory CCP for a Resolver (it is a resolve.Fetcher):
// one password per object name. An object it does not hold is not_found
// (APPAP004E); while down, every call is vault_unreachable. Each account's
// UserName is "svc_" and the object, its Address "host.test", its
// correlation ID "corr-" and the object. It counts calls and keeps the
// reasons sent. It is safe for concurrent use.
type Fetcher struct {
	mu       sync.Mutex
	accounts map[string]string
	down     bool
	calls    int
	reasons  []string
}

// NewFetcher returns a Fetcher holding accounts (object -> password).
func NewFetcher(accounts map[string]string) *Fetcher {
	f := &Fetcher{accounts: map[string]string{}}
	for k, v := range accounts {
		f.accounts[k] = v
	}
	return f
}

// Get answers req as CCP would.
func (f *Fetcher) Get(ctx context.Context, req ccp.Request) (*ccp.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.reasons = append(f.reasons, req.Reason)
	if f.down {
		return nil, &ccp.Error{Class: apitype.ClassVaultUnreachable, Message: "connection refused", Server: FakeServer, CorrelationID: "corr-down"}
	}
	pw, ok := f.accounts[req.Object]
	if !ok {
		return nil, &ccp.Error{Class: apitype.ClassNotFound, Code: "APPAP004E", Message: "Password object matching query not found", Server: FakeServer, CorrelationID: "corr-nf"}
	}
	return &ccp.Account{
		Content:       secret.FromString(pw),
		Properties:    map[string]string{"UserName": "svc_" + req.Object, "Address": "host.test"},
		Server:        FakeServer,
		CorrelationID: "corr-" + req.Object,
	}, nil
}

// SetDown makes every later call fail as unreachable, or not.
func (f *Fetcher) SetDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// Calls is the number of calls so far.
func (f *Fetcher) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Reasons are the Reason of every call so far, in order.
func (f *Fetcher) Reasons() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.reasons...)
}

// Snapshot is a state with application RPA (fingerprint "fp1", an empty
// certificate), store "prod" of it (safe RPA-Safe) and, for each name, a
// credential of that name fetching the object of the same name from prod.
// Tests add what else they need before publishing it.
func Snapshot(names ...string) *state.Snapshot {
	s := state.Empty()
	s.Applications["RPA"] = &state.Application{AppID: "RPA", Certificate: &tls.Certificate{}, Fingerprint: "fp1"}
	s.Stores["prod"] = &state.Store{Name: "prod", AppID: "RPA", Safe: "RPA-Safe", Seq: 1}
	for _, n := range names {
		s.Credentials[n] = &state.Credential{Name: n, Store: "prod", Object: n, Seq: 1}
	}
	return s
}

// State is Snapshot(names...) published.
func State(names ...string) *state.State {
	return Publish(Snapshot(names...))
}

// Publish returns a State holding s.
func Publish(s *state.Snapshot) *state.State {
	var st state.State
	st.Publish(s)
	return &st
}
