// Package fsutiltest undoes the privacy of a file the way an operator's
// mistake would, for the tests of code that must then refuse it: by mode
// bits on Unix, by the DACL on Windows (where chmod changes nothing that
// matters).
package fsutiltest

import "testing"

// LetOthersRead gives everyone read access to path, besides its owner: mode
// 0644 on Unix; on Windows a protected DACL that grants SYSTEM,
// Administrators and the current user full control and Everyone read.
func LetOthersRead(t testing.TB, path string) {
	t.Helper()
	if err := letOthersRead(path); err != nil {
		t.Fatalf("letting others read %s: %v", path, err)
	}
}
