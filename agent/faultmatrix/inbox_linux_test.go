//go:build linux

package faultmatrix

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/secret"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
)

// The inbox rows of the hardening review (issue 13) and of group
// deliveries that arrive before their key (issue 14).

// problems is the status's problems, joined.
func (w *world) problems() string { return strings.Join(w.status().Problems, "; ") }

// notHandled fails if delivery id was handled within d.
func (w *world) notHandled(id string, d time.Duration) {
	w.t.Helper()
	if e, ok := w.event(id, d); ok {
		w.t.Fatalf("delivery %s was handled: %s %v", id, e.Reason, e.Err)
	}
}

func testInboxSwapped(t *testing.T) {
	if os.Geteuid() != 0 {
		skipRow(t, "inbox-swapped", "needs root to create the drop account")
	}
	drop := localsocktest.NewUser(t)
	var home string
	w := newWorld(t, worldOptions{beforeStart: func(w *world) {
		for _, d := range []string{filepath.Dir(w.dir), w.dir} {
			os.Chmod(d, 0o755)
		}
		home = filepath.Join(w.dir, "drophome")
		w.cfg.Paths.InboxDir = filepath.Join(home, "inbox")
		w.cfg.Inbox.AllowedOwners = []string{drop.Name}
		for _, d := range []string{home, w.cfg.Paths.InboxDir} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			chown(t, drop, d)
		}
	}})
	w.provision()
	recDir := filepath.Join(w.cfg.Paths.StateDir, "records", "credential")
	before, _ := filepath.Glob(filepath.Join(w.cfg.Paths.StateDir, "records", "*", "*"))
	localsocktest.ShAs(t, drop, fmt.Sprintf("mv %[1]s/inbox %[1]s/real && ln -s %[2]s %[1]s/inbox", home, recDir))
	time.Sleep(time.Second) // five rescans
	after, _ := filepath.Glob(filepath.Join(w.cfg.Paths.StateDir, "records", "*", "*"))
	if len(after) != len(before) {
		t.Fatalf("records %d before the swap, %d after", len(before), len(after))
	}
	if rej, _ := os.ReadDir(filepath.Join(w.cfg.Paths.StateDir, "rejected")); len(rej) != 0 {
		t.Fatalf("files were quarantined after the swap: %v", rej)
	}
	if p := w.problems(); !strings.Contains(p, "replaced") {
		t.Fatalf("status problems %q do not say the inbox was replaced", p)
	}
	w.expectServed("sap", "Sap-Pr0d!pass")
	// The real inbox still takes deliveries.
	d := w.build("late", &delivery.Credential{Store: "prod", Object: "sap-prod-admin"}, 0)
	os.WriteFile(filepath.Join(home, "real", d.ID+".delivery"), d.Marshal(), 0o644)
	if e, ok := w.event(d.ID, 5*time.Second); !ok || e.Err != nil {
		t.Fatalf("a delivery in the real inbox: %v %v", ok, e.Err)
	}
}

