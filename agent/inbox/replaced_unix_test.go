//go:build !windows

// Unix only: on Windows the agent moves and deletes the file it opened
// through its handle (dir_windows.go), so another file taking the name
// cannot be mistaken for it, and the rename over an open file that this
// test makes fails under Wine.

package inbox

import (
	"crypto/ecdh"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/delivery"
)

// hookKey is a machine key that runs hook once, at the next ECDH after it
// is set: a way to act while the inbox is in the middle of a file.
type hookKey struct {
	memKey
	mu   sync.Mutex
	hook func()
}

func (k *hookKey) ECDH(peer *ecdh.PublicKey) ([]byte, error) {
	k.mu.Lock()
	h := k.hook
	k.hook = nil
	k.mu.Unlock()
	if h != nil {
		h()
	}
	return k.memKey.ECDH(peer)
}

// TestReplacedRejectedNameIsHandled: a delivery being rejected is replaced
// under its name (a portal or credseal writing to a fixed name drops again)
// before the agent moves it out. The agent leaves the new file for the next
// scan, and that scan handles it: the name is not marked as a rejected file
// stuck in the inbox, which would hide every file given that name later.
func TestReplacedRejectedNameIsHandled(t *testing.T) {
	hk := &hookKey{memKey: memKey{machineKey}}
	e := newEnv(t, func(o *Options) { o.MachineKeys = []Key{hk} })
	me := delivery.Machine(machineID)
	mpub := machineKey.PublicKey()
	e.apply("app.delivery", build(t, hdr("app", 1, me), validApp(t, 1), mpub, signer))

	// The certificate does not match its key: rejected after the seal is
	// opened, which is when the hook drops the good one under the name.
	bad := build(t, hdr("app", 2, me), newApp(t, 7, time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour), true), mpub, signer)
	good := build(t, hdr("app", 3, me), validApp(t, 3), mpub, signer)
	e.drop("app.delivery", bad)
	hk.mu.Lock()
	hk.hook = func() { e.drop("app.delivery", good) }
	hk.mu.Unlock()
	e.in.handle("app.delivery")
	if ev := e.next(); ev.Reason != "key-mismatch" {
		t.Fatalf("first event: %v (%s)", ev.Err, ev.Reason)
	}
	e.in.ScanOnce(t_ctx())
	if a := e.st.Load().Applications["app"]; a == nil || a.Seq != 3 {
		b, _ := os.ReadFile(filepath.Join(e.inbox, "app.delivery"))
		t.Fatalf("the good delivery now under the name was not applied: app %+v; the inbox file is the good one: %v; problems %q",
			a, string(b) == string(good), e.st.Load().InboxProblems)
	}
}
