package ccp

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/credagent/credagent/agent/localapi/apitype"
)

var req1 = Request{AppID: "App One", Safe: "partner", Folder: `Root\Secrets`, Object: "sap prod", Reason: "run 42"}

func TestGetSuccess(t *testing.T) {
	for _, v := range []struct {
		name string
		opt  []srvOpt
	}{{"tls13", nil}, {"tls12", []srvOpt{tls12}}} {
		t.Run(v.name, func(t *testing.T) {
			var got atomic.Value
			srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.Store(r.URL.Path + "|" + r.URL.Query().Encode() + "|" + r.Proto)
				writeJSON(w, 200, account(testPassword, `,"LogonDomain":"CORP"`))
			}), v.opt...)
			o := testOptions(t, srv.URL)
			o.Path = "MyCCP/"
			c := newTestClient(t, o, getPKI(t).client)
			a, err := c.Get(context.Background(), req1)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Wipe()
			want := "/MyCCP/api/Accounts|AppID=App+One&Folder=Root%5CSecrets&Object=sap+prod&Reason=run+42&Safe=partner|HTTP/1.1"
			if got.Load() != want {
				t.Errorf("server saw %q\nwant       %q", got.Load(), want)
			}
			if a.Content.RevealString() != testPassword || a.UserName() != "svc_sap" || a.Properties["LogonDomain"] != "CORP" {
				t.Errorf("account %+v", a)
			}
			if a.Server != strings.ToLower(srv.URL) || len(a.CorrelationID) != 16 {
				t.Errorf("server %q correlation %q", a.Server, a.CorrelationID)
			}
		})
	}
}

// TestGetErrors covers the answers a CCP or its IIS gives, with how many
// attempts each one costs: transient failures are retried, others not.
func TestGetErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		ctype    string
		body     string
		class    apitype.Class
		code     string
		attempts int
	}{
		{"not found", 404, "application/json", `{"ErrorCode":"APPAP004E","ErrorMsg":"not found"}`, apitype.ClassNotFound, "APPAP004E", 1},
		{"unknown app", 403, "application/json", `{"ErrorCode":"APPAP008E","ErrorMsg":"ITATS982E"}`, apitype.ClassStoreMisconfigured, "APPAP008E", 1},
		{"cert unauthorized", 403, "application/json", `{"ErrorCode":"APPAP306E","ErrorMsg":"x"}`, apitype.ClassClientCertRejected, "APPAP306E", 1},
		{"too many", 400, "application/json", `{"ErrorCode":"APPAP228E","ErrorMsg":"x"}`, apitype.ClassTooManyObjects, "APPAP228E", 1},
		{"wrong path", 404, "text/html", iis404, apitype.ClassStoreMisconfigured, "HTTP 404, HTML page", 1},
		{"iis 403.16", 403, "text/html", iis403("16"), apitype.ClassClientCertRejected, "IIS 403.16", 1},
		{"vault down retried", 400, "application/json", `{"ErrorCode":"APPAP007E","ErrorMsg":"x"}`, apitype.ClassVaultUnreachable, "APPAP007E", 3},
		{"5xx retried", 503, "text/html", `<html>unavailable</html>`, apitype.ClassServerError, "HTTP 503, HTML page", 3},
		{"password changing not retried", 500, "application/json", `{"ErrorCode":"APPAP282E","ErrorMsg":"x"}`, apitype.ClassPasswordChanging, "APPAP282E", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("Content-Type", tt.ctype)
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			c := newTestClient(t, testOptions(t, srv.URL), getPKI(t).client)
			_, err := c.Get(context.Background(), req1)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not *Error", err)
			}
			if e.Class != tt.class || e.Code != tt.code || e.HTTPStatus != tt.status {
				t.Errorf("got %q %q %d, want %q %q %d", e.Class, e.Code, e.HTTPStatus, tt.class, tt.code, tt.status)
			}
			if e.Server != strings.ToLower(srv.URL) || e.CorrelationID == "" {
				t.Errorf("server %q correlation %q", e.Server, e.CorrelationID)
			}
			if int(hits.Load()) != tt.attempts {
				t.Errorf("%d attempts, want %d", hits.Load(), tt.attempts)
			}
			st := c.Stats()
			if st.Servers[0].LastErrorClass != tt.class || st.Servers[0].LastError.IsZero() {
				t.Errorf("stats %+v", st.Servers[0])
			}
		})
	}
}

