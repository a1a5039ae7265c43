//go:build !windows

package fsutil

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteReadPrivateFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	for _, data := range [][]byte{[]byte("first"), []byte("second, longer"), {}} {
		if err := WritePrivateFile(p, data); err != nil {
			t.Fatal(err)
		}
		got, err := ReadPrivateFile(p, 1024)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read %q, want %q", got, data)
		}
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 || !st.Mode().IsRegular() {
			t.Fatalf("mode %v, want -rw-------", st.Mode())
		}
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("dir has %d entries, want 1", len(ents))
	}
}

func TestWritePrivateFileUmask(t *testing.T) {
	// Even a permissive existing file is replaced by a 0600 one.
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("old"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := WritePrivateFile(p, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivateFile(p, 10); err != nil {
		t.Fatal(err)
	}
}

func TestWritePrivateFileReplacesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("untouched"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := WritePrivateFile(link, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "untouched" {
		t.Fatalf("write went through the symlink: target now %q", b)
	}
	if st, _ := os.Lstat(link); st.Mode()&os.ModeSymlink != 0 {
		t.Fatal("link is still a symlink")
	}
}

func TestReadPrivateFileRefuses(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, p string)
		problem string // substring of the error
	}{
		{"group readable", func(t *testing.T, p string) { chmod(t, p, 0o640) }, "mode 0640"},
		{"world readable", func(t *testing.T, p string) { chmod(t, p, 0o644) }, "mode 0644"},
		{"symlink", func(t *testing.T, p string) {
			real := p + ".real"
			must(t, os.Rename(p, real))
			must(t, os.Symlink(real, p))
		}, "symbolic link"},
		{"hard link", func(t *testing.T, p string) { must(t, os.Link(p, p+".other")) }, "2 hard links"},
		{"directory", func(t *testing.T, p string) {
			must(t, os.Remove(p))
			must(t, os.Mkdir(p, 0o700))
		}, "not a regular file"},
		{"fifo", func(t *testing.T, p string) {
			must(t, os.Remove(p))
			mkfifo(t, p)
		}, "not a regular file"},
		{"foreign owner", func(t *testing.T, p string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			must(t, os.Chown(p, 65534, 65534))
		}, "owned by uid 65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "secret")
			must(t, WritePrivateFile(p, []byte("x")))
			tt.setup(t, p)
			_, err := ReadPrivateFile(p, 10)
			if !errors.Is(err, ErrInsecure) {
				t.Fatalf("err = %v, want ErrInsecure", err)
			}
			var ie *InsecureError
			if !errors.As(err, &ie) || ie.Fix == "" {
				t.Fatalf("err = %v, want an *InsecureError with a fix", err)
			}
			if !strings.Contains(err.Error(), tt.problem) {
				t.Fatalf("err = %v, want it to say %q", err, tt.problem)
			}
		})
	}
}

func TestReadPrivateFileLimits(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	must(t, WritePrivateFile(p, make([]byte, 11)))
	if _, err := ReadPrivateFile(p, 10); err == nil || IsInsecure(err) {
		t.Fatalf("err = %v, want a size error", err)
	}
	if _, err := ReadPrivateFile(p+".missing", 10); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
}

func TestMkdirPrivate(t *testing.T) {
	base := t.TempDir()
	d := filepath.Join(base, "a", "b")
	must(t, MkdirPrivate(d))
	must(t, MkdirPrivate(d)) // again: fine
	st, err := os.Stat(d)
	must(t, err)
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v, want 0700", st.Mode().Perm())
	}

	open := filepath.Join(base, "open")
	must(t, os.Mkdir(open, 0o755))
	chmod(t, open, 0o755)
	if err := MkdirPrivate(open); !IsInsecure(err) {
		t.Fatalf("0755 dir: err = %v, want ErrInsecure", err)
	}
	link := filepath.Join(base, "link")
	must(t, os.Symlink(d, link))
	if err := MkdirPrivate(link); !IsInsecure(err) {
		t.Fatalf("symlinked dir: err = %v, want ErrInsecure", err)
	}
}

func chmod(t *testing.T, p string, m os.FileMode) { t.Helper(); must(t, os.Chmod(p, m)) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCreatePrivateFileExclusive(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	must(t, CreatePrivateFile(p, []byte("one")))
	if err := CreatePrivateFile(p, []byte("two")); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second create: err = %v, want ErrExist", err)
	}
	dangling := filepath.Join(dir, "dangling")
	must(t, os.Symlink(filepath.Join(dir, "nowhere"), dangling))
	if err := CreatePrivateFile(dangling, []byte("x")); !errors.Is(err, os.ErrExist) {
		t.Fatalf("create over a dangling symlink: err = %v, want ErrExist", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("create followed the dangling symlink")
	}
	b, err := ReadPrivateFile(p, 10)
	must(t, err)
	if string(b) != "one" {
		t.Fatalf("read %q, want %q", b, "one")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("dir has %d entries, want 2 (no temporary files left)", len(ents))
	}
}
