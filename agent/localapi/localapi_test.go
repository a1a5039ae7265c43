package localapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/secret/secrettest"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/platform/harden"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
	"github.com/rs/zerolog"
)

// planted must never appear in any log.
const planted = agenttest.Planted

// newFakeCCP is the shared in-memory CCP holding sap and db.
func newFakeCCP() *agenttest.Fetcher {
	return agenttest.NewFetcher(map[string]string{"sap": planted, "db": "db-" + planted})
}

// gatedCCP holds every call until gate is closed, announcing each on entered.
type gatedCCP struct {
	*agenttest.Fetcher
	gate    chan struct{}
	entered chan struct{}
}

func (g *gatedCCP) Get(ctx context.Context, req ccp.Request) (*ccp.Account, error) {
	g.entered <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Fetcher.Get(ctx, req)
}

type harness struct {
	path   string
	client *client.Client
	audit  *agenttest.LockedBuffer
	log    *agenttest.LockedBuffer
	served chan error
	stop   context.CancelFunc
}

type setup struct {
	cfg     localapi.Config
	fetcher resolve.Fetcher
	policy  *resolve.Policy
	rate    float64
	burst   int
	listen  func(t *testing.T) (string, localsock.ListenOptions)
	quiet   bool // no audit (benchmarks)
	status  *apitype.Status
}

func testState() *state.State { return agenttest.State("sap", "db", "gone") }

