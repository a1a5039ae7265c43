package storeprobe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/config"
)

func levels(rs []Result) string {
	var b []string
	for _, r := range rs {
		b = append(b, string(r.Level))
	}
	return strings.Join(b, ",")
}

func clientCert(t *testing.T) *tls.Certificate {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// storeOptions are CCP client options trusting the given server
// certificates, with short timeouts.
func storeOptions(server string, trust ...*x509.Certificate) ccp.Options {
	var bundle []byte
	for _, c := range trust {
		bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return ccp.Options{Servers: []string{server}, CABundle: bundle, ConnectTimeout: 2 * time.Second,
		TLSTimeout: 2 * time.Second, RequestTimeout: 3 * time.Second}
}

func TestProbeStore(t *testing.T) {
	var gotQuery string
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.RawQuery
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, `{"ErrorCode":"APPAP306E"}`, http.StatusForbidden)
			return
		}
		if r.URL.Path != "/AIMWebService/api/Accounts" || r.URL.Query().Get("Object") != "health" {
			http.Error(w, `{"ErrorCode":"APPAP004E"}`, http.StatusNotFound)
			return
		}
		w.Write([]byte(`{"Content":"x"}`))
	}))
	ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	ts.StartTLS()
	defer ts.Close()
	ctx := context.Background()
	base := Store{Name: "prod", Options: storeOptions(ts.URL, ts.Certificate()), AppID: "App1", Safe: "S", HealthObject: "health", ClientCert: clientCert(t)}

	if got := levels(ProbeStore(ctx, base)); got != "PASS,PASS,PASS,PASS" {
		t.Fatalf("good store: %s %+v", got, ProbeStore(ctx, base))
	}
	if !strings.Contains(gotQuery, "AppID=App1") || !strings.Contains(gotQuery, "Object=health") {
		t.Fatalf("query %q", gotQuery)
	}

	noCert := base
	noCert.ClientCert = nil
	if rs := ProbeStore(ctx, noCert); rs[3].Level != Fail {
		t.Fatalf("no client cert: %+v", rs)
	}
	noHealth := base
	noHealth.HealthObject = ""
	gotQuery = ""
	if rs := ProbeStore(ctx, noHealth); rs[3].Level != Warn || gotQuery != "" {
		t.Fatalf("no health object: %+v, request %q sent", rs, gotQuery)
	}
	untrusted := base
	untrusted.Options.CABundle = nil
	if rs := ProbeStore(ctx, untrusted); rs[2].Level != Fail || !strings.Contains(rs[2].Name, "tls") || !strings.Contains(rs[2].Detail, "authority") {
		t.Fatalf("untrusted chain: %+v", rs)
	}
	pinned := base
	pinned.Options.Pins = []string{base64.StdEncoding.EncodeToString(make([]byte, 32))}
	if rs := ProbeStore(ctx, pinned); rs[2].Level != Fail {
		t.Fatalf("wrong pin: %+v", rs)
	}
	// The pin of the server's key, in every form the CCP client accepts:
	// the doctor must agree with it.
	spki := sha256.Sum256(ts.Certificate().RawSubjectPublicKeyInfo)
	for _, pin := range []string{
		base64.StdEncoding.EncodeToString(spki[:]),
		base64.RawStdEncoding.EncodeToString(spki[:]),
		base64.RawURLEncoding.EncodeToString(spki[:]),
		"sha256/" + base64.StdEncoding.EncodeToString(spki[:]),
	} {
		good := base
		good.Options.Pins = []string{pin}
		if rs := ProbeStore(ctx, good); rs[2].Level != Pass {
			t.Fatalf("right pin %q refused: %+v", pin, rs)
		}
	}
	down := base
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	down.Options.Servers = []string{"https://" + addr}
	if rs := ProbeStore(ctx, down); rs[1].Level != Fail {
		t.Fatalf("closed port: %+v", rs)
	}
	_ = config.Config{}
}

