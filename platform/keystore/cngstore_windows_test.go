//go:build windows

package keystore

import (
	"errors"
	"strings"
	"testing"

	"github.com/credagent/credagent/platform/fsutil"
	"github.com/credagent/credagent/platform/winver"
)

// A provider name that is not registered fails with a clear error, also
// where NCryptOpenStorageProvider "opens" any name (Wine's stub).
func TestCNGRefusesUnregisteredProvider(t *testing.T) {
	s, err := openCNGProvider("credagent No Such Key Storage Provider")
	if err == nil {
		s.Close()
		t.Fatal("an unregistered provider opened")
	}
	if !errors.Is(err, ErrProviderUnusable) || !strings.Contains(err.Error(), "No Such Key Storage Provider") {
		t.Fatalf("err = %v, want ErrProviderUnusable naming the provider", err)
	}
	t.Logf("refused as it should be: %v", err)
}

// Under Wine no provider works (its ncrypt has no persisted keys): the
// store must say so when it opens, not report a key store, let alone a
// hardware-backed one. On real Windows the store opens and, before any key,
// claims no hardware.
func TestCNGOpenTellsAProviderThatDoesNotWork(t *testing.T) {
	st, err := Open(Options{Backend: BackendCNG, Dir: t.TempDir()})
	if winver.IsWine() {
		if err == nil {
			info := st.Info()
			st.Close()
			t.Fatalf("under Wine the cng backend opened: %+v", info)
		}
		if !errors.Is(err, ErrProviderUnusable) {
			t.Fatalf("err = %v, want ErrProviderUnusable", err)
		}
		t.Logf("refused as it should be: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("Open(cng): %v", err)
	}
	defer st.Close()
	if info := st.Info(); info.HardwareBacked {
		t.Fatalf("before any key: %+v claims hardware", info)
	}
}

// A rotation on CNG finishes: Promote switches the name and destroys the
// old key (S4). Real Windows only, in the software provider so that it runs
// on any runner.
func TestCNGRotationFinishes(t *testing.T) {
	winver.SkipUnderWine(t, "Wine's ncrypt has no persisted keys")
	dir := t.TempDir()
	if err := writeProviderForTest(dir, cngSoftwareProvider); err != nil {
		t.Fatal(err)
	}
	st, err := Open(Options{Backend: BackendCNG, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	name := "rotation-test"
	t.Cleanup(func() {
		st.Delete(name)
		st.Delete(PendingName(name))
		st.Close()
	})
	old, err := st.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	next, created, err := Rotate(st, name)
	if err != nil || !created {
		t.Fatalf("Rotate: %v %v", created, err)
	}
	names, err := st.(*CNGStore).loadNames()
	if err != nil {
		t.Fatal(err)
	}
	oldCNG := names.cngName(name)
	if err := Promote(st, name); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	k, err := st.Open(name)
	if err != nil || !k.PublicKey().Equal(next.PublicKey()) || k.PublicKey().Equal(old.PublicKey()) {
		t.Fatalf("after Promote %s is not the new key (err %v)", name, err)
	}
	if _, err := st.Open(PendingName(name)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pending key after Promote: %v, want ErrNotFound", err)
	}
	s := st.(*CNGStore)
	s.mu.Lock()
	_, err = s.openKey(oldCNG)
	s.mu.Unlock()
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("the old CNG key %s still opens after Promote: %v", oldCNG, err)
	}
	if err := Promote(st, name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Promote without a rotation: %v, want ErrNotFound", err)
	}
}

func writeProviderForTest(dir, provider string) error {
	return fsutil.WritePrivateFile(cngProviderPath(dir), cngProviderRecord(provider, ""))
}
