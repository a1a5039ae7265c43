//go:build !windows

package logfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusesPlantedFiles plants, where the agent writes its log, what
// someone able to write to the log directory could plant: the agent must
// neither write through it nor chmod what it points to.
func TestRefusesPlantedFiles(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, path, target string)
		root  bool
		msg   string
	}{
		{"symlink to another file", func(t *testing.T, path, target string) {
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, false, "symbolic link"},
		{"hard link to another file", func(t *testing.T, path, target string) {
			if err := os.Link(target, path); err != nil {
				t.Fatal(err)
			}
		}, false, "hard links"},
		{"a file of another user", func(t *testing.T, path, _ string) {
			if err := os.WriteFile(path, []byte("theirs\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, true, "owned by uid 65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root to chown")
			}
			dir := t.TempDir()
			target := filepath.Join(t.TempDir(), "shadow")
			if err := os.WriteFile(target, []byte("root:x:0\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "agent.log")
			tt.plant(t, path, target)
			l, err := Open(path, Options{})
			if err == nil {
				l.Write([]byte("log line\n"))
				l.Close()
				t.Fatal("Open succeeded on a planted file")
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want it to mention %q", err, tt.msg)
			}
			b, _ := os.ReadFile(target)
			fi, _ := os.Stat(target)
			if string(b) != "root:x:0\n" || fi.Mode().Perm() != 0o640 {
				t.Errorf("the planted link's target changed: %q mode %v", b, fi.Mode().Perm())
			}
		})
	}
}

// TestRefusesSharedDirectory refuses a log directory others can write to.
func TestRefusesSharedDirectory(t *testing.T) {
	for _, mode := range []os.FileMode{0o777, 0o1777, 0o770, 0o730} {
		dir := t.TempDir()
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		l, err := Open(filepath.Join(dir, "agent.log"), Options{})
		if err == nil {
			l.Close()
			t.Errorf("mode %v: Open succeeded in a directory others can write to", mode)
			continue
		}
		if !strings.Contains(err.Error(), "writable by others") {
			t.Errorf("mode %v: err = %v", mode, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("mode %v: a file was created: %v", mode, ents)
		}
	}
	// A directory of the agent's own (0755 too: others may read, not write).
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	l, err := Open(filepath.Join(dir, "agent.log"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}
