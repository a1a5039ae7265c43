package ccp_test

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/localapi/apitype"
)

// These tests run the client against the project's fake CCP over real mTLS.

var (
	devPKI  *fakeccp.DevPKI
	pkiDir  string
	rotated tls.Certificate // a second registered DemoApp certificate
	rogue   tls.Certificate // signed by the dev CA, serial not registered
	expired tls.Certificate // registered serial, expired
)

const (
	fakePassword = "Sap-Pr0d!pass"
	rotatedHex   = "7e57c0de0001"
	expiredHex   = "7e57c0de0002"
)

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		pkiDir, err = os.MkdirTemp("", "ccp-test-pki")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(pkiDir)
		if devPKI, err = fakeccp.EnsureDevPKI(pkiDir); err != nil {
			panic(err)
		}
		mint := func(o fakeccp.ClientCertOptions) tls.Certificate {
			c, err := devPKI.MintClientCert(o)
			if err != nil {
				panic(err)
			}
			return c
		}
		serial := func(h string) *big.Int { b, _ := new(big.Int).SetString(h, 16); return b }
		rotated = mint(fakeccp.ClientCertOptions{CommonName: "DemoApp rotated", Serial: serial(rotatedHex)})
		rogue = mint(fakeccp.ClientCertOptions{CommonName: "not registered"})
		expired = mint(fakeccp.ClientCertOptions{CommonName: "expired", Serial: serial(expiredHex),
			NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
		return m.Run()
	}()
	os.Exit(code)
}

