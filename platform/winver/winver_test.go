package winver

import (
	"os"
	"runtime"
	"testing"
)

// TestIsWine checks the answer against what the test runner knows: the
// Windows test runner under Wine (scripts/test-windows.sh) sets
// CREDAGENT_TEST_UNDER_WINE=1, and a run on real Windows or Linux does not.
func TestIsWine(t *testing.T) {
	want := os.Getenv("CREDAGENT_TEST_UNDER_WINE") == "1"
	if runtime.GOOS != "windows" {
		want = false
	}
	if got := IsWine(); got != want {
		t.Fatalf("IsWine() = %v, want %v (GOOS=%s, CREDAGENT_TEST_UNDER_WINE=%q)", got, want, runtime.GOOS, os.Getenv("CREDAGENT_TEST_UNDER_WINE"))
	}
	if IsWine() != IsWine() {
		t.Fatal("IsWine changed its answer")
	}
}
