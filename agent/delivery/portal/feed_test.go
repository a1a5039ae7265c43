package portal

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/credagent/credagent/agent/delivery"
)

type feedFixture struct {
	feed    *Feed
	key     *ecdh.PrivateKey
	now     time.Time
	t       *testing.T
	machine delivery.Address
}

func newFeedFixture(t *testing.T) *feedFixture {
	_, signer, _ := ed25519.GenerateKey(rand.Reader)
	key, _ := ecdh.P256().GenerateKey(rand.Reader)
	x := &feedFixture{key: key, now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), t: t, machine: delivery.Machine("m1")}
	x.feed = &Feed{Root: t.TempDir(), Signer: signer, Grace: time.Hour, Now: func() time.Time { return x.now }}
	return x
}

func (x *feedFixture) store(id string, seq uint64) []byte { return x.ownedStore(id, "", seq) }

// ownedStore is a store named prod of owner ("" for none).
func (x *feedFixture) ownedStore(id, owner string, seq uint64) []byte {
	d, err := delivery.Create(delivery.Header{ID: id, Target: "prod", Owner: owner, Seq: seq, To: x.machine, Created: x.now},
		&delivery.Store{Servers: []string{"https://ccp.example.com"}, AppID: "a"}, x.key.PublicKey(), x.feed.Signer)
	if err != nil {
		x.t.Fatal(err)
	}
	return d.Marshal()
}

func (x *feedFixture) manifest() *delivery.Manifest {
	b, err := os.ReadFile(filepath.Join(x.feed.Root, delivery.FeedDir(x.machine), delivery.ManifestName))
	if err != nil {
		x.t.Fatal(err)
	}
	m, err := (&delivery.ManifestChecker{Signers: []crypto.PublicKey{x.feed.Signer.Public()}, Now: x.now}).Check(b, x.machine, nil, nil)
	if err != nil {
		x.t.Fatal(err)
	}
	return m
}

func (x *feedFixture) exists(id string) bool {
	_, err := os.Stat(filepath.Join(x.feed.Root, delivery.FeedFile(x.machine, id)))
	return err == nil
}

// TestFeedOwners: stores of one name of two owners and of none are three
// objects, each listed and replaced on its own.
func TestFeedOwners(t *testing.T) {
	x := newFeedFixture(t)
	if _, err := x.feed.Publish([][]byte{x.ownedStore("s0", "", 5), x.ownedStore("sa", "team-a", 1), x.ownedStore("sb", "team-b", 1)}); err != nil {
		t.Fatal(err)
	}
	x.now = x.now.Add(time.Minute)
	if _, err := x.feed.Publish([][]byte{x.ownedStore("sa2", "team-a", 2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := x.feed.Publish([][]byte{x.ownedStore("sb0", "team-b", 1)}); !errors.Is(err, delivery.ErrReplay) {
		t.Fatalf("team-b's store again at seq 1: %v, want a replay", err)
	}
	var got []string
	for _, e := range x.manifest().Deliveries {
		got = append(got, e.ID+"/"+e.Owner)
	}
	if want := []string{"s0/", "sa2/team-a", "sb/team-b"}; !slices.Equal(got, want) {
		t.Fatalf("manifest lists %v, want %v", got, want)
	}
}

func TestFeedGrace(t *testing.T) {
	x := newFeedFixture(t)
	if _, err := x.feed.Publish([][]byte{x.store("s1", 1)}); err != nil {
		t.Fatal(err)
	}
	x.now = x.now.Add(time.Minute)
	if _, err := x.feed.Publish([][]byte{x.store("s2", 2)}); err != nil {
		t.Fatal(err)
	}
	m := x.manifest()
	if len(m.Deliveries) != 1 || m.Deliveries[0].ID != "s2" {
		t.Fatalf("manifest lists %+v", m.Deliveries)
	}
	if !x.exists("s1") {
		t.Fatal("the replaced delivery went at once: an agent holding the previous manifest would miss it")
	}
	x.now = x.now.Add(59 * time.Minute)
	if p, _ := x.feed.Refresh(x.machine); len(p.Pruned) != 0 || !x.exists("s1") {
		t.Fatalf("pruned %v within the grace", p.Pruned)
	}
	x.now = x.now.Add(2 * time.Minute)
	p, err := x.feed.Refresh(x.machine)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Pruned, []string{"s1.delivery"}) || x.exists("s1") || !x.exists("s2") {
		t.Fatalf("after the grace: pruned %v, s1 %t, s2 %t", p.Pruned, x.exists("s1"), x.exists("s2"))
	}
	if m2 := x.manifest(); m2.Seq <= m.Seq {
		t.Fatalf("refresh did not raise the sequence: %d then %d", m.Seq, m2.Seq)
	}
}

func TestFeedRefuses(t *testing.T) {
	x := newFeedFixture(t)
	if _, err := x.feed.Publish([][]byte{x.store("s1", 5)}); err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	alien, _ := delivery.Create(delivery.Header{ID: "x", Target: "prod", Seq: 9, To: x.machine, Created: x.now},
		&delivery.Store{Servers: []string{"https://ccp.example.com"}, AppID: "a"}, x.key.PublicKey(), other)
	clear, _ := delivery.Create(delivery.Header{ID: "y", Target: "c", Seq: 9, To: x.machine, Created: x.now},
		&delivery.Credential{Store: "prod", Object: "o"}, nil, x.feed.Signer)
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"older", x.store("s0", 4), delivery.ErrReplay},
		{"same seq", x.store("s0", 5), delivery.ErrReplay},
		{"other signer", alien.Marshal(), delivery.ErrUnknownSigner},
		{"in clear", clear.Marshal(), delivery.ErrNotSealed},
		{"garbage", []byte("<html>"), delivery.ErrMalformed},
	}
	for _, tt := range tests {
		if _, err := x.feed.Publish([][]byte{tt.raw}); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if m := x.manifest(); len(m.Deliveries) != 1 || m.Deliveries[0].ID != "s1" {
		t.Fatalf("a refused publish changed the feed: %+v", m.Deliveries)
	}
	// A manifest the portal did not sign is never extended.
	mpath := filepath.Join(x.feed.Root, delivery.FeedDir(x.machine), delivery.ManifestName)
	b, _ := os.ReadFile(mpath)
	b[len(b)-5] ^= 1
	os.WriteFile(mpath, b, 0o644)
	if _, err := x.feed.Publish([][]byte{x.store("s2", 6)}); err == nil {
		t.Fatal("extended a tampered manifest")
	}
}
