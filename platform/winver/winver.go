// Package winver tells the Windows build whether it runs on Windows itself
// or under Wine, for the few places where Wine differs from Windows in a way
// the agent must work around (see IsWine's callers) and for tests that must
// name a Wine gap when they skip.
package winver

// IsWine reports whether the process is a Windows program running under
// Wine. It is false on real Windows and on every other platform.
//
// Wine is recognised by its ntdll.dll exporting wine_get_version, which
// Windows' ntdll does not; this is the check Wine's own developers
// recommend over version sniffing. The answer is computed once.
func IsWine() bool { return isWine() }
