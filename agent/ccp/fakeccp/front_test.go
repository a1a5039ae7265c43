package fakeccp_test

import (
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
)

// TestFrontHeader: the client certificate header is read only on the
// front's connections, per request; anyone else's is ignored.
func TestFrontHeader(t *testing.T) {
	p := dev(t)
	frontCert, err := p.MintClientCert(fakeccp.ClientCertOptions{CommonName: "front"})
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := p.MintClientCert(fakeccp.ClientCertOptions{CommonName: "not registered"})
	if err != nil {
		t.Fatal(err)
	}
	srv := start(t, nil, func(o *fakeccp.Options) { o.Front = &fakeccp.Front{Certificate: frontCert.Leaf} })
	appPEM := strings.ReplaceAll(strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.App.Certificate[0]}))), "\n", " ")
	url := srv.AccountsURL() + "?AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin"
	get := func(c *http.Client, header string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if header != "" {
			req.Header.Set(fakeccp.DefaultFrontHeader, header)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	front := client(t, frontCert)
	tests := []struct {
		name   string
		c      *http.Client
		header string
		status int
		code   string
	}{
		{"front, PEM with spaces (Apache)", front, strings.ReplaceAll(strings.TrimSpace(appPEM), "\n", " "), 200, "Content"},
		{"front, bare base64 DER", front, base64.StdEncoding.EncodeToString(p.App.Certificate[0]), 200, "Content"},
		{"front, no certificate", front, "(null)", 403, "APPAP330E"},
		{"front, garbage", front, "-----BEGIN CERTIFICATE----- AAAA -----END CERTIFICATE-----", 403, "403.16"},
		{"front, unregistered client", front, base64.StdEncoding.EncodeToString(rogue.Certificate[0]), 403, "APPAP306E"},
		// Not the front: the header is ignored, the connection's own
		// certificate counts.
		{"client claiming DemoApp", client(t, rogue), appPEM, 403, "APPAP306E"},
		{"DemoApp itself", client(t, p.App), "", 200, "Content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(tt.c, tt.header)
			if status != tt.status || !strings.Contains(body, tt.code) {
				t.Fatalf("%d %s, want %d %s", status, body, tt.status, tt.code)
			}
		})
	}
	// Per request on one front connection: DemoApp, then none, then
	// DemoApp again, all over the same kept-alive connection.
	for i, want := range []int{200, 403, 200} {
		h := appPEM
		if want == 403 {
			h = "(null)"
		}
		if status, _ := get(front, h); status != want {
			t.Fatalf("request %d on the front's connection: %d, want %d", i, status, want)
		}
	}
}
