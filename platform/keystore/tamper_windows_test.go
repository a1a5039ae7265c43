//go:build windows

package keystore_test

import (
	"os"
	"testing"

	"github.com/credagent/credagent/platform/fsutil/fsutiltest"
	"github.com/credagent/credagent/platform/keystore/keystoretest"
	"github.com/credagent/credagent/platform/winver"
)

// fileTampers are the ways a key file can stop being private on Windows,
// where its privacy is its DACL, not mode bits; the key store must refuse
// each on open. (Another owner needs SeRestorePrivilege to set, and is
// covered by fsutil's own checks.)
func fileTampers(path func(name string) string) []keystoretest.Tamper {
	return []keystoretest.Tamper{
		{Name: "Everyone may read", Apply: func(t *testing.T, name string) {
			fsutiltest.LetOthersRead(t, path(name))
		}},
		{Name: "hard link", Apply: func(t *testing.T, name string) {
			if err := os.Link(path(name), path(name)+".copy"); err != nil {
				t.Fatal(err)
			}
		}},
		{Name: "symlink", Apply: func(t *testing.T, name string) {
			p := path(name)
			real := p + ".elsewhere"
			if err := os.Rename(p, real); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(real, p); err != nil {
				t.Skipf("creating a symlink needs SeCreateSymbolicLinkPrivilege: %v", err)
			}
			if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				if winver.IsWine() {
					t.Skip("Wine: CreateSymbolicLink reports success and creates nothing")
				}
				t.Fatalf("os.Symlink made no symlink at %s: %v", p, err)
			}
		}},
	}
}