// fixture is DemoApp, registered for three certificates, with a few accounts
// whose names have spaces and whose folders have backslashes.
func fixture(t testing.TB) *fakeccp.Fixture {
	t.Helper()
	y := fmt.Sprintf(`
applications:
  - appID: DemoApp
    authentication:
      certificateSerialNumbers: [%q, %q, %q]
    safes:
      - {name: RPA Prod, permissions: [Retrieve, List]}
safes:
  - name: RPA Prod
    accounts:
      - name: sap prod admin
        folder: Root\Apps\SAP
        password: %q
        properties: {UserName: svc_sap, Address: sap.example.internal, LogonDomain: EXAMPLE}
      - {name: dup-a, password: "Dup-A!pass", properties: {UserName: shared}}
      - {name: dup-b, password: "Dup-B!pass", properties: {UserName: shared}}
      - {name: rotating, password: "R0t!pass", changeInProgress: true}
`, devPKI.AppSerial, rotatedHex, expiredHex, fakePassword)
	fix, err := fakeccp.ParseFixture("test", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return fix
}

func startFake(t testing.TB, mutate func(*fakeccp.Options)) *fakeccp.Server {
	t.Helper()
	o := devPKI.ServerOptions()
	o.AdminAddr = "off"
	if mutate != nil {
		mutate(&o)
	}
	srv, err := fakeccp.New(fixture(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func caPEM(t testing.TB) []byte {
	b, err := os.ReadFile(filepath.Join(pkiDir, fakeccp.DevCAFile))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fakeOptions(t testing.TB, servers ...string) ccp.Options {
	return ccp.Options{
		Servers:            servers,
		CABundle:           caPEM(t),
		ConnectTimeout:     2 * time.Second,
		TLSTimeout:         2 * time.Second,
		RequestTimeout:     2 * time.Second,
		Retries:            2,
		RetryBackoff:       5 * time.Millisecond,
		PasswordChangeWait: 300 * time.Millisecond,
		Log:                zerolog.Nop(),
	}
}

// certSource is a swappable CertSource.
type certSource struct {
	p atomic.Pointer[tls.Certificate]
}

func sourceOf(c tls.Certificate) *certSource {
	s := &certSource{}
	s.p.Store(&c)
	return s
}

func (s *certSource) get() (*tls.Certificate, error) { return s.p.Load(), nil }

func newClient(t testing.TB, o ccp.Options, c tls.Certificate) *ccp.Client {
	t.Helper()
	cl, err := ccp.New(o, sourceOf(c).get)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.CloseIdleConnections)
	return cl
}

var sapReq = ccp.Request{AppID: "DemoApp", Safe: "RPA Prod", Folder: `Root\Apps\SAP`, Object: "sap prod admin", Reason: "run 42"}

func TestFakeSuccess(t *testing.T) {
	srv := startFake(t, nil)
	c := newClient(t, fakeOptions(t, srv.URL), devPKI.App)
	for _, r := range []ccp.Request{
		sapReq,
		{AppID: "DemoApp", Query: `Safe=RPA Prod;Folder=Root\Apps\SAP;Object=sap prod admin`},
		{AppID: "DemoApp", Query: `Object=sap pro.*`, QueryFormat: "Regexp"},
	} {
		a, err := c.Get(context.Background(), r)
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if a.Content.RevealString() != fakePassword || a.UserName() != "svc_sap" || a.Properties["LogonDomain"] != "EXAMPLE" {
			t.Errorf("account %+v %v", a, a.Properties)
		}
		a.Wipe()
	}
	if rec := srv.Audit(); len(rec) == 0 || rec[0].Reason != "run 42" || rec[0].ClientSerial != devPKI.AppSerial {
		t.Errorf("audit %+v", rec)
	}
}

// TestFakeErrorClasses injects each kind of failure and checks the class
// and code a person would see, and how many requests it cost.
func TestFakeErrorClasses(t *testing.T) {
	tests := []struct {
		name     string
		srvOpts  func(*fakeccp.Options)
		faults   *fakeccp.Faults
		opts     func(*ccp.Options)
		cert     *tls.Certificate
		req      func(*ccp.Request)
		class    apitype.Class
		code     string
		requests uint64 // that reached the fake; 0: do not check
	}{
		{name: "not found", req: func(r *ccp.Request) { r.Object = "nosuch" }, class: apitype.ClassNotFound, code: "APPAP004E", requests: 1},
		{name: "unknown AppID", req: func(r *ccp.Request) { r.AppID = "NoSuchApp" }, class: apitype.ClassStoreMisconfigured, code: "APPAP008E", requests: 1},
		{name: "wrong path", opts: func(o *ccp.Options) { o.Path = "/AIMWebServiceX" }, class: apitype.ClassStoreMisconfigured, code: "IIS 404.0", requests: 1},
		{name: "certificate not registered", cert: &rogue, class: apitype.ClassClientCertRejected, code: "APPAP306E", requests: 1},
		{name: "too many objects", req: func(r *ccp.Request) { *r = ccp.Request{AppID: "DemoApp", Query: "UserName=shared"} }, class: apitype.ClassTooManyObjects, code: "APPAP227E", requests: 1},
		{name: "password changing", req: func(r *ccp.Request) { r.Folder, r.Object, r.FailRequestOnPasswordChange = "", "rotating", true }, class: apitype.ClassPasswordChanging, code: "APPAP282E"},
		{name: "vault down", faults: &fakeccp.Faults{VaultDown: true}, class: apitype.ClassVaultUnreachable, code: "APPAP007E", requests: 3},
		{name: "5xx", faults: &fakeccp.Faults{Status: 503}, class: apitype.ClassServerError, requests: 3},
		{name: "5xx json", faults: &fakeccp.Faults{Status: 500, ErrorCode: "XYZ999E", ErrorMsg: "boom"}, class: apitype.ClassServerError, code: "XYZ999E", requests: 3},
		{name: "latency past the timeout", faults: &fakeccp.Faults{Latency: time.Second}, opts: func(o *ccp.Options) { o.RequestTimeout = 100 * time.Millisecond }, class: apitype.ClassTimeout},
		{name: "resets", faults: &fakeccp.Faults{ResetRate: 1}, class: apitype.ClassVaultUnreachable},
		{name: "server cert from the wrong CA", opts: func(o *ccp.Options) { o.CABundle = nil }, class: apitype.ClassVaultUnreachable},
		{name: "expired client cert at the handshake", cert: &expired, class: apitype.ClassClientCertRejected},
		{name: "expired client cert, IIS require", srvOpts: func(o *fakeccp.Options) { o.ClientAuth = fakeccp.ClientAuthRequireHTTP }, cert: &expired, class: apitype.ClassClientCertRejected, code: "IIS 403.17"},
		{name: "expired client cert, IIS accept", srvOpts: func(o *fakeccp.Options) { o.ClientAuth = fakeccp.ClientAuthAccept }, cert: &expired, class: apitype.ClassClientCertRejected, code: "IIS 403.17"},
		{name: "forbidden character", req: func(r *ccp.Request) { r.Object = "a+b" }, class: apitype.ClassInvalidRequest, requests: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startFake(t, tt.srvOpts)
			if tt.faults != nil {
				if err := srv.SetFaults(*tt.faults); err != nil {
					t.Fatal(err)
				}
			}
			o := fakeOptions(t, srv.URL)
			if tt.opts != nil {
				tt.opts(&o)
			}
			cert := devPKI.App
			if tt.cert != nil {
				cert = *tt.cert
			}
			c := newClient(t, o, cert)
			r := sapReq
			if tt.req != nil {
				tt.req(&r)
			}
			_, err := c.Get(context.Background(), r)
			var e *ccp.Error
			if !asError(err, &e) {
				t.Fatalf("error %v is not *ccp.Error", err)
			}
			if e.Class != tt.class || (tt.code != "" && e.Code != tt.code) {
				t.Fatalf("got %q %q, want %q %q: %v", e.Class, e.Code, tt.class, tt.code, err)
			}
			if e.CorrelationID == "" || (tt.class != apitype.ClassInvalidRequest && e.Server != srv.URL) {
				t.Errorf("server %q correlation %q", e.Server, e.CorrelationID)
			}
			if got := srv.Counters().Requests; tt.requests > 0 && got != tt.requests {
				t.Errorf("%d requests reached the fake, want %d", got, tt.requests)
			}
			if tt.class == apitype.ClassInvalidRequest && srv.Counters().Connections != 0 {
				t.Error("an invalid request was sent")
			}
		})
	}
}

func asError(err error, e **ccp.Error) bool {
	ce, ok := err.(*ccp.Error)
	*e = ce
	return ok
}

func TestFakePasswordChange(t *testing.T) {
	srv := startFake(t, nil)
	c := newClient(t, fakeOptions(t, srv.URL), devPKI.App)
	r := ccp.Request{AppID: "DemoApp", Safe: "RPA Prod", Object: "rotating"}

	a, err := c.Get(context.Background(), r)
	if err != nil || !a.PasswordChangeInProcess {
		t.Fatalf("without the flag: %v %+v", err, a)
	}

	// With the flag, the client waits; the change ends while it does.
	r.FailRequestOnPasswordChange = true
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = srv.SetChangeInProgress("RPA Prod", "", "rotating", false)
	}()
	a, err = c.Get(context.Background(), r)
	if err != nil || a.PasswordChangeInProcess || a.Content.RevealString() != "R0t!pass" {
		t.Fatalf("with the flag: %v %+v", err, a)
	}
}

func TestFakeFailover(t *testing.T) {
	good := startFake(t, nil)
	down := startFake(t, nil)
	downURL := down.URL
	down.Close()
	c := newClient(t, fakeOptions(t, downURL, good.URL), devPKI.App)
	for i := 0; i < 5; i++ {
		a, err := c.Get(context.Background(), sapReq)
		if err != nil {
			t.Fatal(err)
		}
		if a.Server != good.URL {
			t.Fatalf("answered by %s", a.Server)
		}
	}
	st := c.Stats()
	if st.Servers[0].Failures != 1 || st.Servers[0].LastErrorClass != apitype.ClassVaultUnreachable || st.Servers[1].Successes != 5 {
		t.Errorf("stats %+v", st.Servers)
	}
}

// TestFakeConnectionReuse: 200 requests, sequential and parallel, cost one
// handshake per pooled connection, and the fake sees as many connections.
func TestFakeConnectionReuse(t *testing.T) {
	srv := startFake(t, nil)
	o := fakeOptions(t, srv.URL)
	o.PoolSize = 4
	c := newClient(t, o, devPKI.App)
	for i := 0; i < 100; i++ {
		if _, err := c.Get(context.Background(), sapReq); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.FullHandshakes != 1 || srv.Counters().Connections != 1 {
		t.Fatalf("sequential: %+v, fake saw %d connections", st, srv.Counters().Connections)
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			for i := 0; i < 25; i++ {
				r := sapReq
				r.Reason = fmt.Sprintf("w%d-%d", w, i) // defeat coalescing
				if _, err := c.Get(context.Background(), r); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// net/http may dial for a waiting request and then serve it on a
	// connection freed meanwhile, so a burst can cost a few extra
	// (resumed) handshakes; never one per request.
	st := c.Stats()
	if hs := st.FullHandshakes + st.ResumedHandshakes; hs > 12 || hs != srv.Counters().Connections || st.FullHandshakes != 1 {
		t.Fatalf("parallel: %+v, fake saw %d connections", st, srv.Counters().Connections)
	}
}

// TestFakeCertRotation rotates the client certificate between two requests
// on a live pool: the fake must see the new serial at once.
func TestFakeCertRotation(t *testing.T) {
	srv := startFake(t, nil)
	src := sourceOf(devPKI.App)
	c, err := ccp.New(fakeOptions(t, srv.URL), src.get)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	for i := 0; i < 2; i++ {
		if _, err := c.Get(context.Background(), sapReq); err != nil {
			t.Fatal(err)
		}
	}
	src.p.Store(&rotated)
	if _, err := c.Get(context.Background(), sapReq); err != nil {
		t.Fatal(err)
	}
	var serials []string
	for _, r := range srv.Audit() {
		serials = append(serials, r.ClientSerial)
	}
	want := []string{devPKI.AppSerial, devPKI.AppSerial, rotatedHex}
	if !slices.Equal(serials, want) {
		t.Fatalf("fake saw serials %v, want %v", serials, want)
	}
	if st := c.Stats(); st.FullHandshakes != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestFakeProxy puts a CONNECT proxy between the client and the fake: mTLS
// must stay end to end (the fake sees the app's serial).
func TestFakeProxy(t *testing.T) {
	srv := startFake(t, nil)
	var tunnels atomic.Int32
	px := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, "upstream down", http.StatusBadGateway)
			return
		}
		tunnels.Add(1)
		w.WriteHeader(http.StatusOK)
		conn, brw, _ := w.(http.Hijacker).Hijack()
		go func() { _, _ = io.Copy(up, brw); up.Close() }()
		go func() { _, _ = io.Copy(conn, up); conn.Close() }()
	}))
	defer px.Close()
	o := fakeOptions(t, srv.URL)
	o.Proxy = px.URL
	c := newClient(t, o, devPKI.App)
	for i := 0; i < 3; i++ {
		if _, err := c.Get(context.Background(), sapReq); err != nil {
			t.Fatal(err)
		}
	}
	if tunnels.Load() != 1 {
		t.Errorf("%d tunnels, want 1 reused", tunnels.Load())
	}
	if a := srv.Audit(); len(a) != 3 || a[2].ClientSerial != devPKI.AppSerial {
		t.Errorf("audit %+v", a)
	}

	// The fake goes away behind the proxy: the proxy's 502 is the vault
	// being unreachable.
	srv.Close()
	c.CloseIdleConnections()
	_, err := c.Get(context.Background(), sapReq)
	if apitype.ClassOf(err) != apitype.ClassVaultUnreachable || !strings.Contains(err.Error(), "502") {
		t.Fatalf("got %v", err)
	}
}

// TestFakeNoSecretsInLogs runs successes and failures with debug logging
// and checks that no password and no query string is logged or returned.
func TestFakeNoSecretsInLogs(t *testing.T) {
	srv := startFake(t, nil)
	var mu sync.Mutex
	var buf strings.Builder
	o := fakeOptions(t, srv.URL, "https://127.0.0.1:1")
	o.Log = zerolog.New(zerolog.SyncWriter(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}))).Level(zerolog.DebugLevel)
	c := newClient(t, o, devPKI.App)
	var texts []string
	for _, f := range []fakeccp.Faults{{}, {Status: 503}, {ResetRate: 1}, {VaultDown: true}, {}} {
		_ = srv.SetFaults(f)
		for _, r := range []ccp.Request{sapReq, {AppID: "DemoApp", Safe: "RPA Prod", Object: "nosuch"}} {
			a, err := c.Get(context.Background(), r)
			if err != nil {
				texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
				continue
			}
			texts = append(texts, fmt.Sprintf("%v %+v %#v", a, a, a))
		}
	}
	mu.Lock()
	texts = append(texts, buf.String())
	mu.Unlock()
	for _, s := range texts {
		for _, leak := range []string{fakePassword, hex.EncodeToString([]byte(fakePassword)), "AppID=", "Safe=RPA", "sap%20prod", "?"} {
			if strings.Contains(s, leak) {
				t.Errorf("%q leaks %q", s, leak)
			}
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestFakeCoalescing: fifty flows asking at once cost one request.
func TestFakeCoalescing(t *testing.T) {
	srv := startFake(t, nil)
	_ = srv.SetFaults(fakeccp.Faults{Latency: 200 * time.Millisecond})
	c := newClient(t, fakeOptions(t, srv.URL), devPKI.App)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			a, err := c.Get(context.Background(), sapReq)
			if err != nil {
				t.Error(err)
				return
			}
			a.Wipe()
		})
	}
	wg.Wait()
	if n := srv.Counters().Requests; n > 2 {
		t.Errorf("%d requests reached the fake for 50 concurrent Gets", n)
	}
}

