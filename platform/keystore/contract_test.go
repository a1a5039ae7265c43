package keystore_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/keystore/keystoretest"
)

func TestMemoryContract(t *testing.T) {
	t.Parallel()
	mem := keystore.NewMemoryStore()
	keystoretest.Run(t, keystoretest.Config{
		New:      func(t *testing.T) keystore.Store { return mem.Reopen() },
		Backend:  keystore.BackendMemory,
		Parallel: true,
	})
}

func TestFileContract(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys")
	path := func(name string) string { return filepath.Join(dir, name+keystore.FileExt) }
	keystoretest.Run(t, keystoretest.Config{
		New: func(t *testing.T) keystore.Store {
			s, err := keystore.Open(keystore.Options{Backend: keystore.BackendFile, Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Backend:  keystore.BackendFile,
		Parallel: true,
		Tamper:   fileTampers(path),
		Corrupt: func(t *testing.T, name string) {
			if err := os.WriteFile(path(name), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	})
}
