package localsocktest

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Nobody is the uid and gid of the unprivileged "nobody" user that tests run
// other callers as.
const Nobody = 65534

// PublicDir returns a fresh directory that every user can traverse, removed
// after the test. t.TempDir is 0700, which would keep another user out before
// any check under test is reached.
func PublicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "localsock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// RunAs runs this test binary again as uid:gid with no supplementary groups,
// with env added and -test.run=^TestMain$ style arguments in args. The binary
// is copied into a public directory first, because the go tool's build
// directory is private to root. It returns the combined output and the exit
// error. It skips the test unless it runs as root.
func RunAs(t *testing.T, uid, gid uint32, env []string, args ...string) ([]byte, error) {
	t.Helper()
	return CommandAs(t, User{UID: uid, GID: gid}, env, args...).CombinedOutput()
}

// CommandAs is RunAs's command, not started: this test binary (copied to a
// public directory) run as u, with u's supplementary groups. It skips the
// test unless it runs as root.
func CommandAs(t *testing.T, u User, env []string, args ...string) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as another user")
	}
	exe := publicCopy(t)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = "/"
	groups := u.Groups
	if groups == nil {
		groups = []uint32{}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: groups}}
	return cmd
}

// ShAs runs a shell script as u, with no supplementary groups, and fails
// the test unless it succeeds: how tests stage what another local user
// does (swap a directory for a symlink, drop a file).
func ShAs(t *testing.T, u User, script string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{}}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as %s: %s: %v: %s", u.Name, script, err, out)
	}
}

var (
	copiesMu sync.Mutex
	copies   = map[*testing.T]string{}
)

// publicCopy copies this test binary into a public directory, once per
// test: the go tool's build directory is private to root.
func publicCopy(t *testing.T) string {
	t.Helper()
	copiesMu.Lock()
	defer copiesMu.Unlock()
	if exe, ok := copies[t]; ok {
		return exe
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(PublicDir(t), filepath.Base(self))
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	copies[t] = exe
	t.Cleanup(func() {
		copiesMu.Lock()
		delete(copies, t)
		copiesMu.Unlock()
	})
	return exe
}

// User is an account made for one test.
type User struct {
	Name     string
	UID, GID uint32
	// Groups are its supplementary groups, as the child is given them.
	Groups []uint32
}

// NewGroup creates a system group with a fresh name, deleted after the
// test. It skips the test unless it runs as root and groupadd exists.
func NewGroup(t *testing.T) (name string, gid uint32) {
	t.Helper()
	needAccounts(t, "groupadd")
	name = freshName("cag")
	if out, err := exec.Command("groupadd", "--system", name).CombinedOutput(); err != nil {
		t.Fatalf("groupadd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("groupdel", name).CombinedOutput(); err != nil {
			t.Errorf("groupdel %s: %v: %s", name, err, out)
		}
	})
	g, err := user.LookupGroup(name)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.ParseUint(g.Gid, 10, 32)
	return name, uint32(n)
}

// NewUser creates a system user with a fresh name, a primary group of its
// own and the supplementary groups named, deleted after the test. It skips
// the test unless it runs as root and useradd exists.
func NewUser(t *testing.T, groups ...string) User {
	t.Helper()
	needAccounts(t, "useradd")
	return NewUserArgs(t, nil, groups...)
}

// NewUserArgs is NewUser with more useradd arguments (such as --uid).
func NewUserArgs(t *testing.T, extra []string, groups ...string) User {
	t.Helper()
	needAccounts(t, "useradd")
	name := freshName("cau")
	args := append([]string{"--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin"}, extra...)
	if len(groups) > 0 {
		args = append(args, "--groups", strings.Join(groups, ","))
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if _, err := user.Lookup(name); err != nil {
			return // the test deleted it
		}
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	out := User{Name: name, UID: uint32(uid), GID: uint32(gid), Groups: []uint32{uint32(gid)}}
	for _, g := range groups {
		grp, err := user.LookupGroup(g)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.ParseUint(grp.Gid, 10, 32)
		out.Groups = append(out.Groups, uint32(n))
	}
	return out
}

func needAccounts(t *testing.T, tool string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create accounts")
	}
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("needs %s (Debian package passwd)", tool)
	}
}

// freshName is prefix and 8 random hex digits: short enough for any
// account-name limit, unlikely to meet a concurrent test's.
func freshName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
