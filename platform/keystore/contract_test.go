package keystore_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/keystore/keystoretest"
)

func TestMemoryContract(t *testing.T) {
	mem := keystore.NewMemoryStore()
	keystoretest.Run(t, keystoretest.Config{
		New:     func(t *testing.T) keystore.Store { return mem.Reopen() },
		Backend: keystore.BackendMemory,
	})
}

func TestFileContract(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	path := func(name string) string { return filepath.Join(dir, name+keystore.FileExt) }
	keystoretest.Run(t, keystoretest.Config{
		New: func(t *testing.T) keystore.Store {
			s, err := keystore.Open(keystore.Options{Backend: "file", Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Backend: keystore.BackendFile,
		Tamper:  fileTampers(path),
		Corrupt: func(t *testing.T, name string) {
			if err := os.WriteFile(path(name), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	})
}