// TestGetConnectionFailures covers failures below HTTP.
func TestGetConnectionFailures(t *testing.T) {
	p := getPKI(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, account(testPassword, "")) })
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	slowBody := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"Content":"`)
		w.(http.Flusher).Flush()
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	huge := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"Content":"`+strings.Repeat("x", MaxResponseBytes)+`"}`)
	})
	reset := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		if tc, ok := conn.(*tls.Conn); ok {
			_ = tc.NetConn().(*net.TCPConn).SetLinger(0)
		}
		conn.Close()
	})
	closedURL := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		return "https://" + addr
	}

	tests := []struct {
		name    string
		handler http.Handler
		srvOpts []srvOpt
		cert    tls.Certificate
		url     string // instead of a server
		opts    func(*Options)
		class   apitype.Class
		msg     string
		noRetry bool
	}{
		{name: "connection refused", url: closedURL(), class: apitype.ClassVaultUnreachable, msg: "cannot connect"},
		{name: "no TLS handshake", url: silentURL(t), opts: func(o *Options) { o.TLSTimeout = 100 * time.Millisecond }, class: apitype.ClassTimeout, msg: "TLS handshake"},
		{name: "server from the wrong CA", handler: ok, srvOpts: []srvOpt{rogue(p)}, class: apitype.ClassVaultUnreachable, msg: "not trusted", noRetry: true},
		{name: "expired client cert tls13", handler: ok, cert: p.expired, class: apitype.ClassClientCertRejected, msg: "TLS alert"},
		{name: "expired client cert tls12", handler: ok, cert: p.expired, srvOpts: []srvOpt{tls12}, class: apitype.ClassClientCertRejected, msg: "TLS alert"},
		{name: "client cert from the wrong CA", handler: ok, cert: p.rogueServer, srvOpts: []srvOpt{tls12}, class: apitype.ClassClientCertRejected},
		{name: "pin mismatch", handler: ok, opts: func(o *Options) { o.Pins = []string{base64.StdEncoding.EncodeToString(make([]byte, 32))} }, class: apitype.ClassVaultUnreachable, msg: "pin", noRetry: true},
		{name: "latency past the timeout", handler: slow, opts: func(o *Options) { o.RequestTimeout = 150 * time.Millisecond; o.TotalTimeout = 10 * time.Second }, class: apitype.ClassTimeout},
		{name: "slow body", handler: slowBody, opts: func(o *Options) { o.RequestTimeout = 150 * time.Millisecond; o.TotalTimeout = 10 * time.Second }, class: apitype.ClassTimeout},
		{name: "body too large", handler: huge, class: apitype.ClassServerError, msg: "larger than"},
		{name: "connection reset", handler: reset, class: apitype.ClassVaultUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.url
			if tt.handler != nil {
				u = startCCP(t, tt.handler, tt.srvOpts...).URL
			}
			o := testOptions(t, u)
			o.Retries = 1
			if tt.opts != nil {
				tt.opts(&o)
			}
			cert := tt.cert
			if cert.Certificate == nil {
				cert = p.client
			}
			c := newTestClient(t, o, cert)
			start := time.Now()
			_, err := c.Get(context.Background(), req1)
			if apitype.ClassOf(err) != tt.class {
				t.Fatalf("class %q, want %q: %v", apitype.ClassOf(err), tt.class, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			// A timeout must fire before the slow handlers' 3 s; any other
			// failure must come back at all (a generous bound: -race on a
			// busy machine moves a large body slowly).
			limit := 10 * time.Second
			if tt.class == apitype.ClassTimeout {
				limit = 2500 * time.Millisecond
			}
			if d := time.Since(start); d > limit {
				t.Errorf("took %v, more than %v", d, limit)
			}
			if att := c.Stats().Attempts; tt.noRetry && att != 1 {
				t.Errorf("%d attempts, want 1", att)
			}
		})
	}
}

// silentURL is a server that accepts connections and never speaks.
func silentURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return "https://" + l.Addr().String()
}

func TestCertSourceError(t *testing.T) {
	srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, account("x", "")) }))
	c, err := New(testOptions(t, srv.URL), func() (*tls.Certificate, error) { return nil, errors.New("key store locked") })
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), req1)
	if apitype.ClassOf(err) != apitype.ClassAppCertUnreadable || !strings.Contains(err.Error(), "key store locked") {
		t.Fatalf("got %v", err)
	}
	if c.Stats().Attempts != 0 {
		t.Error("a request was sent without a certificate")
	}
}

func TestPinMatch(t *testing.T) {
	p := getPKI(t)
	srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, account("x", "")) }))
	sum := sha256.Sum256(p.serverCA.RawSubjectPublicKeyInfo)
	o := testOptions(t, srv.URL)
	o.Pins = []string{"sha256/" + base64.StdEncoding.EncodeToString(sum[:])}
	c := newTestClient(t, o, p.client)
	if _, err := c.Get(context.Background(), req1); err != nil {
		t.Fatal(err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	src := newCertSource(getPKI(t).client).source()
	for _, o := range []Options{
		{},
		{Servers: []string{"http://ccp"}},
		{Servers: []string{"https://ccp/AIMWebService"}},
		{Servers: []string{"https://ccp?x=1"}},
		{Servers: []string{"https://ccp"}, CABundle: []byte("not pem")},
		{Servers: []string{"https://ccp"}, Pins: []string{"abc"}},
		{Servers: []string{"https://ccp"}, Proxy: "socks5://p:1080"},
	} {
		if _, err := New(o, src); apitype.ClassOf(err) != apitype.ClassStoreMisconfigured {
			t.Errorf("New(%+v) = %v", o, err)
		}
	}
}

func TestCallerContext(t *testing.T) {
	release := make(chan struct{})
	srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	c := newTestClient(t, testOptions(t, srv.URL), getPKI(t).client)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Get(ctx, req1)
	if apitype.ClassOf(err) != apitype.ClassTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("returned after %v", d)
	}
}

func TestFailoverPrefersLastGood(t *testing.T) {
	var hitsB atomic.Int32
	down := "https://127.0.0.1:1"
	b := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hitsB.Add(1)
		writeJSON(w, 200, account("x", ""))
	}))
	c := newTestClient(t, testOptions(t, down, b.URL), getPKI(t).client)
	for i := 0; i < 3; i++ {
		a, err := c.Get(context.Background(), req1)
		if err != nil {
			t.Fatal(err)
		}
		if a.Server != strings.ToLower(b.URL) {
			t.Errorf("answered by %s", a.Server)
		}
	}
	st := c.Stats()
	if st.Attempts != 4 || st.Servers[0].Failures != 1 || st.Servers[1].Successes != 3 {
		t.Errorf("stats %+v: the down server should be tried once, then the good one preferred", st)
	}
}

func TestPasswordChangeWait(t *testing.T) {
	tests := []struct {
		name      string
		fail      bool
		changing  int32 // answers with APPAP282E before the password
		wantClass apitype.Class
		wantHits  int32
	}{
		{"waits and succeeds", true, 2, "", 3},
		{"gives up after the wait", true, 1000, apitype.ClassPasswordChanging, -1},
		{"without the flag", false, 1, apitype.ClassPasswordChanging, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("FailRequestOnPasswordChange") != map[bool]string{true: "true"}[tt.fail] {
					t.Errorf("flag not sent as expected: %q", r.URL.RawQuery)
				}
				if hits.Add(1) <= tt.changing {
					writeJSON(w, 500, `{"ErrorCode":"APPAP282E","ErrorMsg":"Password [o] is currently being changed by the CPM."}`)
					return
				}
				writeJSON(w, 200, account("x", ""))
			}))
			o := testOptions(t, srv.URL)
			o.RetryBackoff = 20 * time.Millisecond
			c := newTestClient(t, o, getPKI(t).client)
			r := req1
			r.FailRequestOnPasswordChange = tt.fail
			start := time.Now()
			_, err := c.Get(context.Background(), r)
			if apitype.ClassOf(err) != tt.wantClass {
				t.Fatalf("got %v", err)
			}
			if tt.wantHits > 0 && hits.Load() != tt.wantHits {
				t.Errorf("%d hits, want %d", hits.Load(), tt.wantHits)
			}
			if d := time.Since(start); d > o.PasswordChangeWait+3*time.Second {
				t.Errorf("waited %v, more than PasswordChangeWait", d)
			}
		})
	}
}

func TestPasswordChangeInProcessSurfaced(t *testing.T) {
	srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"Content":"old","PasswordChangeInProcess":"True"}`)
	}))
	c := newTestClient(t, testOptions(t, srv.URL), getPKI(t).client)
	a, err := c.Get(context.Background(), req1)
	if err != nil || !a.PasswordChangeInProcess {
		t.Fatalf("%v %+v", err, a)
	}
}

