package localapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/rs/zerolog"
)

// rawExchange sends one hand-written request on a new connection and reads
// the response (exchange, its body read into a buffer).
func rawExchange(t *testing.T, path, req string) *http.Response {
	t.Helper()
	resps, bodies, _, _ := exchange(t, path, req, 1)
	resps[0].Body = io.NopCloser(strings.NewReader(bodies[0]))
	return resps[0]
}

// TestOneClientShape sends what the API's client never sends: each must be
// refused with a 4xx and a message, where net/http alone would serve it.
func TestOneClientShape(t *testing.T) {
	h := start(t, setup{})
	body := `{"names":["sap"]}`
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	tests := []struct {
		name, req string
		want      int
		msg       string
	}{
		{"plain request is served", "GET /v1/status HTTP/1.1\r\nHost: credagent\r\n\r\n", 200, ""},
		{"Content-Length and Transfer-Encoding", "POST /v1/resolve HTTP/1.1\r\nHost: credagent\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked, 400, "Transfer-Encoding"},
		{"Transfer-Encoding alone", "POST /v1/resolve HTTP/1.1\r\nHost: credagent\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked, 400, "Transfer-Encoding"},
		{"absolute URI", "GET http://credagent/v1/status HTTP/1.1\r\nHost: credagent\r\n\r\n", 400, "absolute URI"},
		{"asterisk target", "OPTIONS * HTTP/1.1\r\nHost: credagent\r\n\r\n", 400, "must be a path"},
		{"empty Origin", "GET /v1/status HTTP/1.1\r\nHost: credagent\r\nOrigin:\r\n\r\n", 403, "Origin"},
		{"null Origin", "GET /v1/status HTTP/1.1\r\nHost: credagent\r\nOrigin: null\r\n\r\n", 403, "Origin"},
		{"empty Referer", "GET /v1/status HTTP/1.1\r\nHost: credagent\r\nReferer:\r\n\r\n", 403, "Referer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawExchange(t, h.path, tt.req)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.want || !strings.Contains(string(b), tt.msg) {
				t.Fatalf("status %d %s; want %d with %q", resp.StatusCode, b, tt.want, tt.msg)
			}
		})
	}
	if recs := h.auditRecords(t); len(recs) != 0 {
		t.Errorf("a refused request reached the resolver: %v", recs)
	}
}

// TestBodyDeadline trickles a body: the caller gets a 408 once
// api.body_timeout is over, well before the read timeout.
func TestBodyDeadline(t *testing.T) {
	h := start(t, setup{cfg: localapi.Config{Limits: localapi.Limits{BodyTimeout: 200 * time.Millisecond}, Timeouts: localapi.Timeouts{ReadTimeout: 10 * time.Second}}})
	begin := time.Now()
	resp := rawExchange(t, h.path, "POST /v1/resolve HTTP/1.1\r\nHost: credagent\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	if took := time.Since(begin); resp.StatusCode != http.StatusRequestTimeout || took > 3*time.Second {
		t.Fatalf("status %d after %v; want 408 after about 200ms", resp.StatusCode, took)
	}
}

// handlerWith is a Server's handler over a resolver with the given policy
// and fetcher, for requests that carry their identity (no socket).
func handlerWith(t *testing.T, cfg localapi.Config, pol resolve.Policy, f resolve.Fetcher, st *apitype.Status) http.Handler {
	t.Helper()
	return serverWith(t, cfg, pol, f, st).Handler()
}

