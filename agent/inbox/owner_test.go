package inbox

import (
	"testing"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/state"
)

// TestOwnersAreSeparateObjects: the same AppID delivered without owner and
// by two owners makes three applications, each with its own sequence
// numbers, records and revocation, also across a restart.
func TestOwnersAreSeparateObjects(t *testing.T) {
	me := delivery.Machine(machineID)
	mpub := machineKey.PublicKey()
	owned := func(owner, target string, seq uint64) delivery.Header {
		h := hdr(target, seq, me)
		h.Owner = owner
		return h
	}
	e := newEnv(t, nil)
	e.apply("none", build(t, owned("", "app", 5), validApp(t, 30), mpub, signer))
	e.apply("a", build(t, owned("team-a", "app", 1), validApp(t, 31), mpub, signer))
	e.apply("b", build(t, owned("team-b", "app", 1), validApp(t, 32), mpub, signer))

	serials := func() map[string]string {
		out := map[string]string{}
		for k, a := range e.st.Load().Applications {
			if k != state.Key(a.Owner, a.AppID) {
				t.Errorf("application %q of %q under key %q", a.AppID, a.Owner, k)
			}
			out[a.Owner] = a.Serial
		}
		return out
	}
	if got := serials(); len(got) != 3 || got[""] != "1e" || got["team-a"] != "1f" || got["team-b"] != "20" {
		t.Fatalf("applications by owner: %v", got)
	}

	// Sequence numbers are per owner: team-a's 1 is a replay for team-a.
	e.drop("a-replay", build(t, owned("team-a", "app", 1), validApp(t, 33), mpub, signer))
	e.in.ScanOnce(t_ctx())
	if ev := e.next(); ev.Reason != "replay" {
		t.Fatalf("team-a's replay: %+v", ev)
	}
	// A revocation of team-a's application leaves the others.
	e.apply("a-revoke", build(t, owned("team-a", "app", 2), &delivery.Revoke{Revokes: delivery.KindApplication}, nil, signer))
	if got := serials(); len(got) != 2 || got[""] != "1e" || got["team-b"] != "20" {
		t.Fatalf("after revoking team-a's: %v", got)
	}

	e.reopen()
	if got := serials(); len(got) != 2 || got[""] != "1e" || got["team-b"] != "20" {
		t.Fatalf("after a restart: %v", got)
	}
	e.drop("a-old", build(t, owned("team-a", "app", 2), validApp(t, 34), mpub, signer))
	e.in.ScanOnce(t_ctx())
	if ev := e.next(); ev.Reason != "replay" {
		t.Fatalf("team-a's revoked sequence was forgotten by the restart: %+v", ev)
	}
	e.apply("a-new", build(t, owned("team-a", "app", 3), validApp(t, 35), mpub, signer))
	if got := serials(); len(got) != 3 || got["team-a"] != "23" {
		t.Fatalf("team-a's new application: %v", got)
	}
}