// BenchmarkGet measures the client against the fake CCP over mTLS, from
// parallel goroutines with distinct requests (so nothing is coalesced). It
// reports throughput, latency percentiles, and TLS handshakes per 10,000
// requests, which connection reuse should keep near zero.
func BenchmarkGet(b *testing.B) {
	srv := startFake(b, nil)
	o := fakeOptions(b, srv.URL)
	c := newClient(b, o, devPKI.App)
	if _, err := c.Get(context.Background(), sapReq); err != nil {
		b.Fatal(err)
	}
	before := c.Stats()
	var (
		mu   sync.Mutex
		lats []time.Duration
		seq  atomic.Uint64
	)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		r := sapReq
		for pb.Next() {
			r.Reason = "bench " + strconv.FormatUint(seq.Add(1), 10)
			t0 := time.Now()
			a, err := c.Get(context.Background(), r)
			local = append(local, time.Since(t0))
			if err != nil {
				b.Error(err)
				return
			}
			a.Wipe()
		}
		mu.Lock()
		lats = append(lats, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	after := c.Stats()
	if len(lats) == 0 {
		return
	}
	slices.Sort(lats)
	pct := func(p float64) float64 {
		return float64(lats[min(len(lats)-1, int(float64(len(lats))*p))].Microseconds()) / 1000
	}
	n := float64(len(lats))
	b.ReportMetric(n/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(after.FullHandshakes-before.FullHandshakes)*10000/n, "full-handshakes/10k")
	b.ReportMetric(float64(after.ResumedHandshakes-before.ResumedHandshakes)*10000/n, "resumed-handshakes/10k")
}