func testGroupKeyLast(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.provision()
	gk, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	robots := delivery.Group("robots")
	mk := func(target string, c delivery.Content, to delivery.Address, rcpt *ecdh.PublicKey) *delivery.Delivery {
		d, err := w.portal.Create(delivery.Header{Target: target, To: to}, c, rcpt)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cred := mk("grp", &delivery.Credential{Store: "prod", Object: "sap-prod-admin"}, robots, nil)
	app := mk("DemoApp", appContent(t, sharedPKI.App), robots, gk.PublicKey())
	for _, d := range []*delivery.Delivery{cred, app} {
		w.drop(d.ID+".delivery", d.Marshal())
	}
	w.notHandled(cred.ID, time.Second)
	if p := w.problems(); !strings.Contains(p, "wait in the inbox for the group's key") {
		t.Fatalf("status problems %q do not say deliveries wait for a group key", p)
	}
	key := mk("robots", &delivery.GroupKey{PrivateKey: secret.New(gk.Bytes())}, delivery.Machine(w.portal.MachineID()), w.portal.MachinePub())
	if e := w.deliver(key); e.Err != nil {
		t.Fatalf("group key: %v", e.Err)
	}
	for _, d := range []*delivery.Delivery{cred, app} {
		if e, ok := w.event(d.ID, 5*time.Second); !ok || e.Err != nil {
			t.Fatalf("%s %s after its group key: handled %v, %v", d.Kind, d.Target, ok, e.Err)
		}
	}
	w.expectServed("grp", "Sap-Pr0d!pass")
}

func testRecordCorrupt(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.provision()
	old := w.build("sap", &delivery.Credential{Store: "prod", Object: "rotating-admin"}, 1)
	w.stop()
	h := sha256.Sum256([]byte("sap"))
	rec := filepath.Join(w.cfg.Paths.StateDir, "records", "credential", hex.EncodeToString(h[:])+".delivery")
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rec, b[:len(b)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.start(true); err != nil {
		t.Fatal(err)
	}
	if p := w.problems(); !strings.Contains(p, filepath.Base(rec)) {
		t.Fatalf("status problems %q do not name the record", p)
	}
	w.drop(old.ID+".delivery", old.Marshal())
	w.notHandled(old.ID, time.Second)
	if !fileExists(filepath.Join(w.cfg.Paths.InboxDir, old.ID+".delivery")) {
		t.Fatal("the older delivery is not waiting in the inbox")
	}
}

func testMachineKeyMissing(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.provision()
	w.stop()
	kf := keyFile(t, w)
	if err := os.Remove(kf); err != nil {
		t.Fatal(err)
	}
	if err := w.start(true); err != nil {
		t.Fatal(err)
	}
	st := w.status()
	if st.Ready || !strings.Contains(st.KeyStore.NeedsReenroll, "enroll --rotate") {
		t.Fatalf("status: needs_reenroll %q ready %v", st.KeyStore.NeedsReenroll, st.Ready)
	}
	if fileExists(kf) {
		t.Fatal("a new machine key was created although sealed records exist")
	}
	if o := w.resolve("sap"); o.class != "needs_reenroll" {
		t.Fatalf("resolve: %v, want class needs_reenroll", o)
	}
}

func testRejectedAcrossFileSystems(t *testing.T) {
	if os.Geteuid() != 0 {
		skipRow(t, "rejected-exdev", "needs root to mount a tmpfs")
	}
	w := newWorld(t, worldOptions{beforeStart: func(w *world) {
		in := w.cfg.Paths.InboxDir
		if err := os.MkdirAll(in, 0o700); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", in).CombinedOutput(); err != nil {
			skipRow(t, "rejected-exdev", fmt.Sprintf("cannot mount a tmpfs: %v: %s", err, strings.TrimSpace(string(out))))
		}
		t.Cleanup(func() { exec.Command("umount", "-l", in).Run() })
	}})
	w.provision()
	d := w.build("prod", storeFor(w.ccp.URL), 0)
	b := d.Marshal()
	b[strings.Index(string(b), "\n\n")+5] ^= 0x01 // a payload byte: the signature no longer verifies
	w.drop(d.ID+".delivery", b)
	e, ok := w.event(d.ID, 5*time.Second)
	if !ok || e.Err == nil {
		t.Fatalf("not rejected: %v", e)
	}
	assertRejected(t, w, d.ID, e.Reason)
	kept, _ := filepath.Glob(filepath.Join(w.cfg.Paths.StateDir, "rejected", "*"+d.ID+".delivery"))
	if len(kept) != 1 {
		t.Fatalf("the rejected file was not kept: %v", kept)
	}
	if got, _ := os.ReadFile(kept[0]); string(got) != string(b) {
		t.Fatal("the kept copy differs from the file")
	}
}

func chown(t *testing.T, u localsocktest.User, path string) {
	t.Helper()
	if err := os.Chown(path, int(u.UID), int(u.GID)); err != nil {
		t.Fatal(err)
	}
}
