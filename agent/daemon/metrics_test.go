package daemon_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/delivery"
)

// TestDevMetricsTextfile: in dev mode the agent writes DIR/credagent.prom
// without being asked, and refreshes it; what the parts record shows there:
// deliveries, resolutions, CCP requests, the certificate's expiry, the key
// store. promtool accepts it when installed.
func TestDevMetricsTextfile(t *testing.T) {
	root := t.TempDir()
	pki := devPKI(t, root)
	srv := startCCP(t, pki, nil)

	dir := filepath.Join(root, "agent")
	os.MkdirAll(dir, 0o700)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("metrics:\n  interval: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, dir)
	defer a.stop(t)
	prom := filepath.Join(dir, "credagent.prom")
	if a.cfg.Metrics.Textfile != prom {
		t.Fatalf("dev mode textfile %q, want %q", a.cfg.Metrics.Textfile, prom)
	}
	p := &portalSide{t: t, agent: a, pki: pki}
	caPEM, _ := os.ReadFile(pki.CAFile)
	p.app()
	a.waitEvent(t, delivery.KindApplication, "DemoApp")
	p.drop(delivery.KindStore, "rpa-prod", &delivery.Store{Servers: []string{srv.URL}, AppID: "DemoApp", Safe: "RPA-Prod", CABundle: string(caPEM)})
	a.waitEvent(t, delivery.KindStore, "rpa-prod")
	p.drop(delivery.KindCredential, "sap-prod-admin", &delivery.Credential{Store: "rpa-prod", Object: "sap-prod-admin"})
	a.waitEvent(t, delivery.KindCredential, "sap-prod-admin")
	res, err := a.client.Resolve(context.Background(), "run-m", "flow-m", "sap-prod-admin", "no-such")
	if err != nil {
		t.Fatal(err)
	}
	res.Wipe()

	want := []string{
		`credagent_resolutions_total{op="resolve",outcome="ok",class="none"} 1`,
		`credagent_resolutions_total{op="resolve",outcome="error",class="unknown_credential"} 1`,
		`credagent_ccp_requests_total{server="` + srv.URL + `",status="200"} 1`,
		`credagent_deliveries_total{kind="application",result="applied",reason="none"} 1`,
		`credagent_deliveries_total{kind="credential",result="applied",reason="none"} 1`,
		`credagent_certificate_expiry_timestamp_seconds{app_id="DemoApp",owner=""} `,
		`credagent_keystore_info{backend="file",hardware="false"} 1`,
		`credagent_last_activity_timestamp_seconds{source="inbox"} `,
	}
	var text string
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(prom)
		text = string(b)
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the textfile lacks %s after 10 s:\n%s", missing, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, never := range []string{"run-m", "flow-m", "no-such", "sap-prod-admin", "Sap-Pr0d"} {
		if strings.Contains(text, never) {
			t.Errorf("the textfile holds %q", never)
		}
	}
	if tool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(tool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
}
