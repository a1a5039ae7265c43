package logfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestRotationBoundsFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.log")
	l, err := Open(path, Options{MaxBytes: 100, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	line := []byte(strings.Repeat("x", 39) + "\n") // 40 bytes: two per file
	for i := 0; i < 20; i++ {
		if _, err := l.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"agent.log", "agent.log.1", "agent.log.2"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("files = %v, want %v", names, want)
	}
	for _, n := range names {
		st, _ := os.Stat(filepath.Join(dir, n))
		if st.Size() > 100 {
			t.Errorf("%s is %d bytes, over MaxBytes", n, st.Size())
		}
		if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", n, st.Mode().Perm())
		}
	}
}

func TestOversizedRecordWrittenWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l, err := Open(path, Options{MaxBytes: 10, MaxFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	big := bytes.Repeat([]byte("y"), 50)
	l.Write(big)
	l.Write(big)
	for _, p := range []string{path, path + ".1"} {
		b, _ := os.ReadFile(p)
		if !bytes.Equal(b, big) {
			t.Errorf("%s = %d bytes, want one whole record of 50", p, len(b))
		}
	}
}

func TestMaxFilesOneTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l, _ := Open(path, Options{MaxBytes: 10, MaxFiles: 1})
	defer l.Close()
	l.Write([]byte("first-rec\n"))
	l.Write([]byte("second\n"))
	b, _ := os.ReadFile(path)
	if string(b) != "second\n" {
		t.Fatalf("content %q", b)
	}
	if _, err := os.Stat(path + ".1"); !os.IsNotExist(err) {
		t.Fatalf("path.1 exists with MaxFiles=1")
	}
}

func TestAppendsAndNarrowsMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix modes")
	}
	path := filepath.Join(t.TempDir(), "a.log")
	os.WriteFile(path, []byte("old\n"), 0o644)
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("new\n"))
	l.Close()
	b, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	if string(b) != "old\nnew\n" || st.Mode().Perm() != 0o600 {
		t.Fatalf("content %q mode %v", b, st.Mode().Perm())
	}
	if _, err := l.Write([]byte("x")); err == nil {
		t.Fatal("write after Close succeeded")
	}
}

func TestRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("opened a directory as a log file")
	}
}

// Concurrent writers: every record lands whole and none is lost (up to what
// the bounded files keep).
func TestConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	l, err := Open(path, Options{MaxBytes: 4096, MaxFiles: 100})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				fmt.Fprintf(l, "w%02d-%04d-%s\n", w, i, strings.Repeat("z", 20))
			}
		}()
	}
	wg.Wait()
	l.Close()
	seen := map[string]bool{}
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, ln := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if len(ln) != 29 {
				t.Fatalf("torn record %q in %s", ln, f)
			}
			seen[ln] = true
		}
	}
	if len(seen) != writers*each {
		t.Fatalf("%d records, want %d", len(seen), writers*each)
	}
}
