// Package keystoretest is the contract test suite that every keystore
// backend passes, and helpers to run it: a swtpm started and stopped from Go
// tests, and the unwrap benchmark.
//
// A backend's test calls Run with a Config whose New opens a store over the
// backend's persistent state; calling New again after Close is a "restart".
// Every subtest uses its own key names, so the state may be shared by all.
package keystoretest

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/credagent/credagent/platform/keystore"
)

// Config describes the backend under test.
type Config struct {
	// New opens a store over the backend's persistent state. The suite
	// closes it.
	New func(t *testing.T) keystore.Store
	// Backend and HardwareBacked are what Info must report.
	Backend        string
	HardwareBacked bool
	// Tamper lists ways to make a stored key insecure. After each, Open
	// must fail with an error wrapping keystore.ErrInsecure.
	Tamper []Tamper
	// Corrupt damages the stored key called name so that it no longer
	// loads; Open must then fail with keystore.ErrNeedsReenroll. Nil: not
	// tested.
	Corrupt func(t *testing.T, name string)
	// Wipe destroys the backend's hardware state (a cleared TPM). Keys made
	// before must then fail to open with keystore.ErrNeedsReenroll, and a
	// new key must be creatable. It runs last. Nil: not tested.
	Wipe func(t *testing.T)
	// Parallel says the backend's keys are independent of each other, so
	// that the subtests, each on its own key, run in parallel (all but
	// Wipe, which runs after them). A TPM or CNG provider is one device:
	// leave it false.
	Parallel bool
}

// Tamper makes the stored key called name insecure.
type Tamper struct {
	Name  string
	Apply func(t *testing.T, name string)
}

// Run runs the contract suite.
func Run(t *testing.T, cfg Config) {
	tests := []struct {
		name string
		f    func(t *testing.T, cfg Config, key string)
	}{
		{"Create", testCreate},
		{"CreateExists", testCreateExists},
		{"OpenAfterRestart", testOpenAfterRestart},
		{"NotFound", testNotFound},
		{"InvalidNames", testInvalidNames},
		{"ECDH", testECDH},
		{"ECDHBadPeer", testECDHBadPeer},
		{"HPKEOpen", testHPKE},
		{"Concurrent", testConcurrent},
		{"Delete", testDelete},
		{"Rotation", testRotation},
		{"Insecure", testInsecure},
		{"Corrupt", testCorrupt},
		{"Wipe", testWipe}, // last: destroys the backend's state
	}
	run := func(t *testing.T, name string, f func(t *testing.T, cfg Config, key string), parallel bool) {
		t.Run(name, func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			f(t, cfg, "ct-"+strings.ToLower(name))
		})
	}
	if !cfg.Parallel {
		for _, tt := range tests {
			run(t, tt.name, tt.f, false)
		}
		return
	}
	// A group, so that Wipe waits for the parallel subtests to end.
	t.Run("Keys", func(t *testing.T) {
		for _, tt := range tests[:len(tests)-1] {
			run(t, tt.name, tt.f, true)
		}
	})
	last := tests[len(tests)-1]
	run(t, last.name, last.f, false)
}

func open(t *testing.T, cfg Config) keystore.Store {
	t.Helper()
	s := cfg.New(t)
	t.Cleanup(func() { s.Close() })
	return s
}

func create(t *testing.T, s keystore.Store, name string) keystore.Key {
	t.Helper()
	k, err := s.Create(name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	return k
}

func testCreate(t *testing.T, cfg Config, name string) {
	s := open(t, cfg)
	info := s.Info()
	if info.Backend != cfg.Backend || info.HardwareBacked != cfg.HardwareBacked {
		t.Errorf("Info() = %+v, want backend %q, hardware %v", info, cfg.Backend, cfg.HardwareBacked)
	}
	k := create(t, s, name)
	if k.Curve() != ecdh.P256() || k.PublicKey().Curve() != ecdh.P256() {
		t.Fatalf("curve %v, want P-256", k.Curve())
	}
	if k.ID() != keystore.KeyID(k.PublicKey()) {
		t.Fatalf("ID() = %q, want KeyID of the public key %q", k.ID(), keystore.KeyID(k.PublicKey()))
	}
	k2 := create(t, s, name+"-2")
	if k2.PublicKey().Equal(k.PublicKey()) {
		t.Fatal("two Creates made the same key")
	}
	if s, ok := k.(fmt.Stringer); ok && !strings.Contains(s.String(), k.ID()) {
		t.Errorf("String() = %q, want it to name the key ID", s.String())
	}
}

func testCreateExists(t *testing.T, cfg Config, name string) {
	s := open(t, cfg)
	k := create(t, s, name)
	if _, err := s.Create(name); !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("second Create: err = %v, want ErrExists", err)
	}
	// The failed Create left the first key alone.
	k2, err := s.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if !k2.PublicKey().Equal(k.PublicKey()) {
		t.Fatal("a failed Create replaced the key")
	}
}

