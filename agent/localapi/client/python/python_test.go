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

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/daemon"
	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/rs/zerolog"
)

// python3 is Debian's interpreter, not whatever a version manager put
// first in PATH.
const python3 = "/usr/bin/python3"

func TestPythonClient(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("not run on Windows yet: the Python client's named-pipe path has no automated test (its Unix-socket path runs on Linux)")
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
	pki := agenttest.DevPKI(t, root)
	srv := agenttest.StartCCP(t, pki, nil, nil)
	nop := zerolog.Nop()

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

	p, err := agenttest.LoadPortal(filepath.Join(dir, daemon.DevSigningKeyFile),
		filepath.Join(cfg.Paths.StateDir, daemon.DevRegistration), cfg.Paths.InboxDir)
	if err != nil {
		t.Fatal(err)
	}
	app, err := agenttest.DevApplication(pki)
	if err != nil {
		t.Fatal(err)
	}
	store, err := agenttest.DevStore(pki, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		target  string
		content delivery.Content
	}{
		{"DemoApp", app},
		{"rpa-prod", store},
		{"sap-prod-admin", &delivery.Credential{Store: "rpa-prod", Object: "sap-prod-admin"}},
		{"missing-object", &delivery.Credential{Store: "rpa-prod", Object: "no-such-account"}},
	} {
		if _, err := p.Drop(d.target, d.content); err != nil {
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
