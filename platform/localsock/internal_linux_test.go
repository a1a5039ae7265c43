package localsock

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestProcReaders(t *testing.T) {
	a, err := startTime(os.Getpid())
	if err != nil || a == 0 {
		t.Fatalf("startTime: %d, %v", a, err)
	}
	if b, _ := startTime(os.Getpid()); a != b {
		t.Errorf("start time moved: %d then %d", a, b)
	}
	p, err := readProc(os.Getpid(), uint32(os.Geteuid()))
	if err != nil || p.exe == "" {
		t.Fatalf("readProc: %+v, %v", p, err)
	}
	// A different uid than the process's is a recycled pid.
	if _, err := readProc(os.Getpid(), uint32(os.Geteuid())+1); err == nil {
		t.Error("readProc accepted a uid mismatch")
	}
	if _, err := startTime(1 << 30); err == nil {
		t.Error("startTime of a missing pid succeeded")
	}
}

// A process in another mount namespace can bind its own binary over an
// allowed executable's path; /proc/<pid>/exe then names the allowed path.
// readProc must not report that name.
func TestReadProcRefusesExeFromOtherMountNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a mount namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1)")
	}
	dir := t.TempDir()
	allowed := filepath.Join(dir, "runner")
	evil := filepath.Join(dir, "evil")
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
	copyFile(t, sleep, evil)
	if err := os.WriteFile(allowed, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" "$2" && exec "$2" 30`, "sh", evil, allowed)
	if err := cmd.Start(); err != nil {
		t.Skipf("unshare: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for {
		if name, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && name == allowed {
			break
		}
		if time.Now().After(deadline) {
			t.Skip("could not bind-mount in a new mount namespace here")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p, err := readProc(pid, uint32(os.Geteuid()))
	if err != nil {
		t.Fatalf("readProc: %v", err)
	}
	if p.exe != "" {
		t.Fatalf("readProc reported exe %q for a process that runs another binary under that name", p.exe)
	}

	// The same binary run plainly keeps its name.
	plain := exec.Command(evil, "30")
	if err := plain.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Process.Kill(); plain.Wait() })
	time.Sleep(50 * time.Millisecond)
	if p, err := readProc(plain.Process.Pid, uint32(os.Geteuid())); err != nil || p.exe != evil {
		t.Fatalf("readProc of a plain process: %+v, %v; want exe %q", p, err, evil)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestUsernameCacheExpires plants a stale name for root's uid: it must be
// looked up again once it is older than nameTTL, and forgotten at once by
// FlushNames.
func TestUsernameCacheExpires(t *testing.T) {
	now := time.Now()
	namesNow = func() time.Time { return now }
	t.Cleanup(func() { namesNow = time.Now; FlushNames() })
	root := usernameOf(0)
	if root == "" {
		t.Skip("uid 0 has no name here")
	}
	usernames.Store(uint32(0), nameEntry{name: "deleted-user", at: now})
	if got := usernameOf(0); got != "deleted-user" {
		t.Fatalf("a fresh entry was not reused: %q", got)
	}
	now = now.Add(nameTTL)
	if got := usernameOf(0); got != root {
		t.Errorf("after %v the old name %q is still served, want %q", nameTTL, got, root)
	}
	usernames.Store(uint32(0), nameEntry{name: "deleted-user", at: now})
	FlushNames()
	if got := usernameOf(0); got != root {
		t.Errorf("after FlushNames the old name %q is still served, want %q", got, root)
	}
}

// pidfdAlive is what keeps a pid read from /proc from having been recycled:
// true while the process runs, false once it has exited, reaped or not.
func TestPidfdAlive(t *testing.T) {
	tests := []struct {
		name string
		end  func(cmd *exec.Cmd) // what happens to the process first
		want bool
	}{
		{"running", func(*exec.Cmd) {}, true},
		{"exited, not yet reaped (a zombie)", func(cmd *exec.Cmd) {
			cmd.Process.Kill()
			// Wait for the exit without reaping: WNOWAIT leaves the zombie.
			var info unix.Siginfo
			if err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"exited and reaped", func(cmd *exec.Cmd) {
			cmd.Process.Kill()
			cmd.Wait()
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("sleep", "60")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cmd.Process.Kill()
				cmd.Wait()
			})
			pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
			if err != nil {
				t.Skipf("pidfd_open: %v", err)
			}
			defer unix.Close(pidfd)
			tt.end(cmd)
			if got := pidfdAlive(pidfd); got != tt.want {
				t.Errorf("pidfdAlive = %v, want %v", got, tt.want)
			}
		})
	}
}