func testOpenAfterRestart(t *testing.T, cfg Config, name string) {
	s := cfg.New(t)
	k := create(t, s, name)
	peer := newPeer(t)
	want, err := k.ECDH(peer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := open(t, cfg)
	k2, err := s2.Open(name)
	if err != nil {
		t.Fatalf("Open after restart: %v", err)
	}
	if !k2.PublicKey().Equal(k.PublicKey()) || k2.ID() != k.ID() {
		t.Fatal("reopened key has another public key")
	}
	got, err := k2.ECDH(peer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("reopened key computes another shared secret")
	}
}

func testNotFound(t *testing.T, cfg Config, name string) {
	s := open(t, cfg)
	if _, err := s.Open(name); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Open of a missing key: err = %v, want ErrNotFound", err)
	}
	if _, err := keystore.OpenAll(s, name); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("OpenAll of a missing key: err = %v, want ErrNotFound", err)
	}
}

func testInvalidNames(t *testing.T, cfg Config, _ string) {
	s := open(t, cfg)
	for _, n := range []string{"", ".", "..", "../x", "a/b", `a\b`, ".hidden", "x..y", strings.Repeat("a", 65), "nul\x00"} {
		if _, err := s.Create(n); err == nil || errors.Is(err, keystore.ErrExists) {
			t.Errorf("Create(%q): err = %v, want an invalid-name error", n, err)
		}
		if _, err := s.Open(n); err == nil || errors.Is(err, keystore.ErrNotFound) {
			t.Errorf("Open(%q): err = %v, want an invalid-name error", n, err)
		}
	}
}

func newPeer(t testing.TB) *ecdh.PrivateKey {
	t.Helper()
	p, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testECDH(t *testing.T, cfg Config, name string) {
	s := open(t, cfg)
	k := create(t, s, name)
	for i := range 8 {
		peer := newPeer(t)
		got, err := k.ECDH(peer.PublicKey())
		if err != nil {
			t.Fatalf("ECDH #%d: %v", i, err)
		}
		want, err := peer.ECDH(k.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("ECDH #%d = %x, software ECDH = %x", i, got, want)
		}
	}
}

func testECDHBadPeer(t *testing.T, cfg Config, name string) {
	s := open(t, cfg)
	k := create(t, s, name)
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdh.P384().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		peer *ecdh.PublicKey
	}{{"nil", nil}, {"X25519", x.PublicKey()}, {"P-384", p384.PublicKey()}} {
		if _, err := k.ECDH(tt.peer); err == nil {
			t.Errorf("ECDH with a %s peer succeeded", tt.name)
		}
	}
}

func testHPKE(t *testing.T, cfg Config, name string) {
	s := open(t, cfg)
	k := create(t, s, name)
	other := create(t, s, name+"-other")
	pub, err := hpke.NewDHKEMPublicKey(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	priv, err := hpke.NewDHKEMPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	otherPriv, err := hpke.NewDHKEMPrivateKey(other)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		info, msg []byte
	}{
		{"empty", nil, nil},
		{"small", []byte("credagent delivery v1"), []byte("hello")},
		{"certificate-sized", []byte("info"), bytes.Repeat([]byte{0xA5}, 8<<10)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ct, err := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), tt.info, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := hpke.Open(priv, hpke.HKDFSHA256(), hpke.AES256GCM(), tt.info, ct)
			if err != nil {
				t.Fatalf("hpke.Open: %v", err)
			}
			if !bytes.Equal(pt, tt.msg) {
				t.Fatal("hpke.Open returned other plaintext")
			}
			if _, err := hpke.Open(otherPriv, hpke.HKDFSHA256(), hpke.AES256GCM(), tt.info, ct); err == nil {
				t.Fatal("another key opened the message")
			}
			if _, err := hpke.Open(priv, hpke.HKDFSHA256(), hpke.AES256GCM(), append(tt.info, 'x'), ct); err == nil {
				t.Fatal("opened with the wrong info")
			}
		})
	}
}

