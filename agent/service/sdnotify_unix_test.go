//go:build linux

package service

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// listen opens a unixgram socket as systemd does for NOTIFY_SOCKET.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotifyPathAndAbstract(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify"),
		fmt.Sprintf("@credagent-test-%d", time.Now().UnixNano()),
	} {
		c := listen(t, name)
		n := newNotifier(name)
		if !n.Enabled() {
			t.Fatalf("%s: not enabled", name)
		}
		if err := n.Notify(notifyReady, statusMessage("a\nb")); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c); got != "READY=1\nSTATUS=a b" {
			t.Fatalf("%s: got %q", name, got)
		}
	}
	if newNotifier("").Enabled() || newNotifier("relative").Enabled() {
		t.Fatal("enabled without a usable socket")
	}
	if err := newNotifier("").Notify(notifyReady); err != nil {
		t.Fatal(err)
	}
}

// The whole lifecycle through runWith: READY, a SIGHUP reload (RELOADING
// with MONOTONIC_USEC, then READY), and STOPPING on cancel.
func TestRunLifecycleNotifies(t *testing.T) {
	name := filepath.Join(t.TempDir(), "notify")
	c := listen(t, name)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloaded := make(chan struct{}, 1)
	finish := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- runWith(ctx, func(ctx context.Context, h Hooks) error {
			h.Ready()
			for {
				select {
				case <-h.Reload:
					reloaded <- struct{}{}
					<-finish // the reload takes a while
					h.Reloaded()
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}, RunOptions{}.withDefaults(), newNotifier(name))
	}()
	if got := recv(t, c); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("first message %q", got)
	}
	before, _ := monotonicNow()
	syscall.Kill(syscall.Getpid(), syscall.SIGHUP)
	got := recv(t, c)
	var usec int64
	if _, err := fmt.Sscanf(got, "RELOADING=1\nMONOTONIC_USEC=%d", &usec); err != nil {
		t.Fatalf("reload message %q: %v", got, err)
	}
	if after, _ := monotonicNow(); usec < before.Microseconds() || usec > after.Microseconds() {
		t.Fatalf("MONOTONIC_USEC %d outside [%d, %d]", usec, before.Microseconds(), after.Microseconds())
	}
	select {
	case <-reloaded:
	case <-time.After(5 * time.Second):
		t.Fatal("reload not delivered")
	}
	// Nothing until the daemon reports the reload handled.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 512)); err == nil {
		t.Fatalf("systemd was told something (%d bytes) before the reload finished", n)
	}
	close(finish)
	if got := recv(t, c); !strings.HasPrefix(got, "READY=1") {
		t.Fatalf("after reload %q", got)
	}
	cancel()
	if got := recv(t, c); !strings.HasPrefix(got, "STOPPING=1") {
		t.Fatalf("stop message %q", got)
	}
	if err := <-errc; err != context.Canceled {
		t.Fatalf("runWith = %v", err)
	}
}
