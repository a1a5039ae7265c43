package fakeccp_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
)

var (
	devOnce sync.Once
	devPKI  *fakeccp.DevPKI
	devErr  error
	devDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if devDir != "" {
		os.RemoveAll(devDir)
	}
	os.Exit(code)
}

// dev returns the dev PKI shared by the tests of this package.
func dev(t testing.TB) *fakeccp.DevPKI {
	t.Helper()
	devOnce.Do(func() {
		devDir, devErr = os.MkdirTemp("", "fakeccp-test-")
		if devErr == nil {
			devPKI, devErr = fakeccp.EnsureDevPKI(devDir)
		}
	})
	if devErr != nil {
		t.Fatal(devErr)
	}
	return devPKI
}

// start serves fix (the dev fixture when nil) with the dev PKI; mod may
// change the options.
func start(t testing.TB, fix *fakeccp.Fixture, mod func(*fakeccp.Options)) *fakeccp.Server {
	t.Helper()
	return agenttest.StartCCP(t, dev(t), fix, mod)
}

// client returns an HTTP/1.1 client trusting the dev CA and presenting
// certs (none when certs is empty).
func client(t testing.TB, certs ...tls.Certificate) *http.Client {
	t.Helper()
	cfg := dev(t).ClientTLSConfig()
	cfg.Certificates = certs
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// appClient presents the DemoApp certificate.
func appClient(t testing.TB) *http.Client { return client(t, dev(t).App) }

type answer struct {
	status int
	ctype  string
	raw    string
	fields map[string]any
}

func (a answer) str(k string) string { s, _ := a.fields[k].(string); return s }

func get(t testing.TB, c *http.Client, url string) answer {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), raw: string(b)}
	if strings.HasPrefix(a.ctype, "application/json") {
		if err := json.Unmarshal(b, &a.fields); err != nil {
			t.Fatalf("body %q: %v", b, err)
		}
	}
	return a
}
