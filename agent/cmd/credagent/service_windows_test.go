package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/service"
	"github.com/credagent/credagent/platform/localsock"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// serviceTestEnv opts in to TestServiceLifecycle, which registers the real
// credagent service on this machine: windows.yml and make test-windows (in
// the Wine prefix) set it; a developer's machine is left alone.
const serviceTestEnv = "CREDAGENT_TEST_SERVICE"

// serviceTestExe names the credagent.exe to install; without it the test
// builds one with the go command.
const serviceTestExe = "CREDAGENT_TEST_EXE"

// TestServiceLifecycle runs the real binary through the service commands:
// install, start, a resolve and a status through the service's pipe,
// reload, stop, uninstall. The service runs as LocalSystem with a file key
// store in a temporary directory and its own pipe under the protected
// prefix.
func TestServiceLifecycle(t *testing.T) {
	if os.Getenv(serviceTestEnv) != "1" {
		t.Skipf("registers a system service: set %s=1 to run it (windows.yml and make test-windows do)", serviceTestEnv)
	}
	if !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("needs an elevated administrator")
	}
	exe := serviceExe(t)
	if m, err := mgr.Connect(); err == nil {
		if s, err := m.OpenService(service.Name); err == nil {
			s.Close()
			m.Disconnect()
			t.Skipf("a %s service is already installed on this machine; the test leaves it alone", service.Name)
		}
		m.Disconnect()
	}

	dir := t.TempDir()
	b := make([]byte, 6)
	rand.Read(b)
	pipe := localsock.ProtectedPrefix + "credagent-test-" + hex.EncodeToString(b)
	self := localsocktest.SelfIdentity(t)
	// install creates the config's folder itself, private; a folder that
	// existed before, not private, holding a config, is refused. The
	// config reaches it through --initial-config.
	cfgPath := filepath.Join(dir, "svc", "config.yaml")
	seedPath := filepath.Join(dir, "seed-config.yaml")
	// The agent refuses to start without a pinned portal key.
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&pk.PublicKey)
	portalPEM := strings.ReplaceAll(strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))), "\n", "\n      ")
	cfg := fmt.Sprintf(`portal:
  signing_keys:
    - |
      %[4]s
paths:
  state_dir: '%[1]s\state'
  inbox_dir: '%[1]s\inbox'
  socket: '%[2]s'
log:
  file: '%[1]s\agent.log'
  audit_file: '%[1]s\audit.log'
keystore:
  backend: file
  dir: '%[1]s\keys'
policy:
  rules:
    - name: lifecycle-test
      sids: [%[3]s]
      credentials: ["*"]
`, dir, pipe, self.SIDs[0], portalPEM)
	if err := os.WriteFile(seedPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	credagent := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		// install, reload and status name the config; start, stop and
		// uninstall act on the registered service.
		if args[0] == "install" || args[0] == "reload" || args[0] == "status" {
			args = append(args, "--config", cfgPath)
		}
		out, err := exec.CommandContext(ctx, exe, args...).CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := credagent(args...)
		if err != nil {
			t.Fatalf("credagent %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	t.Cleanup(func() {
		credagent("stop")
		if out, err := credagent("uninstall"); err != nil && !strings.Contains(out, "not installed") {
			t.Logf("cleanup: uninstall: %v\n%s", err, out)
		}
		if log, err := os.ReadFile(filepath.Join(dir, "agent.log")); err == nil && t.Failed() {
			t.Logf("agent.log:\n%s", log)
		}
	})

	must("install", "--initial-config", seedPath)
	if st := scmState(t); st != svc.Stopped {
		t.Fatalf("after install the service is in state %d, want stopped", st)
	}
	must("start")
	waitState(t, svc.Running, 60*time.Second)

	c := client.New(pipe)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var st error
	for ctx.Err() == nil {
		if _, st = c.Status(ctx); st == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st != nil {
		t.Fatalf("status through the service's pipe %s: %v", pipe, st)
	}
	// Nothing is delivered: the resolve is answered by the service, which
	// identified the caller by SID, let it through the policy, and found no
	// such credential.
	res, err := c.Resolve(ctx, "lifecycle-1", "lifecycle", "no-such-credential")
	if err != nil {
		t.Fatalf("resolve through the service's pipe: %v", err)
	}
	var ae *client.Error
	if err := res.Err(); !errors.As(err, &ae) || ae.Class != "unknown_credential" {
		t.Fatalf("resolve through the service's pipe: %v, want an unknown_credential answer", err)
	}
	if out := must("status"); !strings.Contains(out, "running") {
		t.Errorf("credagent status does not say running:\n%s", out)
	}

	must("reload")
	if _, err := c.Status(ctx); err != nil {
		t.Errorf("status after reload: %v", err)
	}
	must("stop")
	waitState(t, svc.Stopped, 60*time.Second)
	must("uninstall")
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(service.Name); err == nil {
		s.Close()
		t.Errorf("the service is still registered after uninstall")
	}
	if log, err := os.ReadFile(filepath.Join(dir, "audit.log")); err != nil || !strings.Contains(string(log), self.SIDs[0]) {
		t.Errorf("the audit log does not name the caller's SID (%v):\n%s", err, log)
	}
}

// serviceExe is the credagent.exe to install: the one named by
// CREDAGENT_TEST_EXE, or one built now.
func serviceExe(t *testing.T) string {
	if exe := os.Getenv(serviceTestExe); exe != "" {
		return exe
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build credagent.exe, and %s is not set", serviceTestExe)
	}
	exe := filepath.Join(t.TempDir(), "credagent.exe")
	if out, err := exec.Command(gobin, "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("building credagent.exe: %v\n%s", err, out)
	}
	return exe
}

func scmState(t *testing.T) svc.State {
	t.Helper()
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(service.Name)
	if err != nil {
		t.Fatalf("opening the service: %v", err)
	}
	defer s.Close()
	q, err := s.Query()
	if err != nil {
		t.Fatalf("querying the service: %v", err)
	}
	return q.State
}

func waitState(t *testing.T, want svc.State, d time.Duration) {
	t.Helper()
	var st svc.State
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if st = scmState(t); st == want {
			return
		}
	}
	t.Fatalf("the service is in state %d after %s, want %d", st, d, want)
}
