package localapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/platform/localsock"
)

// TestSetLimits: limits given to a running server apply to the next
// request, and a zero field takes its default again.
func TestSetLimits(t *testing.T) {
	srv := limitedServer(t, newFakeCCP(), localapi.Limits{MaxCredentials: 1, MaxRequestBytes: 100})
	h := srv.Handler()
	a := &localsock.Identity{Verified: true, UID: 4242, GID: 4242}
	two := `{"names":["sap","db"]}`
	long := `{"run_id":"` + strings.Repeat("x", 120) + `","names":["sap"]}`

	if rec := serve(h, a, "POST", "/v1/check", two); rec.code != http.StatusBadRequest || !strings.Contains(rec.body.String(), "at most 1") {
		t.Fatalf("two names under max_credentials 1: %d %s", rec.code, rec.body.String())
	}
	if rec := serve(h, a, "POST", "/v1/check", long); rec.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a long body under max_request_bytes 100: %d %s", rec.code, rec.body.String())
	}
	srv.SetLimits(localapi.Limits{MaxCredentials: 2})
	if rec := serve(h, a, "POST", "/v1/check", two); rec.code != http.StatusOK {
		t.Errorf("two names after max_credentials 2: %d %s", rec.code, rec.body.String())
	}
	if rec := serve(h, a, "POST", "/v1/check", long); rec.code != http.StatusOK {
		t.Errorf("a long body after max_request_bytes went back to its default: %d %s", rec.code, rec.body.String())
	}
}

// TestSetLimitsConcurrency: with the one api.max_concurrent slot held,
// another caller gets a 503; a raised limit lets it in at once.
func TestSetLimitsConcurrency(t *testing.T) {
	g := &gatedCCP{Fetcher: newFakeCCP(), gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	srv := limitedServer(t, g, localapi.Limits{MaxConcurrent: 1})
	h := srv.Handler()
	a := &localsock.Identity{Verified: true, UID: 4242, GID: 4242}
	b := &localsock.Identity{Verified: true, UID: 4343, GID: 4343}
	held := make(chan *recorder, 1)
	go func() { held <- serve(h, a, "POST", "/v1/resolve", `{"names":["sap"]}`) }()
	select {
	case <-g.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first request did not reach CCP")
	}
	if rec := serve(h, b, "POST", "/v1/resolve", `{"names":["sap"]}`); rec.code != http.StatusServiceUnavailable || !strings.Contains(rec.body.String(), "more than 1 requests") {
		t.Errorf("a second request under max_concurrent 1: %d %s", rec.code, rec.body.String())
	}
	srv.SetLimits(localapi.Limits{MaxConcurrent: 2})
	second := make(chan *recorder, 1)
	go func() { second <- serve(h, b, "POST", "/v1/resolve", `{"names":["sap"]}`) }()
	select {
	case <-g.entered:
	case rec := <-second:
		t.Fatalf("a second request after max_concurrent 2: %d %s", rec.code, rec.body.String())
	case <-time.After(5 * time.Second):
		t.Fatal("a second request after max_concurrent 2 did not reach CCP")
	}
	g.gate <- struct{}{}
	g.gate <- struct{}{}
	for _, c := range []chan *recorder{held, second} {
		if rec := <-c; rec.code != http.StatusOK {
			t.Errorf("held request: %d %s", rec.code, rec.body.String())
		}
	}
}

func limitedServer(t *testing.T, f resolve.Fetcher, l localapi.Limits) *localapi.Server {
	t.Helper()
	pol := resolve.Policy{Rules: []resolve.Rule{{Name: "runners", UIDs: []uint32{4242, 4343}, Credentials: []string{"*"}}}}
	return serverWith(t, localapi.Config{Limits: l}, pol, f, &apitype.Status{})
}
