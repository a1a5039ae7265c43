// Package python_test runs the Python client's tests (tests/test_client.py)
// with Debian's python3 against a dev agent started here, in-process, with
// the fake CCP behind it.
package python_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/daemon"
	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/portal"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/agent/secret"
	"github.com/rs/zerolog"
)

// python3 is Debian's interpreter, not whatever a version manager put
// first in PATH.
const python3 = "/usr/bin/python3"

func TestPythonClient(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the Python client's Windows path is tested in the Windows workflow")
	}
	if _, err := os.Stat(python3); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is missing: run scripts/prereqs.sh as root")
		}
		t.Skip("python3 not installed (scripts/prereqs.sh installs it as root)")
	}
	socket := startDevAgent(t)
	sum := sha256.Sum256([]byte("Sap-Pr0d!pass"))
	cmd := exec.Command(python3, "-B", "-m", "unittest", "discover", "-v", "-s", "tests", "-p", "test_*.py")
	cmd.Env = append(os.Environ(), "PYTHONPATH=.", "PYTHONDONTWRITEBYTECODE=1",
		"CREDAGENT_TEST_SOCKET="+socket, "CREDAGENT_TEST_NAME=sap-prod-admin", "CREDAGENT_TEST_USERNAME=svc_sap",
		"CREDAGENT_TEST_PASSWORD_SHA256="+hex.EncodeToString(sum[:]))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 -m unittest: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// startDevAgent runs a dev-mode agent with the fake CCP, the dev
// application, a store and the credentials sap-prod-admin and
// missing-object, and a policy rule "python-test" for this user that
// grants those two and "no-such". It returns the socket.
func startDevAgent(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	pki, err := fakeccp.EnsureDevPKI(filepath.Join(root, "ccp"))
	if err != nil {
		t.Fatal(err)
	}
	fix, err := pki.Fixture()
	if err != nil {
		t.Fatal(err)
	}
	nop := zerolog.Nop()
	opts := pki.ServerOptions()
	opts.Logger = &nop
	srv, err := fakeccp.New(fix, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	dir := filepath.Join(root, "agent")
	os.MkdirAll(dir, 0o700)
	rule := fmt.Sprintf("policy:\n  rules:\n    - {name: python-test, uids: [%d], credentials: [sap-prod-admin, missing-object, no-such]}\n", os.Getuid())
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := daemon.DevConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan inbox.Event, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	var once sync.Once
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Config: cfg, Dev: true, DevDir: dir, Log: nop, Audit: nop, SkipHardening: true,
			Ready:   func() { once.Do(func() { close(ready) }) },
			OnEvent: func(e inbox.Event) { events <- e }})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready within 20s")
	}

	signer, err := portal.LoadSigningKey(filepath.Join(dir, daemon.DevSigningKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	reg, pub, err := portal.LoadRegistration(filepath.Join(cfg.Paths.StateDir, daemon.DevRegistration))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(pki.AppP12File)
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := portal.OpenPFX(raw, secret.FromString(fakeccp.DevP12Password), time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(pki.CAFile)
	for i, d := range []struct {
		target  string
		content delivery.Content
	}{
		{"DemoApp", pfx.Application},
		{"rpa-prod", &delivery.Store{Servers: []string{srv.URL}, AppID: "DemoApp", Safe: "RPA-Prod", CABundle: string(caPEM)}},
		{"sap-prod-admin", &delivery.Credential{Store: "rpa-prod", Object: "sap-prod-admin"}},
		{"missing-object", &delivery.Credential{Store: "rpa-prod", Object: "no-such-account"}},
	} {
		h := delivery.Header{ID: portal.NewID(), Target: d.target, Seq: uint64(i + 1), Created: time.Now(), To: delivery.Machine(reg.MachineID)}
		var rcpt = pub
		if !d.content.Kind().Sealed() {
			rcpt = nil
		}
		del, err := delivery.Create(h, d.content, rcpt, signer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := portal.Write(del, cfg.Paths.InboxDir, ""); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-events:
			if e.Err != nil {
				t.Fatalf("delivery %s refused: %v", d.target, e.Err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("delivery %s not handled", d.target)
		}
	}
	return cfg.Paths.Socket
}
