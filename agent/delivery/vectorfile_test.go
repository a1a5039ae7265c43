package delivery

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/cryptotest"
)

// update rewrites the vector files from their definitions: the one way to
// change them on purpose. Without it, TestVectorsUpToDate and
// TestFeedVectorsUpToDate fail on any difference.
var update = flag.Bool("update", false, "rewrite testdata/vectors and testdata/feed from their definitions (an intentional change)")

// The metadata of a vector file: these keys, each once, in this order,
// then an empty line, then the delivery or manifest (SPEC.md, "Test
// vectors").
var (
	deliveryMetaKeys = []string{"expect", "comment", "now", "machine", "group", "last-seq"}
	feedMetaKeys     = []string{"expect", "comment", "now", "address", "last-seq"}
)

// renderVector writes a vector file.
func renderVector(keys []string, meta map[string]string, body []byte) []byte {
	var b bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, meta[k])
	}
	b.WriteByte('\n')
	b.Write(body)
	return b.Bytes()
}

// parseVector reads a vector file strictly: exactly keys, in order, each
// with a value; anything else (an unknown, missing, repeated or misplaced
// key, a line without ": ") is an error, so that a typo in a vector cannot
// quietly turn into an empty value.
func parseVector(b []byte, keys []string) (map[string]string, []byte, error) {
	head, body, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		return nil, nil, fmt.Errorf("no empty line after the metadata")
	}
	lines := strings.Split(string(head), "\n")
	meta := map[string]string{}
	for i, line := range lines {
		k, v, ok := strings.Cut(line, ": ")
		switch {
		case !ok:
			return nil, nil, fmt.Errorf("metadata line %q is not \"key: value\"", line)
		case !slices.Contains(keys, k):
			return nil, nil, fmt.Errorf("unknown metadata key %q", k)
		case meta[k] != "":
			return nil, nil, fmt.Errorf("metadata key %q repeated", k)
		case i >= len(keys) || keys[i] != k:
			return nil, nil, fmt.Errorf("metadata key %q out of place: want %q", k, strings.Join(keys, ", "))
		case v == "":
			return nil, nil, fmt.Errorf("metadata key %q has no value", k)
		}
		meta[k] = v
	}
	if len(lines) != len(keys) {
		return nil, nil, fmt.Errorf("metadata has %d keys, want %d (%s)", len(lines), len(keys), strings.Join(keys, ", "))
	}
	return meta, body, nil
}

// addVectorSeeds adds the body of every vector file in dir to f's corpus.
func addVectorSeeds(f *testing.F, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if _, body, ok := bytes.Cut(b, []byte("\n\n")); ok {
			f.Add(body)
		}
	}
}

// readVector reads and parses a vector file, failing the test on error.
func readVector(t *testing.T, f string, keys []string) (map[string]string, []byte) {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	meta, body, err := parseVector(b, keys)
	if err != nil {
		t.Fatalf("%s: %v", f, err)
	}
	return meta, body
}

// vectorFiles lists dir's vector files by name (without .txt).
func vectorFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors in %s (%v)", dir, err)
	}
	out := map[string]string{}
	for _, f := range files {
		out[strings.TrimSuffix(filepath.Base(f), ".txt")] = f
	}
	return out
}

// vectorDef is a vector's definition: its file name, its metadata, and how
// to make its bytes.
type vectorDef interface {
	fileName() string
	metadata() map[string]string
	make(t *testing.T) []byte
}

// checkUpToDate builds every vector of defs in memory, in order, from the
// fixed seed the checked-in files were made with, and compares them with
// dir (checkVectorDir).
func checkUpToDate[V vectorDef](t *testing.T, dir string, seed uint64, keys []string, defs func() []V) {
	t.Helper()
	cryptotest.SetGlobalRandom(t, seed)
	want := map[string][]byte{}
	for _, v := range defs() {
		want[v.fileName()] = renderVector(keys, v.metadata(), v.make(t))
	}
	checkVectorDir(t, dir, want)
}

// checkVectorDir compares dir's files with want (name -> file bytes),
// regenerated in memory from the definitions, and fails on any difference:
// a file changed by hand, a definition changed without its file, a file
// missing or left over. With -update it rewrites dir from want instead,
// and says what changed.
func checkVectorDir(t *testing.T, dir string, want map[string][]byte) {
	t.Helper()
	have := map[string][]byte{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		have[strings.TrimSuffix(filepath.Base(f), ".txt")] = b
	}
	var diffs []string
	for name, b := range want {
		switch h, ok := have[name]; {
		case !ok:
			diffs = append(diffs, name+": no file")
		case !bytes.Equal(h, b):
			diffs = append(diffs, name+": differs from its definition")
		}
	}
	for name := range have {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, name+": a file without a definition")
		}
	}
	sort.Strings(diffs)
	if len(diffs) == 0 {
		return
	}
	if !*update {
		t.Errorf("%s does not match its definitions (regenerated with the fixed seed):\n  %s\n"+
			"if the change is intended, run: go test ./agent/delivery -run 'UpToDate' -update",
			dir, strings.Join(diffs, "\n  "))
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name := range have {
		if _, ok := want[name]; !ok {
			os.Remove(filepath.Join(dir, name+".txt"))
		}
	}
	for name, b := range want {
		if err := os.WriteFile(filepath.Join(dir, name+".txt"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("rewrote %s:\n  %s", dir, strings.Join(diffs, "\n  "))
}

// A vector file's metadata is read strictly.
func TestParseVectorStrict(t *testing.T) {
	t.Parallel()
	keys := []string{"expect", "comment", "now"}
	tests := []struct {
		name, file string
		ok         bool
	}{
		{"good", "expect: success\ncomment: c\nnow: n\n\nBODY", true},
		{"unknown key", "expect: success\ncomment: c\nnow: n\nextra: x\n\nBODY", false},
		{"misspelt key", "expect: success\ncoment: c\nnow: n\n\nBODY", false},
		{"missing key", "expect: success\nnow: n\n\nBODY", false},
		{"repeated key", "expect: success\nexpect: replay\ncomment: c\nnow: n\n\nBODY", false},
		{"out of order", "comment: c\nexpect: success\nnow: n\n\nBODY", false},
		{"empty value", "expect: success\ncomment: \nnow: n\n\nBODY", false},
		{"no separator", "expect success\ncomment: c\nnow: n\n\nBODY", false},
		{"no empty line", "expect: success\ncomment: c\nnow: n\nBODY", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta, body, err := parseVector([]byte(tt.file), keys)
			if (err == nil) != tt.ok {
				t.Fatalf("err %v, want ok %v", err, tt.ok)
			}
			if tt.ok && (string(body) != "BODY" || meta["comment"] != "c" ||
				!bytes.Equal(renderVector(keys, meta, body), []byte(tt.file))) {
				t.Fatalf("meta %v body %q", meta, body)
			}
		})
	}
}