func testConcurrent(t *testing.T, cfg Config, name string) {
	s := open(t, cfg)
	k := create(t, s, name)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 4 {
		wg.Go(func() {
			for range 3 {
				peer, err := ecdh.P256().GenerateKey(rand.Reader)
				if err != nil {
					errs <- err
					return
				}
				got, err := k.ECDH(peer.PublicKey())
				if err != nil {
					errs <- err
					return
				}
				if want, _ := peer.ECDH(k.PublicKey()); !bytes.Equal(got, want) {
					errs <- errors.New("concurrent ECDH disagrees with software ECDH")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func testDelete(t *testing.T, cfg Config, name string) {
	s := open(t, cfg)
	create(t, s, name)
	if err := s.Delete(name); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Open(name); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Open after Delete: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(name); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	// The name can be used again.
	create(t, s, name)
}

func testRotation(t *testing.T, cfg Config, name string) {
	s := open(t, cfg)
	cur := create(t, s, name)
	ks, err := keystore.OpenAll(s, name)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Pending != nil || ks.Current == nil || len(ks.All()) != 1 {
		t.Fatalf("before rotation: %+v", ks)
	}
	next, created, err := keystore.Rotate(s, name)
	if err != nil || !created {
		t.Fatalf("Rotate: created %v, err %v", created, err)
	}
	again, created, err := keystore.Rotate(s, name)
	if err != nil || created || !again.PublicKey().Equal(next.PublicKey()) {
		t.Fatalf("second Rotate: created %v, err %v, same key %v", created, err, err == nil && again.PublicKey().Equal(next.PublicKey()))
	}
	ks, err = keystore.OpenAll(s, name)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Current == nil || ks.Pending == nil ||
		!ks.Current.PublicKey().Equal(cur.PublicKey()) || !ks.Pending.PublicKey().Equal(next.PublicKey()) {
		t.Fatal("OpenAll during rotation did not return the current and the pending key")
	}
	if all := ks.All(); len(all) != 2 || all[0].ID() != cur.ID() {
		t.Fatal("All() must list the current key first")
	}

	err = keystore.Promote(s, name)
	if _, ok := s.(keystore.Renamer); !ok {
		if !errors.Is(err, keystore.ErrUnsupported) {
			t.Fatalf("Promote on a store that cannot rename: err = %v, want ErrUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Promote: %v", err)
	}
	s.Close()
	s = open(t, cfg)
	ks, err = keystore.OpenAll(s, name)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Pending != nil || !ks.Current.PublicKey().Equal(next.PublicKey()) {
		t.Fatal("after Promote the pending key is not the current one")
	}
	if err := keystore.Promote(s, name); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Promote without a rotation: err = %v, want ErrNotFound", err)
	}
}

func testInsecure(t *testing.T, cfg Config, name string) {
	if len(cfg.Tamper) == 0 {
		t.Skip("the backend keeps no files to tamper with")
	}
	for i, tc := range cfg.Tamper {
		t.Run(tc.Name, func(t *testing.T) {
			n := fmt.Sprintf("%s-%d", name, i)
			s := cfg.New(t)
			create(t, s, n)
			s.Close()
			tc.Apply(t, n)
			s = open(t, cfg)
			_, err := s.Open(n)
			if !errors.Is(err, keystore.ErrInsecure) {
				t.Fatalf("Open after %s: err = %v, want ErrInsecure", tc.Name, err)
			}
			t.Logf("refused as it should be: %v", err)
		})
	}
}

func testCorrupt(t *testing.T, cfg Config, name string) {
	if cfg.Corrupt == nil {
		t.Skip("no way to corrupt this backend's keys")
	}
	s := cfg.New(t)
	create(t, s, name)
	s.Close()
	cfg.Corrupt(t, name)
	s = open(t, cfg)
	if _, err := s.Open(name); !errors.Is(err, keystore.ErrNeedsReenroll) {
		t.Fatalf("Open of a corrupt key: err = %v, want ErrNeedsReenroll", err)
	}
}

func testWipe(t *testing.T, cfg Config, name string) {
	if cfg.Wipe == nil {
		t.Skip("the backend has no hardware state to wipe")
	}
	s := cfg.New(t)
	create(t, s, name)
	s.Close()
	cfg.Wipe(t)
	s = open(t, cfg)
	_, err := s.Open(name)
	if !errors.Is(err, keystore.ErrNeedsReenroll) {
		t.Fatalf("Open after the wipe: err = %v, want ErrNeedsReenroll", err)
	}
	t.Logf("after the wipe: %v", err)
	if _, err := keystore.OpenAll(s, name); !errors.Is(err, keystore.ErrNeedsReenroll) {
		t.Fatalf("OpenAll after the wipe: err = %v, want ErrNeedsReenroll", err)
	}
	// Recovery: re-enrolment replaces the dead key.
	if err := s.Delete(name); err != nil {
		t.Fatal(err)
	}
	k := create(t, s, name)
	peer := newPeer(t)
	got, err := k.ECDH(peer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := peer.ECDH(k.PublicKey()); !bytes.Equal(got, want) {
		t.Fatal("the new key computes a wrong secret")
	}
}