// A transport failure of the health request must not put the request URL,
// with its query (AppID, Safe, Folder, health object), into the result: an
// *url.Error's text holds the whole URL. A redirect is reported, not
// followed with the application's client certificate.
func TestProbeStoreKeepsQueryOutOfDetail(t *testing.T) {
	var redirected int
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { redirected++ }))
	other.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	other.StartTLS()
	defer other.Close()
	mode := "reset"
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode == "redirect" {
			http.Redirect(w, r, other.URL+"/elsewhere?"+r.URL.RawQuery, http.StatusFound)
			return
		}
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	ts.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	ts.StartTLS()
	defer ts.Close()
	o := storeOptions(ts.URL, ts.Certificate(), other.Certificate())
	s := Store{Name: "prod", Options: o, AppID: "SecretApp", Safe: "SecretSafe", Folder: "SecretFolder",
		HealthObject: "SecretHealth", ClientCert: clientCert(t)}

	rs := ProbeStore(context.Background(), s)
	if len(rs) != 4 || rs[3].Level != Fail {
		t.Fatalf("connection reset: %+v", rs)
	}
	for _, r := range rs {
		for _, v := range []string{"?", "AppID=", "SecretApp", "SecretSafe", "SecretFolder", "Object="} {
			if strings.Contains(r.Detail, v) || strings.Contains(r.Name, v) {
				t.Errorf("result %q detail %q holds %q from the request URL", r.Name, r.Detail, v)
			}
		}
	}

	mode = "redirect"
	rs = ProbeStore(context.Background(), s)
	if redirected != 0 {
		t.Errorf("the probe followed a redirect to another server %d times", redirected)
	}
	if len(rs) != 4 || rs[3].Level == Pass || strings.Contains(rs[3].Detail, "SecretApp") {
		t.Errorf("redirect: %+v", rs)
	}
}

// connectProxy is a CONNECT proxy that sends every tunnel to target,
// whatever host was asked for; it counts the tunnels.
func connectProxy(t *testing.T, target string) (string, *int) {
	n := new(int)
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		*n++
		w.WriteHeader(http.StatusOK)
		c, buf, _ := w.(http.Hijacker).Hijack()
		go func() { io.Copy(up, buf); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}))
	t.Cleanup(p.Close)
	return p.URL, n
}

// TestProbeStoreThroughProxy: doctor reaches a store the way the agent
// does, through the store's proxy: a server name only the proxy can reach
// passes (issue 19, defect 4).
func TestProbeStoreThroughProxy(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, `{"ErrorCode":"APPAP306E"}`, http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"Content":"x"}`))
	}))
	ts.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	ts.StartTLS()
	defer ts.Close()
	proxy, tunnels := connectProxy(t, ts.Listener.Addr().String())
	_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
	o := storeOptions("https://example.com:"+port, ts.Certificate())
	o.Proxy = proxy
	s := Store{Name: "prod", Options: o, AppID: "App1", HealthObject: "health", ClientCert: clientCert(t)}
	rs := ProbeStore(context.Background(), s)
	if got := levels(rs); got != "PASS,PASS,PASS,PASS" || *tunnels == 0 || !strings.Contains(rs[0].Detail, "proxy") {
		t.Fatalf("through the proxy: %s, %d tunnels: %+v", got, *tunnels, rs)
	}
}

// TestProbeStoreLateCert: a server that, over TLS 1.3, asks for the client
// certificate only after the handshake. doctor names the cause in words and
// gives both fixes; with the store held at TLS 1.3 it fails.
func TestProbeStoreLateCert(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte("<html><body>403 Forbidden</body></html>"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"Content":"x"}`))
	}))
	ts.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		cfg := ts.TLS.Clone()
		cfg.GetConfigForClient = nil
		if slices.Contains(h.SupportedVersions, tls.VersionTLS13) {
			cfg.MinVersion, cfg.ClientAuth = tls.VersionTLS13, tls.NoClientCert
		} else {
			cfg.MaxVersion, cfg.ClientAuth = tls.VersionTLS12, tls.RequireAnyClientCert
		}
		return cfg, nil
	}}
	ts.StartTLS()
	defer ts.Close()
	s := Store{Name: "prod", Options: storeOptions(ts.URL, ts.Certificate()), AppID: "App1", HealthObject: "health", ClientCert: clientCert(t)}
	rs := ProbeStore(context.Background(), s)
	last := rs[len(rs)-1]
	if last.Level != Warn || !strings.Contains(last.Detail, "after a TLS 1.3 handshake") ||
		!strings.Contains(last.Fix, "clientcertnegotiation=enable") || !strings.Contains(last.Fix, "TLS 1.2") {
		t.Fatalf("fallback: %+v", rs)
	}
	s.Options.TLSMaxVersion = tls.VersionTLS13
	rs = ProbeStore(context.Background(), s)
	last = rs[len(rs)-1]
	if last.Level != Fail || !strings.Contains(last.Detail, "after a TLS 1.3 handshake") || strings.Contains(last.Fix, "register") {
		t.Fatalf("held at TLS 1.3: %+v", rs)
	}
}
