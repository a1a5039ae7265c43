package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
)

// TestDev runs `fakeccp dev` on free ports, fetches the account as the
// README's curl does, and stops it.
func TestDev(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"dev", "--dir", dir, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-level", "error"}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var apiURL, adminURL string
	for (apiURL == "" || adminURL == "") && sc.Scan() {
		line := sc.Text()
		if u, ok := strings.CutPrefix(line, "listening on "); ok {
			apiURL = u
		}
		if u, ok := strings.CutPrefix(line, "admin on "); ok {
			adminURL = u
		}
	}
	go io.Copy(io.Discard, pr)
	if strings.HasSuffix(apiURL, ":0") || !strings.HasPrefix(apiURL, "https://127.0.0.1:") || !strings.HasPrefix(adminURL, "http://127.0.0.1:") {
		t.Fatalf("printed %q and %q", apiURL, adminURL)
	}
	pki, err := fakeccp.EnsureDevPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.ClientTLSConfig()}, Timeout: 10 * time.Second}
	resp, err := c.Get(apiURL + "/AIMWebService/api/Accounts?AppID=DemoApp&Safe=RPA-Prod&Object=sap-prod-admin")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if body["Content"] != "Sap-Pr0d!pass" || body["UserName"] != "svc_sap" {
		t.Errorf("body %v", body)
	}
	if resp, err := http.Get(adminURL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("admin: %v", err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
}

func TestServeErrors(t *testing.T) {
	dir := t.TempDir()
	pki, err := fakeccp.EnsureDevPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "missing.yaml")
	tests := [][]string{
		{},
		{"bogus"},
		{"dev"},
		{"serve", "--config", pki.FixtureFile},
		{"serve", "--config", bad, "--tls-cert", pki.ServerCertFile, "--tls-key", pki.ServerKeyFile, "--client-ca", pki.CAFile},
		{"serve", "--config", pki.FixtureFile, "--tls-cert", pki.ServerCertFile, "--tls-key", pki.ServerKeyFile},
		{"dev", "--dir", dir, "--client-auth", "sometimes"},
	}
	for _, args := range tests {
		var stderr strings.Builder
		if code := run(context.Background(), args, io.Discard, &stderr); code == 0 {
			t.Errorf("%v: exit 0", args)
		} else if stderr.Len() == 0 {
			t.Errorf("%v: nothing on stderr", args)
		}
	}
}

func TestLoad(t *testing.T) {
	var out strings.Builder
	if code := run(context.Background(), []string{"load", "--dir", t.TempDir(), "--requests", "200", "--concurrency", "2"}, &out, io.Discard); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var res fakeccp.LoadResult
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil || res.Requests != 200 {
		t.Errorf("%v %s", err, out.String())
	}
}
