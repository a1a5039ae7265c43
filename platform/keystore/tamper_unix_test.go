//go:build !windows

package keystore_test

import (
	"os"
	"testing"

	"github.com/credagent/credagent/platform/keystore/keystoretest"
)

// fileTampers are the ways a key file can stop being private; the key store
// must refuse each on open.
func fileTampers(path func(name string) string) []keystoretest.Tamper {
	return []keystoretest.Tamper{
		{Name: "mode 0644", Apply: func(t *testing.T, name string) {
			must(t, os.Chmod(path(name), 0o644))
		}},
		{Name: "mode 0660", Apply: func(t *testing.T, name string) {
			must(t, os.Chmod(path(name), 0o660))
		}},
		{Name: "symlink", Apply: func(t *testing.T, name string) {
			p := path(name)
			real := p + ".elsewhere"
			must(t, os.Rename(p, real))
			must(t, os.Symlink(real, p))
		}},
		{Name: "hard link", Apply: func(t *testing.T, name string) {
			must(t, os.Link(path(name), path(name)+".copy"))
		}},
		{Name: "foreign owner", Apply: func(t *testing.T, name string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			must(t, os.Chown(path(name), 65534, 65534))
		}},
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
