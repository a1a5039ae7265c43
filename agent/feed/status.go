package feed

import (
	"fmt"
	"sort"
	"time"

	"github.com/credagent/credagent/agent/delivery"
)

// Status is what the agent knows of one followed feed address.
type Status struct {
	Address string // "machine NAME" or "group NAME"
	// Seq, Created and Expires are those of the newest accepted manifest;
	// zero if none was ever accepted.
	Seq     uint64
	Created time.Time
	Expires time.Time
	// Expired is set once Expires has passed: the feed has not given a
	// fresh manifest since, and may be withholding a change.
	Expired bool
	// Age is how old the newest accepted manifest is (now - Created).
	Age time.Duration
	// Deliveries is how many the manifest lists; Pending how many of
	// them wait to be fetched or applied.
	Deliveries int
	Pending    int
	URL        string    // base URL that served it
	LastPoll   time.Time // zero: not polled yet
	// LastAccepted is when a manifest was last accepted or confirmed
	// unchanged.
	LastAccepted time.Time
	LastError    string
	LastErrorAt  time.Time
	// KeepError says why the newest accepted manifest could not be kept
	// on disk; until it is, a restart forgets its sequence, the floor
	// that refuses an older manifest.
	KeepError string
}

// Status lists the followed addresses, the machine first, then the
// groups the inbox reports, then any other address with a kept manifest.
func (f *Feed) Status() []Status {
	now := f.o.Now()
	follow := map[delivery.Address]bool{delivery.Machine(f.o.MachineID): true}
	for _, g := range f.o.Inbox.Groups() {
		follow[delivery.Group(g)] = true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Status{}
	for a := range follow {
		s := f.sources[a]
		st := Status{Address: a.String()}
		if s != nil {
			st.URL, st.LastPoll, st.LastAccepted, st.LastError, st.LastErrorAt, st.Pending = s.from, s.polled, s.accepted, s.err, s.errAt, s.pending
			st.KeepError = s.keepErr
			if s.last != nil {
				st.Seq, st.Created, st.Expires = s.last.Seq, s.last.Created, s.last.Expires
				st.Expired = !now.Before(s.last.Expires)
				st.Age = now.Sub(s.last.Created)
				st.Deliveries = len(s.last.Deliveries)
			}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		mi, mj := out[i].Address[:1] == "m", out[j].Address[:1] == "m"
		if mi != mj {
			return mi
		}
		return out[i].Address < out[j].Address
	})
	return out
}

// Problems are the status lines an operator must see: an expired newest
// manifest (said loudly: a feed that withholds a revocation looks just
// like this), and an address that never gave a manifest.
func (f *Feed) Problems() []string {
	var out []string
	for _, s := range f.Status() {
		switch {
		case s.Expired:
			out = append(out, fmt.Sprintf("FEED STALE: the newest valid manifest for %s (seq %d) expired at %s; changes and revocations published since may not have reached this machine (last error: %s)",
				s.Address, s.Seq, s.Expires.Format(time.RFC3339), orNone(s.LastError)))
		case s.Seq == 0 && !s.LastPoll.IsZero():
			out = append(out, fmt.Sprintf("no feed manifest accepted yet for %s: %s", s.Address, orNone(s.LastError)))
		}
		if s.KeepError != "" {
			out = append(out, fmt.Sprintf("the newest manifest for %s (seq %d) cannot be kept in the state directory (%s): after a restart an older one would not be refused as a rollback",
				s.Address, s.Seq, s.KeepError))
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// FailClosed returns why resolutions must fail, or "": when
// FailClosedAfter is set and a followed address's newest manifest has been
// expired for longer than that.
func (f *Feed) FailClosed() string {
	after := f.schedule().FailClosedAfter
	if after <= 0 {
		return ""
	}
	now := f.o.Now()
	for _, s := range f.Status() {
		if s.Expired && now.Sub(s.Expires) >= after {
			return fmt.Sprintf("the feed manifest for %s expired at %s, more than feed.fail_closed_after (%s) ago; resolutions are refused until a fresh manifest arrives",
				s.Address, s.Expires.Format(time.RFC3339), after)
		}
	}
	return ""
}
