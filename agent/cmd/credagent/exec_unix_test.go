//go:build !windows

package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/secret/secrettest"
	"github.com/credagent/credagent/agent/state"
)

// testAs makes this test binary act as something else in a subprocess:
// "credagent" (the command itself) or one of the children below.
const testAs = "CREDAGENT_TEST_AS"

func TestMain(m *testing.M) {
	switch os.Getenv(testAs) {
	case "":
		os.Exit(m.Run())
	case "credagent":
		// The command credagent runs is this binary again, as the child
		// that CREDAGENT_CHILD_MODE names (child-read by default).
		mode := os.Getenv("CREDAGENT_CHILD_MODE")
		if mode == "" {
			mode = "child-read"
		}
		os.Setenv(testAs, mode)
		os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
	case "child-read":
		os.Exit(childRead())
	case "child-signal":
		os.Exit(childSignal())
	case "child-die":
		fmt.Println("ready")
		time.Sleep(time.Minute) // the signal, not caught, ends it
		os.Exit(0)
	}
	os.Exit(99)
}

// childRead reads DB_PASSWORD_FD to its end and reports what it got: the
// password's hash (never the password), the username, whether the
// password is also in the environment, and what kind of file the
// descriptor is.
func childRead() int {
	fd, err := strconv.Atoi(os.Getenv("DB_PASSWORD_FD"))
	if err != nil {
		fmt.Println("no DB_PASSWORD_FD")
		return 98
	}
	f := os.NewFile(uintptr(fd), "password")
	fi, err := f.Stat()
	if err != nil {
		fmt.Println("stat:", err)
		return 98
	}
	pw, err := io.ReadAll(f)
	if err != nil {
		fmt.Println("read:", err)
		return 98
	}
	sum := sha256.Sum256(pw)
	envSum := ""
	if v, ok := os.LookupEnv("DB_PASSWORD"); ok {
		s := sha256.Sum256([]byte(v))
		envSum = hex.EncodeToString(s[:])
	}
	fmt.Printf("CHILD user=%s sha=%s pipe=%t env=%s\n", os.Getenv("DB_USERNAME"), hex.EncodeToString(sum[:]), fi.Mode()&os.ModeNamedPipe != 0, envSum)
	code, _ := strconv.Atoi(os.Getenv("CHILD_EXIT"))
	return code
}

// childSignal waits for SIGTERM or SIGINT and exits 7 after saying which.
func childSignal() int {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	fmt.Println("ready")
	select {
	case s := <-ch:
		fmt.Println("got", s)
		return 7
	case <-time.After(time.Minute):
		return 0
	}
}

const execPassword = "Ex3c-Only!pw-7d1f"

// startExecAgent serves the local API for the current user on a dev socket
// under dir, with credential legacy-db.
func startExecAgent(t *testing.T, dir string) {
	t.Helper()
	snap := agenttest.Snapshot()
	snap.Credentials["legacy-db"] = &state.Credential{Name: "legacy-db", Store: "prod", Object: "db"}
	serveDevAPI(t, dir, agenttest.Publish(snap), map[string]string{"db": execPassword},
		resolve.Rule{Name: "me", UIDs: []uint32{uint32(os.Getuid())}, Credentials: []string{"*"}})
}

// execCmd is `credagent exec` as a process of its own (this test binary),
// with HOME and TMPDIR in scratch, so that anything written lands there.
func execCmd(t *testing.T, scratch string, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	full := append([]string{"exec"}, args...)
	full = append(full, "--", self)
	cmd := exec.Command(self, full...)
	cmd.Dir = scratch
	// DB_PASSWORD from the caller must not reach the child.
	cmd.Env = append(os.Environ(), testAs+"=credagent", "HOME="+scratch, "TMPDIR="+scratch, "DB_PASSWORD=stale-from-parent")
	return cmd
}

