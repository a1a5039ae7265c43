package keystore_test

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/credagent/credagent/platform/fsutil"
	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/keystore/keystoretest"
	"github.com/credagent/credagent/platform/winver"
	"golang.org/x/sys/windows"
)

// recorder is a Store that remembers every name it created, so that the
// test removes its machine keys from the provider afterwards.
type recorder struct {
	keystore.Store
	mu    *sync.Mutex
	names *[]string
}

func (r recorder) Create(name string) (keystore.Key, error) {
	r.mu.Lock()
	if !slices.Contains(*r.names, name) {
		*r.names = append(*r.names, name)
	}
	r.mu.Unlock()
	return r.Store.Create(name)
}

// TestCNGSoftwareContract runs the contract suite against the CNG backend
// with the Microsoft Software Key Storage Provider, chosen through the
// recorded-provider file so that a machine with a TPM tests it too.
func TestCNGSoftwareContract(t *testing.T) {
	if winver.IsWine() {
		t.Skip("Wine: ncrypt has no persisted keys and no ECDH_P256 (NCryptCreatePersistedKey: not supported; NCryptOpenKey is a stub)")
	}
	if !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("CNG machine keys need an elevated administrator")
	}
	dir := t.TempDir()
	if err := fsutil.WritePrivateFile(filepath.Join(dir, keystore.CNGProviderFile), []byte("Microsoft Software Key Storage Provider\n")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var names []string
	open := func(t *testing.T) keystore.Store {
		s, err := keystore.Open(keystore.Options{Backend: keystore.BackendCNG, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return recorder{Store: s, mu: &mu, names: &names}
	}
	t.Cleanup(func() {
		s := open(t)
		defer s.Close()
		for _, n := range names {
			if err := s.Delete(n); err != nil {
				t.Errorf("removing the test key %s: %v", n, err)
			}
		}
	})
	keystoretest.Run(t, keystoretest.Config{
		New:            open,
		Backend:        keystore.InfoCNGSoftware,
		HardwareBacked: false,
	})
}
