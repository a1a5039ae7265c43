package resolve_test

import (
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/secret"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/rs/zerolog"
)

// certFetcher answers as CCP would for the application certificate it was
// built with: the password names the certificate's fingerprint, so a test
// sees which certificate fetched it.
type certFetcher struct {
	fp    string
	mu    *sync.Mutex
	calls *[]string
}

func (f *certFetcher) Get(ctx context.Context, req ccp.Request) (*ccp.Account, error) {
	f.mu.Lock()
	*f.calls = append(*f.calls, f.fp+" "+req.AppID+" "+req.Safe+"/"+req.Object)
	f.mu.Unlock()
	return &ccp.Account{Content: secret.FromString("pw:" + f.fp + ":" + req.Object), Properties: map[string]string{"UserName": "u"}}, nil
}

// TestOwnerIsolation: two owners (and the unowned namespace) deliver the
// same AppID, store name and credential name to one machine. Each caller
// gets its own owner's credential, fetched with its own owner's
// certificate, and nothing falls back across owners: not the store, not the
// application, not the cache.
func TestOwnerIsolation(t *testing.T) {
	s := state.Empty()
	app := func(owner, fp string) {
		s.Applications[state.Key(owner, "RPA")] = &state.Application{AppID: "RPA", Owner: owner, Certificate: &tls.Certificate{}, Fingerprint: fp}
	}
	store := func(owner, name, safe string) {
		s.Stores[state.Key(owner, name)] = &state.Store{Name: name, Owner: owner, AppID: "RPA", Safe: safe, Seq: 1, CacheTTL: time.Hour}
	}
	cred := func(owner, name, storeName, object string) {
		s.Credentials[state.Key(owner, name)] = &state.Credential{Name: name, Owner: owner, Store: storeName, Object: object, Seq: 1}
	}
	app("", "fp-none")
	app("team-a", "fp-a")
	app("team-b", "fp-b")
	store("", "prod", "Safe-None")
	store("team-a", "prod", "Safe-A")
	store("team-b", "prod", "Safe-B")
	store("team-c", "prod", "Safe-C") // team-c has a store but no application of its own
	cred("", "db", "prod", "none-db")
	cred("team-a", "db", "prod", "a-db")
	cred("team-b", "db", "prod", "b-db")
	cred("team-b", "only-b", "prod", "b-only")
	cred("team-c", "db", "prod", "c-db")
	cred("team-d", "db", "prod", "d-db") // team-d has neither store nor application
	var st state.State
	st.Publish(s)

	var mu sync.Mutex
	var calls []string
	r, err := resolve.New(resolve.Options{
		State: &st,
		NewFetcher: func(store *state.Store, app *state.Application) (resolve.Fetcher, error) {
			if store.Owner != app.Owner {
				t.Errorf("a fetcher was built for store %q of %q with the application of %q", store.Name, store.Owner, app.Owner)
			}
			return &certFetcher{fp: app.Fingerprint, mu: &mu, calls: &calls}, nil
		},
		Policy: resolve.Policy{Rules: []resolve.Rule{
			{Name: "unowned", UIDs: []uint32{1000}, Credentials: []string{"*"}},
			{Name: "runner-a", UIDs: []uint32{1001}, Credentials: []string{"*"}, Owners: []string{"team-a"}},
			{Name: "runner-b", UIDs: []uint32{1002}, Credentials: []string{"*"}, Owners: []string{"team-b"}},
			{Name: "both", UIDs: []uint32{1003}, Credentials: []string{"*"}, Owners: []string{"team-b", "team-a"}},
			{Name: "runner-c", UIDs: []uint32{1004}, Credentials: []string{"*"}, Owners: []string{"team-c"}},
			{Name: "runner-d", UIDs: []uint32{1005}, Credentials: []string{"*"}, Owners: []string{"team-d"}},
		}},
		Audit: zerolog.Nop(), Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	tests := []struct {
		name      string
		uid       uint32
		cred      string
		wantPW    string        // "" when an error is wanted
		wantClass apitype.Class // on the item, or of the whole request
	}{
		{"unowned rule gets the unowned credential", 1000, "db", "pw:fp-none:none-db", ""},
		{"owner A gets A's, with A's certificate", 1001, "db", "pw:fp-a:a-db", ""},
		{"owner B gets B's, with B's certificate", 1002, "db", "pw:fp-b:b-db", ""},
		{"owner A again, from the cache: still A's", 1001, "db", "pw:fp-a:a-db", ""},
		{"owner A cannot reach B's only credential", 1001, "only-b", "", apitype.ClassUnknownCredential},
		{"unowned rule cannot reach an owner's credential", 1000, "only-b", "", apitype.ClassUnknownCredential},
		{"a rule of two owners gets the one that has it", 1003, "only-b", "pw:fp-b:b-only", ""},
		{"a rule of two owners refuses a name both have", 1003, "db", "", apitype.ClassForbidden},
		{"an owner without an application never borrows one", 1004, "db", "", apitype.ClassAppCertUnreadable},
		{"an owner without a store never borrows one", 1005, "db", "", apitype.ClassStoreMisconfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := r.Resolve(context.Background(), &localsock.Identity{UID: tt.uid, GID: tt.uid, Verified: true}, resolve.Request{RunID: "r", Names: []string{tt.cred}})
			defer res.Wipe()
			var e *resolve.Error
			var got string
			if res.Err != nil {
				e = res.Err
			} else if it := res.Items[0]; it.Err != nil {
				e = it.Err
			} else {
				got = it.Account.Content.RevealString()
			}
			if tt.wantPW != "" {
				if e != nil || got != tt.wantPW {
					t.Fatalf("got %q (%v), want %q", got, e, tt.wantPW)
				}
				return
			}
			if e == nil || e.Class != tt.wantClass {
				t.Fatalf("got %q (%v), want class %s", got, e, tt.wantClass)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range calls {
		fp, rest, _ := strings.Cut(c, " ")
		if want := map[string]string{"fp-none": "Safe-None", "fp-a": "Safe-A", "fp-b": "Safe-B"}[fp]; !strings.Contains(rest, want+"/") {
			t.Errorf("CCP call %q: certificate and store of different owners", c)
		}
	}
	if len(calls) != 4 { // none, a, b, b-only; the second A came from the cache
		t.Errorf("%d CCP calls, want 4: %q", len(calls), calls)
	}
}
