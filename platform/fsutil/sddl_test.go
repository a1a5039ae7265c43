package fsutil

import (
	"strings"
	"testing"
)

// TestPrivateSDDL pins the Windows descriptor: protected, SYSTEM and
// Administrators only. The string itself is only parsed by Windows.
func TestPrivateSDDL(t *testing.T) {
	if !strings.HasPrefix(PrivateSDDL, "D:P") {
		t.Errorf("%q: the DACL must be protected from inheritance", PrivateSDDL)
	}
	aces := strings.Split(strings.TrimPrefix(PrivateSDDL, "D:P"), ")(")
	want := map[string]bool{"SY": true, "BA": true}
	for _, a := range aces {
		f := strings.Split(strings.Trim(a, "()"), ";")
		if len(f) != 6 || f[0] != "A" || !want[f[5]] {
			t.Errorf("unexpected entry %q in %q", a, PrivateSDDL)
		}
		delete(want, f[5])
	}
	if len(want) != 0 {
		t.Errorf("%q misses %v", PrivateSDDL, want)
	}
}

func TestPrivateSDDLFor(t *testing.T) {
	for _, c := range []struct{ sid, want string }{
		// Elevated or SYSTEM: Administrators own the file whatever the
		// policy on creator ownership says, so the service accepts it.
		{"", "O:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)"},
		{"S-1-5-18", "O:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)"}, // SYSTEM is already there as SY
		// An ordinary user (dev mode) owns its files, which the checks
		// trust as the current account.
		{"S-1-5-21-1-2-3-1001", "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;S-1-5-21-1-2-3-1001)"},
	} {
		if got := PrivateSDDLFor(c.sid); got != c.want {
			t.Errorf("PrivateSDDLFor(%q) = %q, want %q", c.sid, got, c.want)
		}
	}
}
