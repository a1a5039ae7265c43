package keystore_test

import (
	"strings"
	"testing"

	"github.com/credagent/credagent/platform/keystore"
)

// TestCheckKeyNameIsTheStoresRule: a name CheckKeyName accepts can be
// created and rotated; one it refuses the store refuses too (issue 19:
// config accepted names the key store refused at create time).
func TestCheckKeyNameIsTheStoresRule(t *testing.T) {
	for _, name := range []string{"machine", "m", "a.b", "a_b-c", strings.Repeat("k", 59), "machine key", ".hidden", "a..b", "", "../x", `a\b`, "a:b", strings.Repeat("k", 60), strings.Repeat("k", 65)} {
		s := keystore.NewMemoryStore()
		_, createErr := s.Create(name)
		if createErr == nil {
			_, createErr = s.Create(keystore.PendingName(name))
		}
		checkErr := keystore.CheckKeyName(name)
		if (checkErr == nil) != (createErr == nil) {
			t.Errorf("%q: CheckKeyName says %v, the store (with its rotation) says %v", name, checkErr, createErr)
		}
	}
}
