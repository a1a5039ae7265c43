package main

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/delivery/portal"
)

// TestFeedFaultBodies checks that each fault the soak serves in place of
// the manifest is refused by the agent's manifest check with the reason the
// soak then expects in status, so that the soak's feed check cannot pass
// for a fault that does not happen.
func TestFeedFaultBodies(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	addr := delivery.Machine("soak-machine")
	f := &soakFeed{root: root, addr: addr, manifest: "/" + delivery.FeedDir(addr) + "/" + delivery.ManifestName,
		pub: &portal.Feed{Root: root, Signer: key, Validity: time.Hour}}
	read := func() []byte {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f.manifest)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := f.pub.Refresh(addr); err != nil {
		t.Fatal(err)
	}
	f.prev = read()
	time.Sleep(2 * time.Millisecond) // the next manifest's sequence is the time in ms, or one more
	if _, err := f.pub.Refresh(addr); err != nil {
		t.Fatal(err)
	}
	cur := read()
	m, err := delivery.ParseManifest(cur)
	if err != nil {
		t.Fatal(err)
	}
	checker := &delivery.ManifestChecker{MaxBytes: feedMaxBytes, Signers: []crypto.PublicKey{key.Public()}, Now: time.Now()}
	if _, err := checker.Check(cur, addr, m, cur); err != nil {
		t.Fatalf("the good manifest: %v", err)
	}
	served := 0
	for _, ft := range feedFaults {
		body, err := f.faultBody(ft.name, cur, m)
		if err != nil {
			t.Fatalf("%s: %v", ft.name, err)
		}
		switch ft.name {
		case "slow drip":
			if string(body) != string(cur) {
				t.Errorf("%s: drips other bytes than the manifest", ft.name)
			}
			continue
		case "HTML error page served with 200":
			body = []byte(htmlErrorPage)
		}
		if body == nil {
			continue // served by the handler, not as a manifest body
		}
		served++
		_, err = checker.Check(body, addr, m, cur)
		if err == nil {
			t.Errorf("%s: accepted", ft.name)
			continue
		}
		if got := delivery.Reason(err); got != ft.reason {
			t.Errorf("%s: refused as %q (%v), the soak expects %q", ft.name, got, err, ft.reason)
		}
	}
	if served != 7 {
		t.Errorf("%d faults are manifest bodies, want 7 (an HTML page, truncated, oversized, rolled back, unknown signer, expired, bad signature)", served)
	}
}
