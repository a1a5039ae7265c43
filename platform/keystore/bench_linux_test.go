//go:build linux

package keystore_test

import (
	"path/filepath"
	"testing"

	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/keystore/keystoretest"
)

func benchBackends(*testing.B) []benchBackend {
	return []benchBackend{
		{"memory", func(b *testing.B) keystore.Store { return keystore.NewMemoryStore() }},
		{"file", func(b *testing.B) keystore.Store {
			return openOrFail(b, keystore.Options{Backend: "file", Dir: filepath.Join(b.TempDir(), "keys")})
		}},
		{"tpm", func(b *testing.B) keystore.Store {
			tpm := keystoretest.StartSwtpm(b, keystoretest.SwtpmOptions{})
			return openOrFail(b, keystore.Options{Backend: "tpm", Dir: filepath.Join(b.TempDir(), "keys"), TPMDevice: tpm.Device})
		}},
	}
}
