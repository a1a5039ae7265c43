package fsutil_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credagent/credagent/platform/fsutil"
)

// The test binary doubles as the other process: with lockChildEnv set, it
// runs lockChild instead of the tests.
const lockChildEnv = "FSUTIL_LOCK_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(lockChildEnv); spec != "" {
		if err := lockChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "lock child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// lockChild runs "hold PATH": take the lock, say "locked", and keep it until
// stdin ends, then exit without unlocking (the system must release it); or
// "count N PATH": add one to the number in PATH.count, N times, each under
// the lock.
func lockChild(spec string) error {
	f := strings.SplitN(spec, " ", 3)
	switch {
	case len(f) == 2 && f[0] == "hold":
		if _, err := fsutil.LockPrivate(f[1], 10*time.Second); err != nil {
			return err
		}
		fmt.Println("locked")
		_, err := io.Copy(io.Discard, os.Stdin)
		return err
	case len(f) == 3 && f[0] == "count":
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return err
		}
		for range n {
			if err := lockedIncrement(f[2]); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("bad spec %q", spec)
}

// lockedIncrement is the read-change-write the lock exists for.
func lockedIncrement(lockPath string) error {
	l, err := fsutil.LockPrivate(lockPath, 30*time.Second)
	if err != nil {
		return err
	}
	defer l.Unlock()
	counter := lockPath + ".count"
	n := 0
	if b, err := os.ReadFile(counter); err == nil {
		if n, err = strconv.Atoi(string(b)); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// A pause between the read and the write makes a lost update all but
	// certain without the lock.
	time.Sleep(time.Millisecond)
	return fsutil.WritePrivateFile(counter, []byte(strconv.Itoa(n+1)))
}

// holder is another process that holds the lock until release is called.
type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func startHolder(t *testing.T, path string) *holder {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), lockChildEnv+"=hold "+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &holder{cmd: cmd, stdin: stdin}
	t.Cleanup(func() { h.release(t) })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("the holder did not take the lock: %q, %v", line, err)
	}
	return h
}

// release ends the holder, which exits without unlocking.
func (h *holder) release(t *testing.T) {
	if h.stdin == nil {
		return
	}
	h.stdin.Close()
	h.stdin = nil
	if err := h.cmd.Wait(); err != nil {
		t.Errorf("the holder: %v", err)
	}
}

func TestLockPrivateExcludes(t *testing.T) {
	tests := []struct {
		name string
		// hold takes the lock in some way and returns what gives it up.
		hold func(t *testing.T, path string) (release func())
	}{
		{"another lock in this process", func(t *testing.T, path string) func() {
			l, err := fsutil.LockPrivate(path, 0)
			if err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := l.Unlock(); err != nil {
					t.Error(err)
				}
			}
		}},
		{"another process, which exits without unlocking", func(t *testing.T, path string) func() {
			h := startHolder(t, path)
			return func() { h.release(t) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.lock")
			release := tt.hold(t, path)

			start := time.Now()
			_, err := fsutil.LockPrivate(path, 200*time.Millisecond)
			if !errors.Is(err, fsutil.ErrLocked) {
				t.Fatalf("LockPrivate while held: %v, want ErrLocked", err)
			}
			if waited := time.Since(start); waited < 200*time.Millisecond {
				t.Errorf("gave up after %v, before its wait of 200ms", waited)
			}

			// A waiter gets the lock once the holder lets go.
			got := make(chan error, 1)
			go func() {
				l, err := fsutil.LockPrivate(path, 30*time.Second)
				if err == nil {
					err = l.Unlock()
				}
				got <- err
			}()
			select {
			case err := <-got:
				t.Fatalf("LockPrivate returned (%v) while the lock was held", err)
			case <-time.After(100 * time.Millisecond):
			}
			release()
			if err := <-got; err != nil {
				t.Fatalf("LockPrivate after the holder let go: %v", err)
			}
		})
	}
}

// TestLockPrivateSerialises runs the read-change-write the lock is for in
// two processes and in goroutines of this one at once: no update is lost.
func TestLockPrivateSerialises(t *testing.T) {
	const perWorker = 25
	path := filepath.Join(t.TempDir(), "x.lock")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 2 {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), lockChildEnv+"=count "+strconv.Itoa(perWorker)+" "+path)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("child: %v: %s", err, out)
			}
		})
		wg.Go(func() {
			for range perWorker {
				if err := lockedIncrement(path); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path + ".count")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), strconv.Itoa(4*perWorker); got != want {
		t.Errorf("counter = %s after %s locked increments: updates were lost", got, want)
	}
}
