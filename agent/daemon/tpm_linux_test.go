//go:build linux

package daemon_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/keystore/keystoretest"
)

// TestTPMBackend runs the agent with its machine key in a TPM (Debian's
// swtpm): the key is created in the TPM, deliveries open through it, and a
// delivery that arrives while the TPM does not answer waits in the inbox
// and is applied once the TPM is back.
func TestTPMBackend(t *testing.T) {
	keystoretest.RequireSwtpm(t)
	tpm := keystoretest.StartSwtpm(t, keystoretest.SwtpmOptions{})
	root := t.TempDir()
	pki, err := fakeccp.EnsureDevPKI(filepath.Join(root, "ccp"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "agent")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := "keystore:\n  backend: tpm\n  tpm_device: " + tpm.Device + "\ninbox:\n  rescan_interval: 100ms\n"
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, dir)
	defer a.stop(t)
	st, err := a.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.KeyStore.Backend != keystore.BackendTPM || !st.KeyStore.HardwareBacked {
		t.Fatalf("key store %+v, want the TPM, hardware-backed", st.KeyStore)
	}
	if files, _ := filepath.Glob(filepath.Join(a.cfg.KeyStore.Dir, "*"+keystore.TPMFileExt)); len(files) != 1 {
		t.Fatalf("want one TPM-wrapped key blob, got %v", files)
	}

	p := &portalSide{t: t, agent: a, pki: pki}
	p.app()
	a.waitEvent(t, delivery.KindApplication, "DemoApp")

	tpm.Stop()
	p.app()
	time.Sleep(500 * time.Millisecond) // several rescans
	if rej, _ := os.ReadDir(filepath.Join(a.cfg.Paths.StateDir, "rejected")); len(rej) != 0 {
		t.Fatalf("a delivery was rejected while the TPM was down: %v", rej)
	}
	if left, _ := filepath.Glob(filepath.Join(a.cfg.Paths.InboxDir, "*.delivery")); len(left) != 1 {
		t.Fatalf("the delivery should wait in the inbox, found %v", left)
	}
	problems := func() string {
		st, err := a.client.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(st.Problems, "; ")
	}
	if p := problems(); !strings.Contains(p, "key store cannot open deliveries") {
		t.Fatalf("status does not show the TPM outage: %q", p)
	}
	tpm.Restart(t, false)
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			t.Logf("agent log:\n%s", b)
		}
	}()
	a.waitEvent(t, delivery.KindApplication, "DemoApp")
	if p := problems(); strings.Contains(p, "key store") {
		t.Fatalf("status still shows the outage after the TPM came back: %q", p)
	}
}
