//go:build !linux

package keystore_test

import (
	"path/filepath"
	"testing"

	"github.com/credagent/credagent/platform/keystore"
)

func benchBackends(*testing.B) []benchBackend {
	return []benchBackend{
		{"memory", func(b *testing.B) keystore.Store { return keystore.NewMemoryStore() }},
		{"file", func(b *testing.B) keystore.Store {
			return openOrFail(b, keystore.Options{Backend: "file", Dir: filepath.Join(b.TempDir(), "keys")})
		}},
	}
}
