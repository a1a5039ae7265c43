package winver

import (
	"os"
	"runtime"
	"testing"
)

// TestWine checks the answer against another sign of Wine: its Z: drive
// maps the Unix root, so Z:\proc\self exists; on real Windows it does not.
func TestWine(t *testing.T) {
	if runtime.GOOS != "windows" {
		if Wine() {
			t.Fatal("Wine() is true outside Windows")
		}
		return
	}
	_, err := os.Stat(`Z:\proc\self\status`)
	underWine := err == nil
	if Wine() != underWine {
		t.Fatalf("Wine() = %v, but the environment says Wine: %v", Wine(), underWine)
	}
}

func TestSkipUnderWine(t *testing.T) {
	s := &skipper{}
	SkipUnderWine(s, "no CNG keys")
	if s.skipped != Wine() {
		t.Fatalf("skipped = %v under Wine = %v", s.skipped, Wine())
	}
}

type skipper struct{ skipped bool }

func (s *skipper) Skipf(string, ...any) { s.skipped = true }
