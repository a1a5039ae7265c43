package feed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/secret"
)

func TestStoredName(t *testing.T) {
	f := &Feed{dir: filepath.FromSlash("/state/feed")}
	long := "robots " + strings.Repeat("x", 103) // a valid name, written in hex
	tests := []struct {
		name string
		a    delivery.Address
		want string // "" : a SHA-256 name
	}{
		{"the machine", delivery.Machine("m1"), "machine-m1.manifest"},
		{"a group with an ID's characters", delivery.Group("robots"), "group-robots.manifest"},
		{"a short group in hex keeps its name", delivery.Group("robots eu"), "group-~" + "726f626f7473206575" + ".manifest"},
		{"a long group in hex", delivery.Group(long), ""},
		{"the longest group in hex", delivery.Group("a" + strings.Repeat(" ~", delivery.MaxNameBytes/2-1) + "z"), ""},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := delivery.CheckName(tt.a.Name); err != nil {
				t.Fatalf("not a valid name: %v", err)
			}
			p := f.stored(tt.a)
			base := filepath.Base(p)
			if filepath.Dir(p) != f.dir {
				t.Errorf("%s is not in %s", p, f.dir)
			}
			if len(base)+tempNameOverhead > maxFileName {
				t.Errorf("%s: %d bytes with the temporary name's, more than %d", base, len(base)+tempNameOverhead, maxFileName)
			}
			switch {
			case tt.want != "" && base != tt.want:
				t.Errorf("stored name %s, want %s", base, tt.want)
			case tt.want == "" && !strings.HasPrefix(base, "group-sha256-"):
				t.Errorf("stored name %s, want a SHA-256 name", base)
			}
			if seen[base] {
				t.Errorf("%s is also another address's name", base)
			}
			seen[base] = true
		})
	}
}

// TestLongGroupNameKeepsItsRollbackFloor: the newest manifest of a group
// whose name is long and not an ID's is kept, so that after a restart the
// older manifest a server rolls back to is refused. (Kept under its hex
// name, with the temporary name, it passed 255 bytes: it was never kept,
// and a restart accepted the rollback.)
func TestLongGroupNameKeepsItsRollbackFloor(t *testing.T) {
	e := newEnv(t, nil)
	group := "robots " + strings.Repeat("x", 103)
	gk, err := delivery.Create(delivery.Header{ID: "gk", Target: group, Seq: 1, To: delivery.Machine(machineID), Created: e.now},
		&delivery.GroupKey{PrivateKey: secret.New(groupKey.Bytes())}, machineKey.PublicKey(), signer)
	if err != nil {
		t.Fatal(err)
	}
	cred := func(id string, seq uint64, obj string) []byte {
		d, err := delivery.Create(delivery.Header{ID: id, Target: "c1", Seq: seq, To: delivery.Group(group), Created: e.now},
			&delivery.Credential{Store: "prod", Object: obj}, groupKey.PublicKey(), signer)
		if err != nil {
			t.Fatal(err)
		}
		return d.Marshal()
	}
	e.publish(gk.Marshal(), cred("c1a", 1, "old"))
	e.poll()
	gm := filepath.Join(e.pub.Root, delivery.FeedDir(delivery.Group(group)), delivery.ManifestName)
	old, err := os.ReadFile(gm)
	if err != nil {
		t.Fatal(err)
	}
	e.publish(cred("c1b", 2, "new"))
	e.poll()
	if c := e.st.Load().Credentials["c1"]; c == nil || c.Object != "new" {
		t.Fatalf("credential %+v", c)
	}
	if _, err := os.Lstat(e.feed.stored(delivery.Group(group))); err != nil {
		t.Fatalf("the group's newest manifest was not kept: %v", err)
	}
	for _, p := range e.feed.Problems() {
		t.Errorf("problem: %s", p)
	}
	if err := os.WriteFile(gm, old, 0o644); err != nil { // the server rolls the group's manifest back
		t.Fatal(err)
	}
	e.restart()
	e.feed.Poll(t.Context())
	found := false
	for _, st := range e.feed.Status() {
		if st.Address == "group "+group {
			found = true
			if !strings.Contains(st.LastError, "rollback") {
				t.Fatalf("a rolled-back manifest was accepted after a restart: seq %d, last error %q", st.Seq, st.LastError)
			}
		}
	}
	if !found {
		t.Fatal("the group is not in the feed's status")
	}
}
