//go:build !windows

package keystoretest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Swtpm is a software TPM 2.0 (Debian's swtpm) run by a test.
type Swtpm struct {
	// Device is the address to give keystore.Options.TPMDevice:
	// unix:///... or tcp://127.0.0.1:PORT.
	Device string
	// StateDir holds the TPM's persistent state.
	StateDir string

	tcp     bool
	sockDir string
	port    int
	cmd     *exec.Cmd
	done    chan struct{}
}

// SwtpmOptions configure StartSwtpm.
type SwtpmOptions struct {
	// TCP serves the TPM on a free localhost port instead of a Unix socket.
	TCP bool
}

// RequireSwtpm skips the test if swtpm is not installed, or fails it when
// CI=true, where a missing prerequisite must not pass silently.
func RequireSwtpm(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("swtpm")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("swtpm is not installed (CI=true); install it with scripts/prereqs.sh")
		}
		t.Skip("swtpm is not installed; skipping the TPM tests (scripts/prereqs.sh installs it)")
	}
	return p
}

// StartSwtpm starts a swtpm with a fresh state directory and stops it when
// the test ends.
func StartSwtpm(t testing.TB, opts SwtpmOptions) *Swtpm {
	t.Helper()
	RequireSwtpm(t)
	// Unix socket paths are limited to about 100 bytes; t.TempDir can be
	// longer, so the sockets go in a short directory of their own.
	sockDir, err := os.MkdirTemp("", "swtpm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	s := &Swtpm{StateDir: t.TempDir(), sockDir: sockDir, tcp: opts.TCP}
	t.Cleanup(s.Stop)
	if err := s.start(0); err != nil {
		t.Fatal(err)
	}
	return s
}

// start starts swtpm; with TCP it listens on port and port+1, or on a free
// pair if port is 0.
func (s *Swtpm) start(port int) error {
	var server, ctrl string
	if s.tcp {
		p := port
		if p == 0 {
			var err error
			if p, err = freePorts(); err != nil {
				return err
			}
		}
		s.port = p
		server = fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", p)
		ctrl = fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", p+1)
		s.Device = fmt.Sprintf("tcp://127.0.0.1:%d", p)
	} else {
		sock := filepath.Join(s.sockDir, "tpm.sock")
		server = "type=unixio,path=" + sock
		ctrl = "type=unixio,path=" + filepath.Join(s.sockDir, "ctrl.sock")
		s.Device = "unix://" + sock
	}
	s.cmd = exec.Command("swtpm", "socket", "--tpm2",
		"--server", server, "--ctrl", ctrl,
		"--tpmstate", "dir="+s.StateDir,
		"--flags", "not-need-init,startup-clear")
	out, err := os.CreateTemp(s.sockDir, "log")
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting swtpm: %w", err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); out.Close(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			log, _ := os.ReadFile(out.Name())
			return fmt.Errorf("swtpm exited at start: %s", log)
		default:
		}
		network, addr := "unix", s.Device[len("unix://"):]
		if s.tcp {
			network, addr = "tcp", s.Device[len("tcp://"):]
		}
		if c, err := net.DialTimeout(network, addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("swtpm did not listen on %s within 10s", s.Device)
}

// Stop stops the swtpm (SIGTERM, then SIGKILL after 5s). It is idempotent.
func (s *Swtpm) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
	default:
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	}
	s.cmd = nil
}

// Restart stops the swtpm and starts it again at the same address. With
// wipe, the state directory is emptied first: the TPM comes back cleared,
// with new seeds, as after a TPM clear in the firmware.
func (s *Swtpm) Restart(t testing.TB, wipe bool) {
	t.Helper()
	s.Stop()
	if wipe {
		ents, err := os.ReadDir(s.StateDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(s.StateDir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Reuse the address, so the device string stays valid. A TCP port may
	// take a moment to be free again.
	var err error
	for range 50 {
		if err = s.start(s.port); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(err)
}

// freePorts finds a port P such that P and P+1 are free on localhost. (A
// race with another process remains possible; the unix socket default has
// none.)
func freePorts() (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no two consecutive free ports")
}
