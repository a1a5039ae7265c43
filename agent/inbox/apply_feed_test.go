package inbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/secret"
	"github.com/credagent/credagent/agent/state"
)

// Apply is the inbox's path for deliveries that come from a feed- the same
// checks, the same records, the same rejections.
func TestApplyFromFeed(t *testing.T) {
	e := newEnv(t, nil)
	me := delivery.Machine(machineID)
	store := &delivery.Store{Servers: []string{"https://ccp.example.com"}, AppID: "app"}
	s2 := build(t, hdr("prod", 2, me), store, machineKey.PublicKey(), signer)
	if err := e.in.Apply("feed-s2", s2); err != nil {
		t.Fatal(err)
	}
	if ev := e.next(); ev.Err != nil || ev.File != "feed-s2" || !ev.Feed {
		t.Fatalf("event %+v", ev)
	}
	st := e.st.Load().Stores["prod"]
	if st == nil || st.SealedTo != (memKey{machineKey}).ID() {
		t.Fatalf("sealed store not applied: %+v", st)
	}
	if got := e.in.LastSeq(delivery.Object{Kind: delivery.KindStore, Name: "prod"}); got != 2 {
		t.Fatalf("LastSeq %d", got)
	}
	if n := e.in.SealedTo()[(memKey{machineKey}).ID()]; n != 1 {
		t.Fatalf("SealedTo counts %d objects sealed to the machine key, want 1", n)
	}
	// The same bytes again are the applied record: no refusal.
	if err := e.in.Apply("feed-s2", s2); err != nil {
		t.Fatalf("the applied delivery again: %v", err)
	}
	// An older one is a replay, recorded as a rejection with its bytes.
	err := e.in.Apply("feed-s1", build(t, hdr("prod", 1, me), store, machineKey.PublicKey(), signer))
	if !errors.Is(err, delivery.ErrReplay) {
		t.Fatalf("older: %v", err)
	}
	if ev := e.next(); ev.Reason != "replay" || !ev.Feed {
		t.Fatalf("the replay's event %+v", ev)
	}
	rej := e.st.Load().Rejected
	if len(rej) != 1 || rej[0].File != "feed-s1" {
		t.Fatalf("rejections %+v", rej)
	}
	files, _ := filepath.Glob(filepath.Join(e.stateDir, rejectedDir, "*s1*"))
	kept := 0
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && !strings.HasSuffix(f, reasonSuffix) && delivery.Reason(func() error { _, err := delivery.Parse(b); return err }()) == "error" {
			kept++
		}
	}
	if kept != 1 {
		t.Fatalf("rejected bytes kept: %v", files)
	}
	// Oversized, and garbage.
	e.in.o.MaxBytes = 100
	if err := e.in.Apply("feed-big", s2); !errors.Is(err, delivery.ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	e.next()
	e.in.o.MaxBytes = 1 << 20
	if err := e.in.Apply("feed-html", []byte("<html></html>")); !errors.Is(err, delivery.ErrMalformed) {
		t.Fatalf("garbage: %v", err)
	}
	e.next()
	// A file of the inbox directory is no feed's.
	e.drop("s3", build(t, hdr("prod", 3, me), store, machineKey.PublicKey(), signer))
	e.in.ScanOnce(t_ctx())
	if ev := e.next(); ev.Err != nil || ev.Feed {
		t.Fatalf("inbox file's event %+v", ev)
	}
	// A restart rebuilds the sealed store from its record.
	e.reopen()
	if st := e.st.Load().Stores["prod"]; st == nil || st.Seq != 3 {
		t.Fatalf("after restart: %+v", st)
	}
	if _, err := os.Stat(e.inbox); err != nil {
		t.Fatal(err)
	}
}

