// Package localsocktest is the contract test suite for platform/localsock,
// and helpers for tests that need a caller running as another user.
//
// Every transport (the Unix socket, the named pipe) must pass Run.
package localsocktest

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/credagent/credagent/platform/localsock"
)

// Config describes the transport under test.
type Config struct {
	// NewPath returns a fresh socket path or pipe name for one test.
	NewPath func(t *testing.T) string
	// Options are passed to localsock.Listen.
	Options localsock.ListenOptions
	// CheckIdentity asserts that id is this process (OS-specific fields).
	CheckIdentity func(t *testing.T, id *localsock.Identity)
	// Parallel runs the subtests in parallel, each on its own NewPath.
	// (Named pipes under Wine are left sequential.)
	Parallel bool
}

// Run runs the contract suite.
func Run(t *testing.T, cfg Config) {
	for _, tt := range []struct {
		name string
		f    func(t *testing.T, cfg Config)
	}{
		{"PeerIsCaller", testPeerIsCaller},
		{"Concurrent", testConcurrent},
		{"SecondListenerInUse", testInUse},
		{"RelistenAfterClose", testRelisten},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if cfg.Parallel {
				t.Parallel()
			}
			tt.f(t, cfg)
		})
	}
}

func listen(t *testing.T, cfg Config, path string) net.Listener {
	t.Helper()
	ln, err := localsock.Listen(path, cfg.Options)
	if err != nil {
		t.Fatalf("Listen(%q): %v", path, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// echo serves ln: each connection gets its peer identity checked by check,
// then echoes one line.
func echo(t *testing.T, ln net.Listener, check func(*localsock.Identity, error)) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 64)
				n, err := c.Read(buf) // the pipe needs a write before identification
				if err != nil {
					return
				}
				check(localsock.PeerOf(c))
				c.Write(buf[:n])
			}()
		}
	}()
	return &wg
}

func roundTrip(ctx context.Context, path, msg string) (string, error) {
	c, err := localsock.Dial(ctx, path)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}

func testPeerIsCaller(t *testing.T, cfg Config) {
	path := cfg.NewPath(t)
	ln := listen(t, cfg, path)
	ids := make(chan *localsock.Identity, 1)
	echo(t, ln, func(id *localsock.Identity, err error) {
		if err != nil {
			t.Errorf("PeerOf: %v", err)
			return
		}
		ids <- id
	})
	got, err := roundTrip(context.Background(), path, "hello")
	if err != nil || got != "hello" {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	id := <-ids
	if !id.Verified {
		t.Errorf("Verified = false: PeerOf must mark what it read from the OS")
	}
	if id.PID != os.Getpid() {
		t.Errorf("PID = %d, want %d", id.PID, os.Getpid())
	}
	exe, _ := os.Executable()
	if exe, _ = filepath.EvalSymlinks(exe); id.Exe != exe {
		t.Errorf("Exe = %q, want %q", id.Exe, exe)
	}
	if id.PIDGuard == "" {
		t.Errorf("PIDGuard empty: process details were not confirmed")
	}
	if cfg.CheckIdentity != nil {
		cfg.CheckIdentity(t, id)
	}
}

func testConcurrent(t *testing.T, cfg Config) {
	path := cfg.NewPath(t)
	ln := listen(t, cfg, path)
	echo(t, ln, func(id *localsock.Identity, err error) {
		if err != nil || id.PID != os.Getpid() {
			t.Errorf("PeerOf: %+v, %v", id, err)
		}
	})
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := string(rune('a' + i%26))
			got, err := roundTrip(context.Background(), path, msg)
			if err != nil || got != msg {
				t.Errorf("conn %d: %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
}

func testInUse(t *testing.T, cfg Config) {
	path := cfg.NewPath(t)
	ln := listen(t, cfg, path)
	echo(t, ln, func(*localsock.Identity, error) {})
	if ln2, err := localsock.Listen(path, cfg.Options); err == nil {
		ln2.Close()
		t.Fatal("second Listen on a live path succeeded")
	}
	// The first listener still works.
	if got, err := roundTrip(context.Background(), path, "x"); err != nil || got != "x" {
		t.Fatalf("after second Listen: %q, %v", got, err)
	}
}

func testRelisten(t *testing.T, cfg Config) {
	path := cfg.NewPath(t)
	ln, err := localsock.Listen(path, cfg.Options)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if runtime.GOOS != "windows" {
		if _, err := os.Lstat(path); err == nil {
			t.Errorf("socket file %s left behind after Close", path)
		}
	}
	ln = listen(t, cfg, path)
	echo(t, ln, func(*localsock.Identity, error) {})
	if got, err := roundTrip(context.Background(), path, "y"); err != nil || got != "y" {
		t.Fatalf("after relisten: %q, %v", got, err)
	}
}
