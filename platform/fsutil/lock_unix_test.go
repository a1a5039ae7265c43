//go:build !windows

package fsutil_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/credagent/credagent/platform/fsutil"
)

func TestLockPrivateRefuses(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, path string)
	}{
		{"a symbolic link", func(t *testing.T, path string) {
			target := filepath.Join(filepath.Dir(path), "target")
			if err := os.WriteFile(target, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"a file others may write", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o666); err != nil {
				t.Fatal(err)
			}
		}},
		{"a second link", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(path, path+".2"); err != nil {
				t.Fatal(err)
			}
		}},
		{"a directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.lock")
			tt.plant(t, path)
			l, err := fsutil.LockPrivate(path, 0)
			if err == nil {
				l.Unlock()
				t.Fatal("LockPrivate took the lock")
			}
			if tt.name != "a directory" && !fsutil.IsInsecure(err) {
				t.Errorf("err = %v, want an InsecureError", err)
			}
		})
	}
}

func TestLockPrivateMakesAPrivateFile(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "x.lock")
	l, err := fsutil.LockPrivate(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode = %v, want a regular file with mode 0600", st.Mode())
	}
}
