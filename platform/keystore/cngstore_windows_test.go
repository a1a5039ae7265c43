//go:build windows

package keystore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
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

// Two stores on one directory, as the service and an operator's enroll are,
// both create the same key at once: one makes it and the other is told it
// exists, and the mapping names the key the winner holds. Without
// CNGLockFile both can pass the "no such key" check, make a key each, and
// the later mapping write forgets the other key. Real Windows only.
func TestCNGConcurrentCreateMakesOneKey(t *testing.T) {
	winver.SkipUnderWine(t, "Wine's ncrypt has no persisted keys")
	dir := t.TempDir()
	if err := writeProviderForTest(dir, cngSoftwareProvider); err != nil {
		t.Fatal(err)
	}
	open := func() Store {
		st, err := Open(Options{Backend: BackendCNG, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b, check := open(), open(), open()
	for round := range 5 {
		name := fmt.Sprintf("race-test-%d", round)
		t.Cleanup(func() { check.Delete(name) })
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			keys  [2]Key
			errs  [2]error
		)
		for i, st := range []Store{a, b} {
			wg.Go(func() {
				<-start
				keys[i], errs[i] = st.Create(name)
			})
		}
		close(start)
		wg.Wait()
		var winner Key
		for i := range keys {
			switch {
			case errs[i] == nil && winner == nil:
				winner = keys[i]
			case errs[i] == nil:
				t.Fatalf("round %d: both stores made %s", round, name)
			case !errors.Is(errs[i], ErrExists):
				t.Fatalf("round %d: Create: %v, want ErrExists for the second", round, errs[i])
			}
		}
		if winner == nil {
			t.Fatalf("round %d: neither store made %s: %v", round, name, errs)
		}
		k, err := check.Open(name)
		if err != nil || !k.PublicKey().Equal(winner.PublicKey()) {
			t.Fatalf("round %d: %s opens as another key than the one made (err %v)", round, name, err)
		}
	}
}

func writeProviderForTest(dir, provider string) error {
	return fsutil.WritePrivateFile(cngProviderPath(dir), cngProviderRecord(provider, ""))
}