// serverWith is a server with the given limits and policy over the test
// state and f, whose status is *st.
func serverWith(t *testing.T, cfg localapi.Config, pol resolve.Policy, f resolve.Fetcher, st *apitype.Status) *localapi.Server {
	t.Helper()
	r, err := resolve.New(resolve.Options{
		State:      testState(),
		NewFetcher: func(*state.Store, *state.Application) (resolve.Fetcher, error) { return f, nil },
		Policy:     pol, Audit: zerolog.Nop(), Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return localapi.NewServer(localapi.Options{Resolver: r, Config: cfg, Log: zerolog.Nop(),
		Status: func(context.Context) apitype.Status { return *st }})
}

type recorder struct {
	hdr  http.Header
	code int
	body strings.Builder
}

func (r *recorder) Header() http.Header         { return r.hdr }
func (r *recorder) WriteHeader(c int)           { r.code = c }
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }

func serve(h http.Handler, id *localsock.Identity, method, path, body string) *recorder {
	req, _ := http.NewRequestWithContext(localsock.WithIdentity(context.Background(), id), method, path, strings.NewReader(body))
	req.RequestURI = path
	rec := &recorder{hdr: http.Header{}, code: 200}
	h.ServeHTTP(rec, req)
	return rec
}

// TestPerCallerConcurrency holds a caller's requests in CCP: past
// api.max_concurrent_per_caller its next one gets a 429 at once, while
// another caller is still let in.
func TestPerCallerConcurrency(t *testing.T) {
	g := &gatedCCP{Fetcher: newFakeCCP(), gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	pol := resolve.Policy{Rules: []resolve.Rule{{Name: "runners", UIDs: []uint32{4242, 4343}, Credentials: []string{"sap"}}}}
	h := handlerWith(t, localapi.Config{Limits: localapi.Limits{MaxConcurrentPerCaller: 2, MaxConcurrent: 16}}, pol, g, &apitype.Status{})
	a := &localsock.Identity{Verified: true, UID: 4242, GID: 4242}
	b := &localsock.Identity{Verified: true, UID: 4343, GID: 4343}
	done := make(chan *recorder, 4)
	for range 2 {
		go func() { done <- serve(h, a, "POST", "/v1/resolve", `{"names":["sap"]}`) }()
	}
	<-g.entered
	<-g.entered
	third := make(chan *recorder, 1)
	go func() { third <- serve(h, a, "POST", "/v1/resolve", `{"names":["sap"]}`) }()
	select {
	case rec := <-third:
		if rec.code != http.StatusTooManyRequests || rec.hdr.Get("Retry-After") == "" || !strings.Contains(rec.body.String(), "in progress") {
			t.Errorf("third request of the same caller: %d %s", rec.code, rec.body.String())
		}
	case <-g.entered:
		t.Error("the third request of the same caller reached CCP")
	case <-time.After(5 * time.Second):
		t.Fatal("the third request of the same caller neither ran nor was refused")
	}
	go func() { done <- serve(h, b, "POST", "/v1/resolve", `{"names":["sap"]}`) }()
	select {
	case <-g.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("another caller was not let in")
	}
	close(g.gate)
	for range 3 {
		if rec := <-done; rec.code != 200 {
			t.Errorf("held request: %d %s", rec.code, rec.body.String())
		}
	}
}

// TestStatusViews checks who sees what of /v1/status: the whole view for
// privileged callers, the granted names and the health for the others. A
// name is granted as for a resolution: by the rule's credentials and its
// owners both.
func TestStatusViews(t *testing.T) {
	full := apitype.Status{
		Socket: "/run/credagent/agent.sock", Ready: true, Problems: []string{"the certificate of application RPA expired"},
		KeyStore:     apitype.KeyStoreStatus{Backend: "tpm", KeyID: "k1"},
		Applications: []apitype.ApplicationStatus{{AppID: "RPA", Serial: "0a0b"}},
		Stores: []apitype.StoreStatus{{Name: "prod", AppID: "RPA", Servers: []string{"https://ccp.corp"},
			ServerHealth: []apitype.ServerStatus{{Server: "https://ccp.corp", Successes: 1}}}},
		Credentials: []apitype.CredentialStatus{{Name: "db", Store: "prod"}, {Name: "sap", Store: "prod"}, {Name: "sap-hr", Store: "prod"},
			{Name: "a-db", Owner: "team-a", Store: "vault"}, {Name: "sap-b", Owner: "team-b", Store: "vault"}},
		Rejected: []apitype.RejectedDelivery{{File: "x.delivery", Reason: "replay"}},
	}
	pol := resolve.Policy{Rules: []resolve.Rule{
		{Name: "runner", UIDs: []uint32{4242}, Credentials: []string{"sap*"}},
		{Name: "team-a-runner", UIDs: []uint32{4444}, Credentials: []string{"*"}, Owners: []string{"team-a"}},
	}}
	h := handlerWith(t, localapi.Config{}, pol, agenttest.NewFetcher(nil), &full)
	tests := []struct {
		name      string
		id        *localsock.Identity
		wantNames []string
		wantFull  bool
	}{
		{"root", &localsock.Identity{Verified: true, UID: 0}, []string{"db", "sap", "sap-hr", "a-db", "sap-b"}, true},
		{"a runner with a rule", &localsock.Identity{Verified: true, UID: 4242}, []string{"sap", "sap-hr"}, false},
		{"a runner whose rule names an owner: not the others' names, nor the unowned", &localsock.Identity{Verified: true, UID: 4444},
			[]string{"a-db"}, false},
		{"a group member with no rule", &localsock.Identity{Verified: true, UID: 4343}, nil, false},
		{"an unverified zero identity", &localsock.Identity{}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(h, tt.id, "GET", "/v1/status", "")
			var st apitype.Status
			if err := json.Unmarshal([]byte(rec.body.String()), &st); err != nil || rec.code != 200 {
				t.Fatalf("%d %s", rec.code, rec.body.String())
			}
			var names []string
			for _, c := range st.Credentials {
				names = append(names, c.Name)
			}
			if fmt.Sprint(names) != fmt.Sprint(tt.wantNames) {
				t.Errorf("credentials %v, want %v", names, tt.wantNames)
			}
			leaks := len(st.Stores) > 0 || len(st.Applications) > 0 || len(st.Rejected) > 0 || st.KeyStore.KeyID != "" || len(st.Problems) > 0
			if tt.wantFull != leaks || st.Limited == tt.wantFull || !st.Ready {
				t.Errorf("full view %v, limited %v, ready %v; want full %v: %s", leaks, st.Limited, st.Ready, tt.wantFull, rec.body.String())
			}
			if !tt.wantFull && strings.Contains(rec.body.String(), "ccp.corp") {
				t.Errorf("an unprivileged view names a CCP server: %s", rec.body.String())
			}
		})
	}
}

// Child modes of the test binary, run as another user (see TestMain).
const (
	childEnv     = "LOCALAPI_TEST_CHILD" // status | hold:N | slow:N
	childSockEnv = "LOCALAPI_TEST_SOCK"
)

// child runs one child mode and returns the exit code.
//
//   - status prints /v1/status as JSON;
//   - hold:N opens N connections, prints how many the agent held and how
//     many it refused, then "ready", and keeps them until stdin closes;
//   - slow:N sends N resolve requests whose body never comes, prints how
//     many the agent answered at once, then "ready", and keeps them until
//     stdin closes.
func child(mode, sock string) int {
	kind, n := mode, 0
	if k, v, ok := strings.Cut(mode, ":"); ok {
		kind = k
		fmt.Sscan(v, &n)
	}
	switch kind {
	case "status":
		st, err := client.New(sock).Status(context.Background())
		if err != nil {
			fmt.Println("status:", err)
			return 1
		}
		json.NewEncoder(os.Stdout).Encode(st)
		return 0
	case "hold", "slow":
		var conns []net.Conn
		for i := range n {
			c, err := localsock.Dial(context.Background(), sock)
			if err != nil {
				fmt.Printf("dial %d: %v\n", i, err)
				return 1
			}
			conns = append(conns, c)
			if kind == "slow" {
				io.WriteString(c, "POST /v1/resolve HTTP/1.1\r\nHost: credagent\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
			}
		}
		// Read every connection at once, under one deadline: a connection
		// still silent at the deadline is held by the agent.
		deadline := time.Now().Add(time.Second)
		got := make(chan bool, len(conns))
		for _, c := range conns {
			go func() {
				buf := make([]byte, 512)
				c.SetReadDeadline(deadline)
				k, err := c.Read(buf)
				if k > 0 && kind == "slow" && !strings.Contains(string(buf[:k]), " 403 ") {
					fmt.Printf("unexpected answer: %q\n", buf[:k])
				}
				got <- k == 0 && err != nil && os.IsTimeout(err)
			}()
		}
		held, answered := 0, 0
		for range conns {
			if <-got {
				held++
			} else {
				answered++
			}
		}
		fmt.Printf("held=%d answered=%d\nready\n", held, answered)
		io.Copy(io.Discard, os.Stdin)
		for _, c := range conns {
			c.Close()
		}
		return 0
	}
	fmt.Println("unknown child mode", mode)
	return 2
}

// slowCCP answers after a delay, or fails with the context's error.
type slowCCP struct {
	*agenttest.Fetcher
	delay time.Duration
}

func (s slowCCP) Get(ctx context.Context, req ccp.Request) (*ccp.Account, error) {
	select {
	case <-time.After(s.delay):
		return s.Fetcher.Get(ctx, req)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestDeadlinesEndWithTheBody (a guard, not a fix) checks that the body and read deadlines bound
// reading the request only: a resolution that takes longer than both is
// not cancelled (net/http cancels a request's context when a read on its
// connection fails, deadline included).
func TestDeadlinesEndWithTheBody(t *testing.T) {
	h := start(t, setup{
		cfg:     localapi.Config{Limits: localapi.Limits{BodyTimeout: 100 * time.Millisecond}, Timeouts: localapi.Timeouts{ReadTimeout: 300 * time.Millisecond}},
		fetcher: slowCCP{Fetcher: newFakeCCP(), delay: 800 * time.Millisecond},
	})
	res, err := h.client.Resolve(context.Background(), "r", "f", "sap")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Wipe()
	if c := res.Get("sap"); c == nil || c.Err != nil {
		t.Fatalf("a resolution longer than the read deadlines: %+v", c)
	}
}
