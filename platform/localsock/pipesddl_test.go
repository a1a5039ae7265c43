package localsock

import (
	"strconv"
	"strings"
	"testing"
)

// aces splits a "D:P(...)(...)" DACL string into its entries' fields.
func aces(t *testing.T, sddl string) [][]string {
	t.Helper()
	if !strings.HasPrefix(sddl, "D:P(") || !strings.HasSuffix(sddl, ")") {
		t.Fatalf("%q: want a protected DACL, D:P(...)", sddl)
	}
	var out [][]string
	for _, a := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(sddl, "D:P("), ")"), ")(") {
		f := strings.Split(a, ";")
		if len(f) != 6 {
			t.Fatalf("%q: entry %q has %d fields, want 6", sddl, a, len(f))
		}
		out = append(out, f)
	}
	return out
}

func TestPipeSDDL(t *testing.T) {
	const user = "S-1-5-21-1-2-3-1001"
	got := aces(t, pipeSDDLFor([]string{user, "S-1-5-32-545"}))
	want := [][2]string{{"D", "NU"}, {"A", "SY"}, {"A", "BA"}, {"A", user}, {"A", "S-1-5-32-545"}}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i][0] != w[0] || got[i][5] != w[1] {
			t.Errorf("entry %d = %v, want %s for %s", i, got[i], w[0], w[1])
		}
	}
	// The deny for network logons comes first, so that it wins.
	if got[0][0] != "D" || got[0][2] != "GA" {
		t.Errorf("first entry %v, want (D;;GA;;;NU)", got[0])
	}
	// Configured principals get read and data-write: never all access,
	// never generic write, whose FILE_APPEND_DATA is FILE_CREATE_PIPE_INSTANCE
	// on a pipe and would let them create rogue server instances.
	for _, a := range got[3:] {
		if a[2] != clientAccessMaskSDDL {
			t.Errorf("configured principal %s gets %s, want %s", a[5], a[2], clientAccessMaskSDDL)
		}
		m, err := strconv.ParseUint(a[2], 0, 32)
		if err != nil {
			t.Fatal(err)
		}
		if m&fileCreatePipeInstance != 0 || m&fileWriteAttributes != 0 {
			t.Errorf("configured principal %s gets %#x: more than read and write-data", a[5], m)
		}
		if m != clientAccessMask || m&fileWriteData == 0 || m&fileGenericRead != fileGenericRead {
			t.Errorf("configured principal %s gets %#x, want FILE_GENERIC_READ|FILE_WRITE_DATA", a[5], m)
		}
	}
	// What a client asks for must be within what it is granted: GENERIC_READ
	// maps to FILE_GENERIC_READ, plus FILE_WRITE_DATA; no generic write.
	if pipeClientAccess&0x40000000 != 0 || pipeClientAccess&^(genericRead|clientAccessMask) != 0 {
		t.Errorf("clients ask for %#x, more than the DACL grants them", pipeClientAccess)
	}
	if pipeSDDLFor(nil) != pipeSDDLBase {
		t.Errorf("no principals: %q, want the base", pipeSDDLFor(nil))
	}
}

func TestDevPipeSDDL(t *testing.T) {
	const user = "S-1-5-21-1-2-3-1001"
	got := aces(t, devPipeSDDLFor(user))
	if len(got) != 2 || got[0][0] != "D" || got[0][5] != "NU" || got[1][0] != "A" || got[1][5] != user {
		t.Fatalf("dev descriptor %v: want NETWORK denied, then only %s", got, user)
	}
}