// TestConnectionReuse shows that a busy client makes one handshake, and
// that a reconnect resumes the TLS session.
func TestConnectionReuse(t *testing.T) {
	for _, v := range []struct {
		name string
		opt  []srvOpt
	}{{"tls13", nil}, {"tls12", []srvOpt{tls12}}} {
		t.Run(v.name, func(t *testing.T) {
			srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, account("x", "")) }), v.opt...)
			c := newTestClient(t, testOptions(t, srv.URL), getPKI(t).client)
			for i := 0; i < 50; i++ {
				a, err := c.Get(context.Background(), req1)
				if err != nil {
					t.Fatal(err)
				}
				a.Wipe()
			}
			if st := c.Stats(); st.FullHandshakes != 1 || st.ResumedHandshakes != 0 || st.Attempts != 50 {
				t.Fatalf("after 50 requests: %+v", st)
			}
			c.CloseIdleConnections()
			if _, err := c.Get(context.Background(), req1); err != nil {
				t.Fatal(err)
			}
			if st := c.Stats(); st.FullHandshakes != 1 || st.ResumedHandshakes != 1 {
				t.Fatalf("after a reconnect: %+v", st)
			}
		})
	}
}

// TestCertRotation swaps the client certificate between two requests on a
// live pool: the second request must present the new certificate, on a new
// full handshake (a resumed session would carry the old identity).
func TestCertRotation(t *testing.T) {
	p := getPKI(t)
	srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"Content":"x","Presented":"`+r.TLS.PeerCertificates[0].Subject.CommonName+`"}`)
	}))
	src := newCertSource(p.client)
	c, err := New(testOptions(t, srv.URL), src.source())
	if err != nil {
		t.Fatal(err)
	}
	get := func() string {
		a, err := c.Get(context.Background(), req1)
		if err != nil {
			t.Fatal(err)
		}
		return a.Properties["Presented"]
	}
	if got := get(); got != "app-one" {
		t.Fatalf("presented %q", got)
	}
	if got := get(); got != "app-one" {
		t.Fatalf("presented %q", got)
	}
	src.p.Store(&p.client2)
	if got := get(); got != "app-one-rotated" {
		t.Fatalf("after rotation presented %q", got)
	}
	if st := c.Stats(); st.FullHandshakes != 2 || st.ResumedHandshakes != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCoalescing starts many Gets for one request while CCP is slow: one
// call reaches CCP, and each caller may wipe its own copy.
func TestCoalescing(t *testing.T) {
	var hits atomic.Int32
	release := make(chan struct{})
	srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		writeJSON(w, 200, account(testPassword, ""))
	}))
	c := newTestClient(t, testOptions(t, srv.URL), getPKI(t).client)
	const n = 50
	accts := make([]*Account, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			a, err := c.Get(context.Background(), req1)
			if err != nil {
				t.Error(err)
				return
			}
			accts[i] = a
		})
	}
	for c.Stats().Coalesced < n-1 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if hits.Load() != 1 {
		t.Fatalf("%d calls reached CCP", hits.Load())
	}
	accts[0].Wipe()
	for _, a := range accts[1:] {
		if a.Content.RevealString() != testPassword {
			t.Fatal("wiping one caller's copy wiped another's")
		}
	}
	if st := c.Stats(); st.Coalesced != n-1 {
		t.Errorf("coalesced %d", st.Coalesced)
	}
}

// TestNoSecretsInLogsOrErrors logs at debug level through successes and
// every kind of failure, and checks that neither the password nor the
// query string appears anywhere.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	var buf syncBuffer
	var n atomic.Int32
	srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 4 {
		case 0:
			writeJSON(w, 200, account(testPassword, ""))
		case 1:
			writeJSON(w, 404, `{"ErrorCode":"APPAP004E","ErrorMsg":"not found"}`)
		case 2:
			writeJSON(w, 503, `{"ErrorCode":"X","ErrorMsg":"busy"}`)
		case 3:
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}
	}))
	o := testOptions(t, srv.URL, "https://127.0.0.1:1")
	o.Log = zerolog.New(&buf).Level(zerolog.DebugLevel)
	o.Retries = 0
	c := newTestClient(t, o, getPKI(t).client)
	var texts []string
	for i := 0; i < 12; i++ {
		a, err := c.Get(context.Background(), req1)
		if err != nil {
			texts = append(texts, err.Error())
			continue
		}
		texts = append(texts, a.Server, a.CorrelationID, strings.Join(mapValues(a.Properties), ","))
	}
	// Refused before sending, with forbidden characters.
	_, err := c.Get(context.Background(), Request{AppID: "App", Object: "pw+" + testPassword})
	texts = append(texts, err.Error(), buf.String())
	for _, s := range texts {
		for _, leak := range []string{testPassword, "AppID=", "App+One", "App%20One", "sap%20prod", "?"} {
			if strings.Contains(s, leak) {
				t.Errorf("%q leaks %q", s, leak)
			}
		}
	}
	if !strings.Contains(buf.String(), `"correlation"`) {
		t.Error("no log lines were written")
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// connectProxy is a minimal HTTP CONNECT proxy that counts tunnels.
type connectProxy struct {
	tunnels atomic.Int32
	refuse  bool
}

func (p *connectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	if p.refuse {
		http.Error(w, "blocked by policy", http.StatusForbidden)
		return
	}
	up, err := net.Dial("tcp", r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	p.tunnels.Add(1)
	w.WriteHeader(http.StatusOK)
	conn, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		up.Close()
		return
	}
	go func() {
		defer up.Close()
		defer conn.Close()
		go func() { _, _ = io.Copy(up, brw) }()
		_, _ = io.Copy(conn, up)
	}()
}

func TestProxy(t *testing.T) {
	p := getPKI(t)
	srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"Content":"x","Presented":"`+r.TLS.PeerCertificates[0].Subject.CommonName+`"}`)
	}))
	tests := []struct {
		name    string
		refuse  bool
		noProxy []string
		proxy   string // overrides the test proxy
		tunnels int32
		class   apitype.Class
	}{
		{name: "through the proxy", tunnels: 1},
		{name: "bypassed", noProxy: []string{"10.0.0.0/8", "127.0.0.1"}, tunnels: 0},
		{name: "bypassed by suffix", noProxy: []string{".example.com", "127.0.0.0/8"}, tunnels: 0},
		{name: "proxy refuses", refuse: true, class: apitype.ClassVaultUnreachable},
		{name: "proxy down", proxy: "http://127.0.0.1:1", class: apitype.ClassVaultUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px := &connectProxy{refuse: tt.refuse}
			ps := httptest.NewServer(px)
			defer ps.Close()
			o := testOptions(t, srv.URL)
			o.Proxy = ps.URL
			if tt.proxy != "" {
				o.Proxy = tt.proxy
			}
			o.NoProxy = tt.noProxy
			o.Retries = 0
			c := newTestClient(t, o, p.client)
			a, err := c.Get(context.Background(), req1)
			if apitype.ClassOf(err) != tt.class {
				t.Fatalf("got %v", err)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "proxy") {
					t.Errorf("error does not name the proxy: %v", err)
				}
				return
			}
			if a.Properties["Presented"] != "app-one" {
				t.Errorf("mTLS not end to end: server saw %q", a.Properties["Presented"])
			}
			if px.tunnels.Load() != tt.tunnels {
				t.Errorf("%d tunnels, want %d", px.tunnels.Load(), tt.tunnels)
			}
		})
	}
}