func start(t testing.TB, su setup) *harness {
	t.Helper()
	h := &harness{audit: &agenttest.LockedBuffer{}, log: &agenttest.LockedBuffer{}}
	if su.fetcher == nil {
		su.fetcher = newFakeCCP()
	}
	self := localsocktest.SelfIdentity(t)
	pol := resolve.Policy{Rules: []resolve.Rule{{Name: "self", UIDs: self.UIDs, SIDs: self.SIDs, Credentials: []string{"sap", "db", "gone"}}}}
	if su.policy != nil {
		pol = *su.policy
	}
	audit := zerolog.New(h.audit)
	if su.quiet {
		audit = zerolog.Nop()
	}
	r, err := resolve.New(resolve.Options{
		State:         testState(),
		NewFetcher:    func(*state.Store, *state.Application) (resolve.Fetcher, error) { return su.fetcher, nil },
		Policy:        pol,
		RatePerSecond: su.rate, RateBurst: su.burst,
		Audit: audit,
		Log:   zerolog.New(h.log),
	})
	if err != nil {
		t.Fatal(err)
	}
	var opts localsock.ListenOptions
	if su.listen != nil {
		h.path, opts = su.listen(t.(*testing.T))
	} else {
		h.path, opts = localsocktest.DevPath(t), localsock.ListenOptions{Dev: true}
	}
	ln, err := localsock.Listen(h.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := localapi.NewServer(localapi.Options{
		Resolver: r,
		Config:   su.cfg,
		Log:      zerolog.New(h.log),
		Status: func(context.Context) apitype.Status {
			if su.status != nil {
				return *su.status
			}
			return apitype.Status{Socket: h.path, Ready: true, Hardening: harden.Report{Measures: []harden.Measure{{Name: "x", Applied: true}}}}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	h.served = make(chan error, 1)
	go func() { h.served <- srv.Serve(ctx, ln) }()
	h.client = client.New(h.path)
	t.Cleanup(func() {
		cancel()
		if err := <-h.served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		h.client.Close()
		// Its start too: a password cut short is still a leak.
		needles := append(agenttest.Needles(t, nil, planted, "db-"+planted), secrettest.Needle{What: "start of a password", Bytes: []byte(planted[:7])})
		agenttest.NoSecrets(t, "the audit", h.audit.Bytes(), needles)
		agenttest.NoSecrets(t, "the log", h.log.Bytes(), needles)
	})
	return h
}

// raw sends one hand-made request and returns status, headers and body.
func (h *harness) raw(t *testing.T, method, path, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return localsock.Dial(ctx, h.path)
	}}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequest(method, "http://credagent"+path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (h *harness) auditRecords(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(h.audit.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestResolveCheckStatus(t *testing.T) {
	h := start(t, setup{})
	ctx := context.Background()
	res, err := h.client.Resolve(ctx, "run-1", "flow-1", "sap", "gone", "db")
	if err != nil {
		t.Fatal(err)
	}
	sap := res.Get("sap")
	if sap.Err != nil || sap.Username != "svc_sap" || sap.Password.RevealString() != planted || sap.Properties["Address"] != "host.test" || sap.FromCache {
		t.Errorf("sap: %+v", sap)
	}
	if db := res.Get("db"); db.Err != nil || db.Password.RevealString() != "db-"+planted {
		t.Errorf("db: %+v", db)
	}
	if g := res.Get("gone"); g.Err == nil || g.Err.Class != "not_found" || g.Err.Code != "APPAP004E" || g.Err.CorrelationID != "corr-nf" {
		t.Errorf("gone: %+v", g.Err)
	}
	if res.Err() == nil {
		t.Error("Resolution.Err is nil with a failed name")
	}
	pw := sap.Password
	res.Wipe()
	if !bytes.Equal(pw.Reveal(), make([]byte, len(planted))) {
		t.Error("Wipe left the password")
	}

	checks, err := h.client.Check(ctx, "run-1", "", "sap", "gone")
	if err != nil {
		t.Fatal(err)
	}
	if checks["sap"] != nil || apitype.ClassOf(checks["gone"]) != "not_found" {
		t.Errorf("check: %v", checks)
	}
	_, _, body := h.raw(t, "POST", "/v1/check", `{"names":["sap"]}`, nil)
	if strings.Contains(body, "Pl4nted") || !strings.Contains(body, `"ok":true`) {
		t.Errorf("check body: %s", body)
	}

	st, err := h.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Socket != h.path || !st.Ready || st.Version == "" || st.StartedAt.IsZero() || len(st.Hardening.Measures) != 1 {
		t.Errorf("status %+v", st)
	}

	recs := h.auditRecords(t)
	if len(recs) != 6 {
		t.Fatalf("%d audit records, want 6 (3 resolve + 3 check)", len(recs))
	}
	outcomes := map[string]int{}
	for _, r := range recs {
		outcomes[fmt.Sprint(r["op"], "/", r["outcome"])]++
		if r["caller_pid"] != float64(os.Getpid()) {
			t.Errorf("audit caller pid %v", r["caller_pid"])
		}
	}
	if outcomes["resolve/ok"] != 2 || outcomes["resolve/error"] != 1 || outcomes["check/ok"] != 2 || outcomes["check/error"] != 1 {
		t.Errorf("audit outcomes %v", outcomes)
	}
}

func TestRequestLimits(t *testing.T) {
	h := start(t, setup{cfg: localapi.Config{Limits: localapi.Limits{MaxRequestBytes: 512, MaxCredentials: 3}}})
	many := `{"names":["a","b","c","d"]}`
	big := `{"run_id":"` + strings.Repeat("x", 600) + `","names":["sap"]}`
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    map[string]string
		status int
		class  string
		msg    string
	}{
		{"origin", "POST", "/v1/resolve", `{"names":["sap"]}`, map[string]string{"Origin": "https://evil.example"}, 403, "forbidden", "browser"},
		{"referer", "GET", "/v1/status", "", map[string]string{"Referer": "https://evil.example/x"}, 403, "forbidden", "browser"},
		{"oversized", "POST", "/v1/resolve", big, nil, 413, "invalid_request", "larger than 512"},
		{"too many names", "POST", "/v1/resolve", many, nil, 400, "invalid_request", "at most 3"},
		{"malformed", "POST", "/v1/resolve", `{"names":["sap"`, nil, 400, "invalid_request", "invalid JSON"},
		{"unknown field", "POST", "/v1/resolve", `{"names":["sap"],"pasword":"x"}`, nil, 400, "invalid_request", "pasword"},
		{"trailing data", "POST", "/v1/resolve", `{"names":["sap"]} {}`, nil, 400, "invalid_request", "after the request"},
		{"no names", "POST", "/v1/check", `{"run_id":"r"}`, nil, 400, "invalid_request", "at least one"},
		{"empty body", "POST", "/v1/resolve", ``, nil, 400, "invalid_request", "empty"},
		{"duplicate", "POST", "/v1/resolve", `{"names":["sap","sap"]}`, nil, 400, "invalid_request", "twice"},
		{"control char", "POST", "/v1/resolve", `{"names":["sa\u0000p"]}`, nil, 400, "invalid_request", "control"},
		{"bytes that are not UTF-8", "POST", "/v1/resolve", "{\"run_id\":\"run-\xff\xfe\",\"names\":[\"sap\"]}", nil, 400, "invalid_request", "not valid UTF-8"},
		{"wrong type", "POST", "/v1/resolve", `{"names":"sap"}`, nil, 400, "invalid_request", "invalid JSON"},
		{"case-variant key", "POST", "/v1/resolve", `{"Names":["sap"]}`, nil, 400, "invalid_request", `unknown key "Names"`},
		{"case-variant duplicate", "POST", "/v1/resolve", `{"names":["sap"],"NAMES":["hr"]}`, nil, 400, "invalid_request", `unknown key "NAMES"`},
		{"duplicate key", "POST", "/v1/resolve", `{"names":["hr"],"names":["sap"]}`, nil, 400, "invalid_request", `duplicate key "names"`},
		{"content type", "POST", "/v1/resolve", `{"names":["sap"]}`, map[string]string{"Content-Type": "text/plain"}, 415, "invalid_request", "application/json"},
		{"unknown path", "GET", "/v2/resolve", "", nil, 404, "not_found", "no such endpoint"},
		{"not granted", "POST", "/v1/resolve", `{"names":["sap","hr"]}`, nil, 403, "forbidden", `rule "self" does not grant "hr"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := h.raw(t, tt.method, tt.path, tt.body, tt.hdr)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			var er apitype.ErrorResponse
			if err := json.Unmarshal([]byte(body), &er); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if string(er.Error.Class) != tt.class || !strings.Contains(er.Error.Message, tt.msg) {
				t.Errorf("error %+v, want class %s and %q", er.Error, tt.class, tt.msg)
			}
		})
	}
	// The forbidden request was audited, naming the rule.
	var found bool
	for _, r := range h.auditRecords(t) {
		if r["outcome"] == "refused" && r["rule"] == "self" && r["credential"] == "hr" {
			found = true
		}
	}
	if !found {
		t.Error("no audit record for the refusal")
	}
}

func TestRateLimitHTTP(t *testing.T) {
	h := start(t, setup{rate: 0.5, burst: 1})
	ctx := context.Background()
	res, err := h.client.Resolve(ctx, "r", "f", "sap")
	if err != nil {
		t.Fatal(err)
	}
	res.Wipe()
	_, err = h.client.Resolve(ctx, "r", "f", "sap")
	var e *client.Error
	if !errors.As(err, &e) || e.HTTPStatus != 429 || !apitype.IsRateLimited(err) || e.RetryAfter < time.Second {
		t.Fatalf("second call: %#v", err)
	}
}

func TestConcurrencyCap(t *testing.T) {
	g := &gatedCCP{Fetcher: newFakeCCP(), gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	h := start(t, setup{cfg: localapi.Config{Limits: localapi.Limits{MaxConcurrent: 2}}, fetcher: g})
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := h.client.Resolve(ctx, "r", "f", "sap")
			if err != nil {
				t.Errorf("held request: %v", err)
				return
			}
			if res.Get("sap").Password.RevealString() != planted {
				t.Error("held request got the wrong password")
			}
			res.Wipe()
		}()
	}
	<-g.entered
	<-g.entered
	status, hdr, body := h.raw(t, "POST", "/v1/resolve", `{"names":["sap"]}`, nil)
	if status != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(body, "overloaded") {
		t.Errorf("third request: %d %v %s", status, hdr, body)
	}
	close(g.gate)
	wg.Wait()
}

func TestSlowClient(t *testing.T) {
	h := start(t, setup{cfg: localapi.Config{Timeouts: localapi.Timeouts{ReadTimeout: 200 * time.Millisecond}}})
	tests := []struct {
		name string
		send string
	}{
		{"headers never finish", "POST /v1/resolve HTTP/1.1\r\nHost: x\r\n"},
		{"body never comes", "POST /v1/resolve HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"na"},
		{"nothing at all", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := localsock.Dial(context.Background(), h.path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tt.send)
			begin := time.Now()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, bufio.NewReader(c)) // until the server hangs up
			if d := time.Since(begin); d > 3*time.Second {
				t.Errorf("server kept a slow client for %v", d)
			}
		})
	}
	// The server still serves.
	res, err := h.client.Resolve(context.Background(), "r", "f", "sap")
	if err != nil {
		t.Fatal(err)
	}
	res.Wipe()
}

func TestGracefulShutdown(t *testing.T) {
	g := &gatedCCP{Fetcher: newFakeCCP(), gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	h := start(t, setup{fetcher: g})
	done := make(chan error, 1)
	go func() {
		res, err := h.client.Resolve(context.Background(), "r", "f", "sap")
		if err == nil {
			if res.Get("sap").Err != nil {
				err = res.Get("sap").Err
			}
			res.Wipe()
		}
		done <- err
	}()
	<-g.entered
	h.stop()
	time.Sleep(50 * time.Millisecond)
	// New connections are refused while the old request drains. On
	// Windows the pipe's name lives on with the draining connection's
	// instance, so a dial finds every instance busy and waits (go-winio
	// retries ERROR_PIPE_BUSY until its context ends): bound it.
	dctx, dcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	if c, err := localsock.Dial(dctx, h.path); err == nil {
		c.Close()
		t.Error("dial succeeded during shutdown")
	}
	dcancel()
	close(g.gate)
	if err := <-done; err != nil {
		t.Errorf("in-flight request: %v", err)
	}
	err := <-h.served
	h.served <- err // for the cleanup
	if err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// clientEnv makes the test binary a client run as another user: it resolves
// "sap" over the socket named there and exits 0 on a 403 naming no rule, 3
// if the kernel refused the connection, 1 otherwise.
const clientEnv = "LOCALAPI_TEST_CLIENT"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode, os.Getenv(childSockEnv)))
	}
	if path := os.Getenv(clientEnv); path != "" {
		c := client.New(path)
		_, err := c.Resolve(context.Background(), "run-x", "flow-x", "sap")
		fmt.Println("result:", err)
		var e *client.Error
		switch {
		case errors.As(err, &e) && e.HTTPStatus == 403 && e.Class == "forbidden" && strings.Contains(e.Message, "no rule matched"):
			os.Exit(0)
		case errors.Is(err, syscall.EACCES):
			os.Exit(3)
		}
		os.Exit(1)
	}
	os.Exit(m.Run())
}
