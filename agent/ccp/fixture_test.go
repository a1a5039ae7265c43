package ccp

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// testPKI is a small PKI made once per test binary: a server CA, a client
// CA, a CA nobody trusts, a server certificate for 127.0.0.1 and localhost,
// and client certificates.
type testPKI struct {
	serverCA, clientCA, rogueCA *x509.Certificate
	serverCAPEM                 []byte
	server, rogueServer         tls.Certificate
	client, client2, expired    tls.Certificate
}

var (
	pkiOnce sync.Once
	pkiVal  *testPKI
)

func getPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		p := &testPKI{}
		var sk, ck, rk *ecdsa.PrivateKey
		p.serverCA, sk = makeCA("test server CA")
		p.clientCA, ck = makeCA("test client CA")
		p.rogueCA, rk = makeCA("rogue CA")
		p.serverCAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.serverCA.Raw})
		now := time.Now()
		p.server = issue(p.serverCA, sk, "ccp.test", true, now.Add(-time.Hour), now.Add(24*time.Hour))
		p.rogueServer = issue(p.rogueCA, rk, "ccp.test", true, now.Add(-time.Hour), now.Add(24*time.Hour))
		p.client = issue(p.clientCA, ck, "app-one", false, now.Add(-time.Hour), now.Add(24*time.Hour))
		p.client2 = issue(p.clientCA, ck, "app-one-rotated", false, now.Add(-time.Hour), now.Add(48*time.Hour))
		p.expired = issue(p.clientCA, ck, "app-expired", false, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
		pkiVal = p
	})
	return pkiVal
}

var serial atomic.Int64

func makeCA(cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-72 * time.Hour),
		NotAfter:              time.Now().Add(72 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, server bool, nb, na time.Time) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1) + 1000),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost", "ccp.test"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		panic(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// srvOpt adjusts a test server's TLS configuration.
type srvOpt func(*tls.Config)

func tls12(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }

func rogue(p *testPKI) srvOpt {
	return func(c *tls.Config) { c.Certificates = []tls.Certificate{p.rogueServer} }
}

// startCCP starts an HTTPS server that requires and verifies a client
// certificate from the client CA.
func startCCP(t testing.TB, h http.Handler, opts ...srvOpt) *httptest.Server {
	t.Helper()
	return startCCPServer(t, h, nil, opts...)
}

// startCCPServer is startCCP with a hook on the http.Server before it
// starts.
func startCCPServer(t testing.TB, h http.Handler, hook func(*http.Server), opts ...srvOpt) *httptest.Server {
	t.Helper()
	p := getPKI(t)
	srv := httptest.NewUnstartedServer(h)
	if hook != nil {
		hook(srv.Config)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.clientCA)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}
	for _, o := range opts {
		o(srv.TLS)
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// staticCert is a CertSource over a pointer that tests may swap.
type staticCert struct {
	p atomic.Pointer[tls.Certificate]
}

func newCertSource(c tls.Certificate) *staticCert {
	s := &staticCert{}
	s.p.Store(&c)
	return s
}

func (s *staticCert) source() CertSource {
	return func() (*tls.Certificate, error) { return s.p.Load(), nil }
}

// testOptions are Options for servers with short timeouts.
func testOptions(t testing.TB, servers ...string) Options {
	return Options{
		Servers:            servers,
		CABundle:           getPKI(t).serverCAPEM,
		ConnectTimeout:     2 * time.Second,
		TLSTimeout:         2 * time.Second,
		RequestTimeout:     2 * time.Second,
		Retries:            2,
		RetryBackoff:       5 * time.Millisecond,
		PasswordChangeWait: 300 * time.Millisecond,
		Log:                zerolog.Nop(),
	}
}

func newTestClient(t testing.TB, o Options, cert tls.Certificate) *Client {
	t.Helper()
	c, err := New(o, newCertSource(cert).source())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// syncBuffer is a log sink safe for concurrent writes (agenttest.LockedBuffer,
// which this package cannot import: agenttest imports ccp).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const testPassword = "Sup3r-S3cret!pw"

// account is a CCP success body in the real server's all-string style.
func account(pw string, extra string) string {
	return `{"Content":"` + pw + `","UserName":"svc_sap","Address":"sap.corp","Safe":"partner","Folder":"Root","Name":"sap-prod","PolicyID":"WinDomain","PasswordChangeInProcess":"False","SequenceID":"1"` + extra + `}`
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