func TestBypassProxy(t *testing.T) {
	tests := []struct {
		host string
		list []string
		want bool
	}{
		{"ccp.corp.example", []string{"corp.example"}, true},
		{"ccp.corp.example", []string{".corp.example"}, true},
		{"ccp.corp.example", []string{"*.corp.example"}, true},
		{"corp.example", []string{".corp.example"}, true},
		{"notcorp.example", []string{"corp.example"}, false},
		{"10.1.2.3", []string{"10.0.0.0/8"}, true},
		{"10.1.2.3", []string{"10.1.2.3"}, true},
		{"10.1.2.3", []string{"10.1.2.4"}, false},
		{"anything", []string{"*"}, true},
		{"CCP.Corp.Example", []string{"ccp.corp.example:443"}, true},
		{"ccp", nil, false},
	}
	for _, tt := range tests {
		if got := bypassProxy(tt.host, tt.list); got != tt.want {
			t.Errorf("bypassProxy(%q, %v) = %v", tt.host, tt.list, got)
		}
	}
}

// TestHTTPVersion: HTTP/1.1 against a server that offers h2, unless HTTP2.
func TestHTTPVersion(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"Content":"x","Proto":"`+r.Proto+`"}`)
		}))
		p := getPKI(t)
		srv.EnableHTTP2 = true
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}}
		srv.StartTLS()
		o := testOptions(t, srv.URL)
		o.HTTP2 = h2
		c := newTestClient(t, o, p.client)
		a, err := c.Get(context.Background(), req1)
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]
		if a.Properties["Proto"] != want {
			t.Errorf("HTTP2=%v: spoke %s", h2, a.Properties["Proto"])
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	d := Options{}.withDefaults()
	if d.Path != DefaultPath || d.ConnectTimeout != DefaultConnectTimeout || d.RequestTimeout != DefaultRequestTimeout || d.PoolSize != DefaultPoolSize {
		t.Errorf("defaults %+v", d)
	}
}

// TestHTTPSProxyNeverSeesAppCert: the TLS to an https:// proxy is made
// without the application's certificate, even when the proxy asks for one;
// inside the tunnel the CCP server still gets it, end to end.
func TestHTTPSProxyNeverSeesAppCert(t *testing.T) {
	p := getPKI(t)
	srv := startCCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"Content":"x","Presented":"`+r.TLS.PeerCertificates[0].Subject.CommonName+`"}`)
	}))
	px := &connectProxy{}
	ps := httptest.NewUnstartedServer(px)
	var offered atomic.Int32
	ps.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			offered.Add(int32(len(cs.PeerCertificates)))
			return nil
		},
	}
	ps.Config.ErrorLog = log.New(io.Discard, "", 0)
	ps.StartTLS()
	defer ps.Close()

	o := testOptions(t, srv.URL)
	o.Proxy = ps.URL // https://127.0.0.1:port, trusted through the CA bundle
	o.Retries = 0
	c := newTestClient(t, o, p.client)
	for i := range 2 {
		a, err := c.Get(context.Background(), req1)
		if err != nil {
			t.Fatalf("request %d through the https proxy: %v", i, err)
		}
		if a.Properties["Presented"] != "app-one" {
			t.Fatalf("mTLS not end to end: server saw %q", a.Properties["Presented"])
		}
	}
	if px.tunnels.Load() != 1 {
		t.Errorf("%d tunnels, want 1 (reused)", px.tunnels.Load())
	}
	if n := offered.Load(); n != 0 {
		t.Fatalf("the proxy was offered %d client certificates", n)
	}
}

