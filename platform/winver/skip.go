package winver

// SkipUnderWine skips the test t under Wine, naming the Wine limitation it
// waits for; on real Windows (and elsewhere) it does nothing, so the test
// runs in the real-Windows workflow.
func SkipUnderWine(t interface{ Skipf(string, ...any) }, limitation string) {
	if IsWine() {
		t.Skipf("needs real Windows; under Wine: %s", limitation)
	}
}
