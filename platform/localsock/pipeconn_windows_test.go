package localsock

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The client's process is recorded when the connection is accepted (S2):
// PeerOf reports this process, through the handle opened at accept, even
// when it runs long after. Runs under Wine (dev mode pipe; Wine enforces no
// DACL) as well as on Windows.
func TestPipePeerRecordedAtAccept(t *testing.T) {
	path := fmt.Sprintf(`\\.\pipe\credagent-test-%d-%d`, os.Getpid(), time.Now().UnixNano())
	ln, err := Listen(path, ListenOptions{Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ids := make(chan *Identity, 4)
	errs := make(chan error, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, ok := c.(*acceptedConn); !ok {
					errs <- fmt.Errorf("Accept returned %T, not an acceptedConn", c)
					return
				}
				b := make([]byte, 1)
				if _, err := c.Read(b); err != nil {
					return // the throw-away first connection
				}
				// Identify later than the accept, as the local API does.
				time.Sleep(50 * time.Millisecond)
				id, err := PeerOf(c)
				if err != nil {
					errs <- err
					return
				}
				ids <- id
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// One connection dropped at once: Wine serves the first client of a
	// go-winio listener never (see windows-under-wine.md); Windows accepts
	// and drops it.
	if c, err := Dial(ctx, path); err == nil {
		c.Close()
	}
	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-ids:
		if id.PID != os.Getpid() {
			t.Errorf("PID %d, want %d", id.PID, os.Getpid())
		}
		self, _ := os.Executable()
		if id.PIDGuard != "handle" || !strings.EqualFold(filepath.Base(id.Exe), filepath.Base(self)) {
			t.Errorf("Exe %q guard %q, want %s through the handle", id.Exe, id.PIDGuard, self)
		}
	case err := <-errs:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("no identity")
	}
}
