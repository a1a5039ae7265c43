// Package winver tells what kind of Windows the process runs on, for the
// few places (mostly tests) that must tell Wine from real Windows. Wine is
// recognised by ntdll.dll exporting wine_get_version, as Wine itself
// documents for programs that need to know.
package winver

// Wine reports whether the process runs under Wine. It is always false on
// other operating systems.
func Wine() bool { return wine() }

// SkipUnderWine skips the test t under Wine, naming the Wine limitation it
// waits for; on real Windows (and elsewhere) it does nothing.
func SkipUnderWine(t interface{ Skipf(string, ...any) }, limitation string) {
	if Wine() {
		t.Skipf("needs real Windows; under Wine: %s", limitation)
	}
}
