package winver

import "testing"

func TestSkipUnderWine(t *testing.T) {
	s := &skipper{}
	SkipUnderWine(s, "no CNG keys")
	if s.skipped != IsWine() {
		t.Fatalf("skipped = %v under Wine = %v", s.skipped, IsWine())
	}
}

type skipper struct{ skipped bool }

func (s *skipper) Skipf(string, ...any) { s.skipped = true }
