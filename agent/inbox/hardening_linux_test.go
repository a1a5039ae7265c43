package inbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/platform/localsock/localsocktest"
	"golang.org/x/sys/unix"
)

// These tests run the attacks of the hardening review as the users who
// would make them: the portal's drop account (an allowed owner) and an
// unrelated user, created here. They need root.

// openTree makes dir traversable by everyone (t.TempDir is 0700).
func openTree(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		// t.TempDir's directory and the test's directory above it.
		if err := os.Chmod(filepath.Dir(d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInboxSwapCannotReachStateFiles: the drop account owns the inbox's
// parent (its home, say) and swaps the inbox for a symlink to the agent's
// records or key directory. The agent keeps acting on the inbox it opened:
// it never moves, deletes or quarantines a file of the symlink's target,
// and status says the inbox was replaced.
func TestInboxSwapCannotReachStateFiles(t *testing.T) {
	drop := localsocktest.NewUser(t)
	root := t.TempDir()
	openTree(t, root)
	home := filepath.Join(root, "home")
	inboxDir := filepath.Join(home, "inbox")
	stateDir := filepath.Join(root, "state")
	for _, d := range []string{home, inboxDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, int(drop.UID), int(drop.GID)); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnvAt(t, inboxDir, stateDir, func(o *Options) { o.AllowedOwners = []string{drop.Name} })
	me := delivery.Machine(machineID)
	e.apply("cr", build(t, hdr("bot", 1, me), &delivery.Credential{Store: "prod", Object: "o"}, nil, signer))
	keys := filepath.Join(stateDir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(keys, "machine.key")
	if err := os.WriteFile(keyFile, []byte("the machine key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	recDir := filepath.Join(stateDir, recordsDir, string(delivery.KindCredential))
	recName := recordStem("bot") + ".delivery"
	rec, _ := os.ReadFile(filepath.Join(recDir, recName))

	// The swap, by the drop account.
	localsocktest.ShAs(t, drop, fmt.Sprintf("mv %s %s/real && ln -s %s %s", inboxDir, home, recDir, inboxDir))
	e.in.ScanOnce(t_ctx())
	e.in.handle(recName) // an fsnotify event for that name
	localsocktest.ShAs(t, drop, fmt.Sprintf("rm %s && ln -s %s %s", inboxDir, keys, inboxDir))
	e.in.ScanOnce(t_ctx())
	e.in.handle("machine.key")
	for i := range 3 { // junk that would once have pruned the quarantine
		localsocktest.ShAs(t, drop, fmt.Sprintf("echo junk > %s/real/junk%d", home, i))
	}
	e.in.ScanOnce(t_ctx())

	if b, err := os.ReadFile(keyFile); err != nil || string(b) != "the machine key\n" {
		t.Fatalf("the machine key was touched: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(recDir, recName)); err != nil || !bytes.Equal(b, rec) {
		t.Fatalf("the record was touched: %v", err)
	}
	for _, r := range e.st.Load().Rejected {
		if !strings.HasPrefix(r.File, "junk") {
			t.Fatalf("a file that is not in the real inbox was rejected: %+v", r)
		}
	}
	if p := e.st.Load().InboxProblems; len(p) != 1 || !strings.Contains(p[0], "replaced") {
		t.Fatalf("status problems %q", p)
	}
	// A new agent refuses the inbox path that is now a symlink.
	if _, err := New(e.opts); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("New on a symlinked inbox: %v", err)
	}
}

// newEnvAt is newEnv with the inbox and state directories given.
func newEnvAt(t *testing.T, inboxDir, stateDir string, tweak func(*Options)) *env {
	return newEnv(t, func(o *Options) {
		o.InboxDir, o.StateDir = inboxDir, stateDir
		if tweak != nil {
			tweak(o)
		}
	})
}

// TestInboxPathChecks: New refuses an inbox that someone other than root,
// the agent or an allowed owner could replace.
func TestInboxPathChecks(t *testing.T) {
	drop := localsocktest.NewUser(t)
	stranger := localsocktest.NewUser(t)
	tests := []struct {
		name    string
		prep    func(t *testing.T, parent, inbox string)
		wantErr string // "" : accepted
	}{
		{"plain", nil, ""},
		{"inbox owned by the drop account", func(t *testing.T, parent, inbox string) { chown(t, inbox, drop) }, ""},
		{"parent owned by the drop account", func(t *testing.T, parent, inbox string) { chown(t, parent, drop) }, ""},
		{"sticky world-writable parent", func(t *testing.T, parent, inbox string) { chmod(t, parent, 0o777|os.ModeSticky) }, ""},
		{"group-writable inbox", func(t *testing.T, parent, inbox string) { chmod(t, inbox, 0o770) }, ""},
		{"inbox is a symlink", func(t *testing.T, parent, inbox string) {
			os.Remove(inbox)
			real := filepath.Join(parent, "real")
			os.Mkdir(real, 0o755)
			os.Symlink(real, inbox)
		}, "symbolic link"},
		{"parent is a symlink", nil, "symbolic link"}, // set up below
		{"parent owned by another user", func(t *testing.T, parent, inbox string) { chown(t, parent, stranger) }, "owned by uid"},
		{"inbox owned by another user", func(t *testing.T, parent, inbox string) { chown(t, inbox, stranger) }, "owned by uid"},
		{"world-writable parent", func(t *testing.T, parent, inbox string) { chmod(t, parent, 0o777) }, "writable by every user"},
		{"world-writable inbox", func(t *testing.T, parent, inbox string) { chmod(t, inbox, 0o777) }, "writable by every user"},
		{"parent writable by a group", func(t *testing.T, parent, inbox string) {
			chmod(t, parent, 0o775)
			if err := os.Chown(parent, 0, int(stranger.GID)); err != nil {
				t.Fatal(err)
			}
		}, "writable by group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			openTree(t, root)
			parent := filepath.Join(root, "parent")
			inboxDir := filepath.Join(parent, "inbox")
			os.Mkdir(parent, 0o755)
			os.Mkdir(inboxDir, 0o755)
			if tt.prep != nil {
				tt.prep(t, parent, inboxDir)
			}
			if tt.name == "parent is a symlink" {
				link := filepath.Join(root, "link")
				os.Symlink(parent, link)
				inboxDir = filepath.Join(link, "inbox")
			}
			owners, err := parseOwners([]string{drop.Name})
			if err != nil {
				t.Fatal(err)
			}
			d, err := openInboxDir(inboxDir, owners)
			if d != nil {
				d.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

func chown(t *testing.T, p string, u localsocktest.User) {
	t.Helper()
	if err := os.Chown(p, int(u.UID), int(u.GID)); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, p string, m os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
}

// withoutDACOverride runs fn without CAP_DAC_OVERRIDE and
// CAP_DAC_READ_SEARCH, as under the shipped systemd unit: root then cannot
// read another user's mode 0600 file.
func withoutDACOverride(t *testing.T, fn func()) {
	t.Helper()
	localsocktest.WithoutCaps(t, 1<<unix.CAP_DAC_OVERRIDE|1<<unix.CAP_DAC_READ_SEARCH, fn)
}

// TestUnreadableDeliveryWaits: a delivery the drop account wrote with
// umask 077 cannot be read by an agent without CAP_DAC_OVERRIDE. It is not
// rejected: it stays in the inbox, status says why, and once it is
// readable (here: the capability back) it is applied.
func TestUnreadableDeliveryWaits(t *testing.T) {
	drop := localsocktest.NewUser(t)
	root := t.TempDir()
	openTree(t, root)
	inboxDir := filepath.Join(root, "inbox")
	os.Mkdir(inboxDir, 0o755)
	chown(t, inboxDir, drop)
	e := newEnvAt(t, inboxDir, filepath.Join(root, "state"), func(o *Options) { o.AllowedOwners = []string{drop.Name} })
	src := filepath.Join(root, "src")
	if err := os.WriteFile(src, build(t, hdr("bot", 1, delivery.Machine(machineID)), &delivery.Credential{Store: "prod", Object: "o"}, nil, signer), 0o644); err != nil {
		t.Fatal(err)
	}
	localsocktest.ShAs(t, drop, fmt.Sprintf("umask 077 && cp %s %s/.cr.tmp && mv %s/.cr.tmp %s/cr", src, inboxDir, inboxDir, inboxDir))
	withoutDACOverride(t, func() { e.in.ScanOnce(t_ctx()) })
	select {
	case ev := <-e.events:
		t.Fatalf("an unreadable delivery was handled: %+v", ev)
	default:
	}
	if _, err := os.Stat(filepath.Join(inboxDir, "cr")); err != nil {
		t.Fatalf("not left in the inbox: %v", err)
	}
	if p := e.st.Load().InboxProblems; len(p) != 1 || !strings.Contains(p[0], "permission denied") || !strings.Contains(p[0], "0644") {
		t.Fatalf("status problems %q", p)
	}
	e.in.ScanOnce(t_ctx())
	if ev := e.next(); ev.Err != nil {
		t.Fatalf("once readable: %v", ev.Err)
	}
	if p := e.st.Load().InboxProblems; len(p) != 0 {
		t.Fatalf("problem not cleared: %q", p)
	}
}

// TestRejectedAcrossFileSystems: with the inbox on another file system
// than the state directory, a rejected file is copied into the quarantine,
// not deleted.
func TestRejectedAcrossFileSystems(t *testing.T) {
	drop := localsocktest.NewUser(t)
	root := t.TempDir()
	openTree(t, root)
	inboxDir := filepath.Join(root, "inbox")
	os.Mkdir(inboxDir, 0o755)
	if err := unix.Mount("tmpfs", inboxDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=4m,mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(inboxDir, unix.MNT_DETACH) })
	chown(t, inboxDir, drop)
	e := newEnvAt(t, inboxDir, filepath.Join(root, "state"), func(o *Options) {
		o.AllowedOwners = []string{drop.Name}
		settled(o)
	})
	localsocktest.ShAs(t, drop, fmt.Sprintf("printf 'junk from the portal\\n' > %s/junk", inboxDir))
	e.in.ScanOnce(t_ctx())
	if ev := e.next(); ev.Reason != "malformed" {
		t.Fatalf("got %v", ev.Err)
	}
	if _, err := os.Lstat(filepath.Join(inboxDir, "junk")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("still in the inbox: %v", err)
	}
	kept := rejectedData(t, e)
	if len(kept) != 1 || string(kept[0]) != "junk from the portal\n" {
		t.Fatalf("quarantine holds %q", kept)
	}
}

// TestTooManyOpenFilesLeavesTheDelivery: a delivery that cannot be opened
// because the process is out of file descriptors (EMFILE, as when a local
// caller holds thousands of connections) is left in the inbox and applied
// later, not rejected.
func TestTooManyOpenFilesLeavesTheDelivery(t *testing.T) {
	e := newEnv(t, nil)
	e.drop("cr", build(t, hdr("bot", 1, delivery.Machine(machineID)), &delivery.Credential{Store: "prod", Object: "o"}, nil, signer))
	var saved unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
		t.Skip(err)
	}
	// The lowest free descriptor: with the limit there, the next open
	// fails with EMFILE.
	free, err := unix.Dup(0)
	if err != nil {
		t.Skip(err)
	}
	unix.Close(free)
	lim := saved
	lim.Cur = uint64(free)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip(err)
	}
	e.in.handle("cr")
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-e.events:
		t.Fatalf("handled while out of descriptors: %s %v", ev.Reason, ev.Err)
	default:
	}
	if p := e.st.Load().InboxProblems; len(p) != 1 || !strings.Contains(p[0], "too many open files") {
		t.Fatalf("status problems %q", p)
	}
	e.in.ScanOnce(t_ctx())
	if ev := e.next(); ev.Err != nil {
		t.Fatalf("once descriptors are free: %v", ev.Err)
	}
}