// TestRetireClosesConnectionsInUse shows that a retired client keeps no
// connection once its requests end, also those in flight when it was
// retired and one that started after, where CloseIdleConnections leaves
// them pooled until their idle timeout.
func TestRetireClosesConnectionsInUse(t *testing.T) {
	for _, tt := range []struct {
		name     string
		retire   func(*Client)
		wantOpen bool
	}{
		{"Retire", (*Client).Retire, false},
		{"CloseIdleConnections alone", (*Client).CloseIdleConnections, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var open, inHandler atomic.Int64
			release := make(chan struct{})
			srv := startCCPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inHandler.Add(1)
				<-release
				writeJSON(w, 200, account("x", ""))
			}), func(s *http.Server) {
				s.ConnState = func(_ net.Conn, st http.ConnState) {
					switch st {
					case http.StateNew:
						open.Add(1)
					case http.StateClosed, http.StateHijacked:
						open.Add(-1)
					}
				}
			})
			o := testOptions(t, srv.URL)
			o.PoolSize = 8
			c := newTestClient(t, o, getPKI(t).client)

			var wg sync.WaitGroup
			get := func(obj string) {
				wg.Go(func() {
					r := req1
					r.Object = obj
					a, err := c.Get(context.Background(), r)
					if err != nil {
						t.Errorf("%s: %v", obj, err)
						return
					}
					a.Wipe()
				})
			}
			waitFor := func(what string, cond func() bool) {
				t.Helper()
				for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("timed out waiting for %s", what)
					}
				}
			}
			for i := range 4 {
				get(fmt.Sprintf("in-flight-%d", i))
			}
			waitFor("4 requests in the handler", func() bool { return inHandler.Load() == 4 })
			tt.retire(c)
			// A request made after: it asks net/http's transport for a
			// connection, which ends what CloseIdleConnections marked.
			get("after")
			waitFor("5 requests in the handler", func() bool { return inHandler.Load() == 5 })
			close(release)
			wg.Wait()

			if !tt.wantOpen {
				waitFor("every connection closed", func() bool { return open.Load() == 0 })
				return
			}
			time.Sleep(200 * time.Millisecond)
			if n := open.Load(); n == 0 {
				t.Errorf("no connection left open: CloseIdleConnections now closes connections in use, and Retire may no longer be needed")
			}
		})
	}
}