// Revoking a group key removes what was sealed to it, sealed stores and
// credentials included, and keeps their records aside for the sequence.
func TestGroupRevokeRemovesSealedStore(t *testing.T) {
	e := newEnv(t, nil)
	me, g := delivery.Machine(machineID), delivery.Group("robots")
	e.apply("gk", build(t, hdr("robots", 1, me), &delivery.GroupKey{PrivateKey: secret.New(groupKeyA.Bytes())}, machineKey.PublicKey(), signer))
	cred := &delivery.Credential{Store: "prod", Object: "o"}
	e.apply("cred", build(t, hdr("c1", 5, g), cred, groupKeyA.PublicKey(), signer))
	if e.st.Load().Credentials["c1"] == nil {
		t.Fatal("sealed group credential not applied")
	}
	e.apply("rev", build(t, hdr("robots", 2, me), &delivery.Revoke{Revokes: delivery.KindGroupKey}, nil, signer))
	if e.st.Load().Credentials["c1"] != nil {
		t.Fatal("the credential sealed to a revoked group key is still in force")
	}
	e.reopen()
	if got := e.in.LastSeq(delivery.Object{Kind: delivery.KindCredential, Name: "c1"}); got != 5 {
		t.Fatalf("after restart the withdrawn credential's seq is %d, want 5", got)
	}
}

// Revoking a group key withdraws the sealed stores and credentials of every
// owner sealed to it, by owner and name, and leaves the same names of other
// owners, not sealed to it, in force.
func TestGroupRevokeWithdrawsOwnedSealed(t *testing.T) {
	e := newEnv(t, nil)
	me, g := delivery.Machine(machineID), delivery.Group("robots")
	owned := func(h delivery.Header, owner string) delivery.Header { h.Owner = owner; return h }
	store := &delivery.Store{Servers: []string{"https://ccp.example.com"}, AppID: "app"}
	cred := &delivery.Credential{Store: "prod", Object: "o"}
	e.apply("gk", build(t, hdr("robots", 1, me), &delivery.GroupKey{PrivateKey: secret.New(groupKeyA.Bytes())}, machineKey.PublicKey(), signer))
	e.apply("ca", build(t, owned(hdr("c1", 5, g), "team-a"), cred, groupKeyA.PublicKey(), signer))
	e.apply("sa", build(t, owned(hdr("prod", 3, g), "team-a"), store, groupKeyA.PublicKey(), signer))
	e.apply("cb", build(t, owned(hdr("c1", 2, me), "team-b"), cred, machineKey.PublicKey(), signer))
	e.apply("c0", build(t, hdr("c1", 9, me), cred, nil, signer))
	s := e.st.Load()
	if len(s.Credentials) != 3 || s.Stores[state.Key("team-a", "prod")] == nil {
		t.Fatalf("not applied: credentials %d, stores %v", len(s.Credentials), s.Stores)
	}
	e.apply("rev", build(t, hdr("robots", 2, me), &delivery.Revoke{Revokes: delivery.KindGroupKey}, nil, signer))
	check := func(when string) {
		t.Helper()
		s := e.st.Load()
		if s.Credentials[state.Key("team-a", "c1")] != nil || s.Stores[state.Key("team-a", "prod")] != nil {
			t.Fatalf("%s: team-a's objects sealed to the revoked group key are still in force", when)
		}
		if s.Credentials[state.Key("team-b", "c1")] == nil || s.Credentials["c1"] == nil {
			t.Fatalf("%s: the other owners' c1 went with team-a's: %v", when, s.Credentials)
		}
	}
	check("after the revocation")
	e.reopen()
	check("after restart")
	for _, c := range []struct {
		o    delivery.Object
		want uint64
	}{
		{delivery.Object{Kind: delivery.KindCredential, Owner: "team-a", Name: "c1"}, 5},
		{delivery.Object{Kind: delivery.KindStore, Owner: "team-a", Name: "prod"}, 3},
		{delivery.Object{Kind: delivery.KindCredential, Owner: "team-b", Name: "c1"}, 2},
		{delivery.Object{Kind: delivery.KindCredential, Name: "c1"}, 9},
	} {
		if got := e.in.LastSeq(c.o); got != c.want {
			t.Fatalf("after restart LastSeq(%s) = %d, want %d", c.o, got, c.want)
		}
	}
}
