// Package testuser gives tests real local users to act as: the portal's
// drop account, an unrelated user. It creates them with useradd (as root)
// and runs commands as them with syscall credentials, so that an attack in a
// test is made with the permissions an attacker would have.
package testuser

import (
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"testing"
)

// User is a local user.
type User struct {
	Name     string
	UID, GID uint32
}

// Ensure returns the system user name, creating it (without a home or a
// login shell) if needed. It skips the test when not root or when the user
// cannot be created.
func Ensure(t testing.TB, name string) User {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create users and act as them")
	}
	u, err := user.Lookup(name)
	if err != nil {
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
			t.Skipf("useradd %s: %v: %s", name, err, out)
		}
		if u, err = user.Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return User{Name: name, UID: uint32(uid), GID: uint32(gid)}
}

// Sh runs a shell script as u and fails the test if it fails.
func (u User) Sh(t testing.TB, script string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as %s: %s: %v: %s", u.Name, script, err, out)
	}
}

// Chown gives path to u.
func (u User) Chown(t testing.TB, path string) {
	t.Helper()
	if err := os.Chown(path, int(u.UID), int(u.GID)); err != nil {
		t.Fatal(err)
	}
}
