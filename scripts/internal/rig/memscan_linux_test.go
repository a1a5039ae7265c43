package rig

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"reflect"
	"testing"
)

func TestScanRange(t *testing.T) {
	tests := []struct {
		name   string
		mem    string
		start  uint64
		needle string
		other  string // a second needle, searched in the same pass
		buf    int
		want   []uint64
		// wantOther are other's offsets.
		wantOther []uint64
	}{
		{name: "none", mem: "abcdefgh", needle: "xy", buf: 4, want: nil},
		{name: "inside a chunk", mem: "abcdefgh", needle: "cd", buf: 8, want: []uint64{2}},
		{name: "across chunks", mem: "abcdefgh", needle: "def", buf: 4, want: []uint64{3}},
		{name: "at the end", mem: "abcdefgh", needle: "gh", buf: 3, want: []uint64{6}},
		{name: "not overlapping", mem: "aaaaa", needle: "aa", buf: 3, want: []uint64{0, 2}},
		{name: "not overlapping across chunks", mem: "xaaaax", needle: "aaa", buf: 4, want: []uint64{1}},
		{name: "several", mem: "pw..pw..pw", needle: "pw", buf: 5, want: []uint64{0, 4, 8}},
		{name: "from an offset", mem: "..pw..pw", start: 2, needle: "pw", buf: 4, want: []uint64{0, 4}},
		{name: "short beside long", mem: "abcdefghij", needle: "ij", other: "cdefgh", buf: 7, want: []uint64{8}, wantOther: []uint64{2}},
		{name: "long across chunks beside short", mem: "abcdefghij", needle: "b", other: "efghi", buf: 6, want: []uint64{1}, wantOther: []uint64{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needles := [][]byte{[]byte(tt.needle)}
			if tt.other != "" {
				needles = append(needles, []byte(tt.other))
			}
			hits, n, err := scanRange(bytes.NewReader([]byte(tt.mem)), tt.start, uint64(len(tt.mem)), needles, make([]byte, tt.buf))
			if err != nil {
				t.Fatal(err)
			}
			got := hits[0]
			if tt.other != "" && !reflect.DeepEqual(hits[1], tt.wantOther) {
				t.Errorf("other's offsets %v, want %v", hits[1], tt.wantOther)
			}
			if n != uint64(len(tt.mem))-tt.start {
				t.Errorf("read %d bytes, want %d", n, uint64(len(tt.mem))-tt.start)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("offsets %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCountInMemory runs this test binary again as a child that reads a
// random value from its stdin, keeps three copies of it, and then wipes
// them: the scan must find exactly three copies, then none.
func TestCountInMemory(t *testing.T) {
	if os.Getenv("RIG_MEMSCAN_CHILD") == "1" {
		memscanChild()
		return
	}
	secret := make([]byte, 24)
	rand.Read(secret)
	needle := []byte(hex.EncodeToString(secret))
	cmd := exec.Command(os.Args[0], "-test.run=^TestCountInMemory$")
	cmd.Env = append(os.Environ(), "RIG_MEMSCAN_CHILD=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer in.Close()
	out := bufio.NewReader(outPipe)
	step := func(send, want string) {
		t.Helper()
		if _, err := in.Write([]byte(send)); err != nil {
			t.Fatal(err)
		}
		line, err := out.ReadString('\n')
		if err != nil || line != want+"\n" {
			t.Fatalf("child said %q (%v), want %q", line, err, want)
		}
	}
	// absent is never in the child: it is searched in the same pass.
	absent := []byte(hex.EncodeToString(secret[:20]) + "zz")
	count := func() (int, int) {
		t.Helper()
		found, err := CountInMemory(cmd.Process.Pid, needle, absent)
		if err != nil {
			t.Fatal(err)
		}
		return len(found[0]), len(found[1])
	}
	step(string(needle), "planted")
	if n, a := count(); n != 3 || a != 0 {
		t.Errorf("found %d copies in the child, want the 3 it keeps, and %d of a value it never had", n, a)
	}
	step("w", "wiped")
	if n, _ := count(); n != 0 {
		t.Errorf("found %d copies in the child after it wiped them, want 0", n)
	}
	if _, err := CountInMemory(cmd.Process.Pid, nil); err == nil {
		t.Error("an empty needle is accepted")
	}
	if _, err := CountInMemory(cmd.Process.Pid); err == nil {
		t.Error("no needle is accepted")
	}
}

// memscanChild is the child of TestCountInMemory. It reads straight into
// its own buffer (no bufio, whose buffer would be one more copy).
func memscanChild() {
	var got [48]byte
	if _, err := io.ReadFull(os.Stdin, got[:]); err != nil {
		os.Exit(2)
	}
	kept := [][]byte{bytes.Clone(got[:]), bytes.Clone(got[:]), bytes.Clone(got[:])}
	clear(got[:])
	os.Stdout.WriteString("planted\n")
	var b [1]byte
	if _, err := os.Stdin.Read(b[:]); err != nil {
		os.Exit(2)
	}
	for _, k := range kept {
		clear(k)
	}
	os.Stdout.WriteString("wiped\n")
	os.Stdin.Read(b[:]) // until the parent closes stdin
	os.Exit(0)
}