func exitOf(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func TestExec(t *testing.T) {
	dir := t.TempDir()
	startExecAgent(t, dir)
	scratch := t.TempDir()
	sum := sha256.Sum256([]byte(execPassword))
	pwSHA := hex.EncodeToString(sum[:])

	tests := []struct {
		name      string
		args      []string
		env       []string
		wantCode  int
		want      []string // in stdout
		notStderr []string
	}{
		{"password on a pipe, not in the environment", []string{"--dev", dir, "--run-id", "r1", "--cred", "DB=legacy-db"}, nil, 0,
			[]string{"CHILD user=svc_db sha=" + pwSHA + " pipe=true env=\n"}, nil},
		{"--env puts it in the environment too", []string{"--dev", dir, "--env", "--cred", "DB=legacy-db"}, nil, 0,
			[]string{"sha=" + pwSHA + " pipe=true env=" + pwSHA + "\n"}, nil},
		{"the child's exit code is passed on, silently", []string{"--dev", dir, "--cred", "DB=legacy-db"}, []string{"CHILD_EXIT=3"}, 3,
			[]string{"CHILD user=svc_db"}, []string{"credagent exec"}},
		{"an unknown credential starts nothing", []string{"--dev", dir, "--cred", "DB=no-such"}, nil, execFailed, nil, nil},
		{"no agent", []string{"--dev", filepath.Join(dir, "nope"), "--cred", "DB=legacy-db"}, nil, execFailed, nil, nil},
		{"a bad --cred", []string{"--dev", dir, "--cred", "1DB=legacy-db"}, nil, execUsageError, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := execCmd(t, scratch, tt.args...)
			cmd.Env = append(cmd.Env, tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			code := exitOf(t, cmd.Run())
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout.String(), stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s\nstderr: %s", w, stdout.String(), stderr.String())
				}
			}
			if tt.want == nil && strings.Contains(stdout.String(), "CHILD") {
				t.Errorf("the command ran: %s", stdout.String())
			}
			for _, n := range tt.notStderr {
				if strings.Contains(stderr.String(), n) {
					t.Errorf("stderr holds %q: %s", n, stderr.String())
				}
			}
			if strings.Contains(stdout.String()+stderr.String(), execPassword) {
				t.Error("the password was printed")
			}
		})
	}

	// Nothing reached the disk: not the scratch directory (the working
	// directory, HOME and TMPDIR of credagent and the child), not the
	// agent's directory.
	for _, d := range []string{scratch, dir} {
		r, err := secrettest.ScanDir(d, []secrettest.Needle{secrettest.Password(execPassword)})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range r.Found {
			t.Errorf("password on disk: %s", f)
		}
	}
}

func TestExecCommandNotFound(t *testing.T) {
	dir := t.TempDir()
	startExecAgent(t, dir)
	self, _ := os.Executable()
	cmd := exec.Command(self, "exec", "--dev", dir, "--cred", "DB=legacy-db", "--", filepath.Join(dir, "no-such-command"))
	cmd.Env = append(os.Environ(), testAs+"=credagent")
	if out, err := cmd.CombinedOutput(); exitOf(t, err) != execNotFound {
		t.Fatalf("exit %v, want %d: %s", err, execNotFound, out)
	}
}

// TestExecSignals: a signal sent to credagent reaches the command, and
// credagent ends the way the command ended: with its exit code, or by the
// same signal.
func TestExecSignals(t *testing.T) {
	dir := t.TempDir()
	startExecAgent(t, dir)
	for _, tt := range []struct {
		mode     string
		send     syscall.Signal
		wantCode int
		wantSig  syscall.Signal
		wantOut  string
	}{
		{"child-signal", syscall.SIGTERM, 7, 0, "got terminated"},
		{"child-signal", syscall.SIGINT, 7, 0, "got interrupt"},
		{"child-die", syscall.SIGHUP, -1, syscall.SIGHUP, ""},
		{"child-die", syscall.SIGTERM, -1, syscall.SIGTERM, ""},
	} {
		t.Run(tt.mode+"-"+tt.send.String(), func(t *testing.T) {
			if tt.wantSig != 0 && ignoredAtStart(tt.wantSig) {
				// nohup and some CI runners start us with SIGHUP ignored;
				// the command inherits that (as it should), so it cannot
				// die by it. The SIGTERM row shows the same path.
				t.Skipf("this test process was started with %v ignored, which the command inherits", tt.wantSig)
			}
			cmd := execCmd(t, t.TempDir(), "--dev", dir, "--cred", "DB=legacy-db")
			cmd.Env = append(cmd.Env, "CREDAGENT_CHILD_MODE="+tt.mode)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			if !sc.Scan() || sc.Text() != "ready" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child not ready: %q %s", sc.Text(), stderr.String())
			}
			if err := cmd.Process.Signal(tt.send); err != nil {
				t.Fatal(err)
			}
			var rest strings.Builder
			for sc.Scan() {
				rest.WriteString(sc.Text() + "\n")
			}
			err = cmd.Wait()
			ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if tt.wantSig != 0 {
				if !ws.Signaled() || ws.Signal() != tt.wantSig {
					t.Fatalf("credagent ended with %v, want killed by %v; stderr %s", err, tt.wantSig, stderr.String())
				}
				return
			}
			if exitOf(t, err) != tt.wantCode || !strings.Contains(rest.String(), tt.wantOut) {
				t.Fatalf("exit %v, out %q, want %d and %q; stderr %s", err, rest.String(), tt.wantCode, tt.wantOut, stderr.String())
			}
		})
	}
}

// ignoredAtStart reports whether this process has sig ignored (SigIgn in
// /proc/self/status), as it is when its parent ignored it: its children
// inherit that. Where there is no /proc, it says no.
func ignoredAtStart(sig syscall.Signal) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}
