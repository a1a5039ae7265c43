package inbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/platform/fsutil"
)

// handle checks one inbox file and applies or rejects it. A group key that
// is applied makes the deliveries that waited for it be handled again.
func (in *Inbox) handle(name string) {
	in.mu.Lock()
	again := in.handleLocked(name)
	in.mu.Unlock()
	for _, n := range again {
		in.handle(n)
	}
}

// handleLocked handles one file; it returns the names of files to handle
// again. The caller holds mu.
func (in *Inbox) handleLocked(name string) []string {
	if t := in.retry[name]; t != nil {
		t.Stop()
		delete(in.retry, name)
	}
	if in.stuck[name] {
		return nil // rejected already; it could not be moved out
	}
	b, fi, f, err := readDelivery(in.dir, name, in.o.MaxBytes, in.owners)
	if f != nil {
		defer f.Close()
	}
	if errors.Is(err, fs.ErrNotExist) {
		in.forget(name)
		return nil // handled already, or renamed away
	}
	now := in.o.Now()
	if err != nil && !refusal(err) {
		// The machine's error, not the delivery's (too many open files,
		// an I/O error, a permission the agent lacks): leave the file in
		// place for the next scan, as for a full disk.
		in.o.Log.Error().Err(err).Str("file", printable(name)).Msg("inbox: cannot read a delivery now; it stays in the inbox and is tried again at the next scan")
		in.unreadable[name] = err.Error()
		in.updateProblems()
		return nil
	}
	if _, ok := in.unreadable[name]; ok {
		delete(in.unreadable, name)
		in.updateProblems()
	}
	if err != nil {
		in.reject(name, f, nil, nil, err, now)
		return nil
	}
	// readDelivery has checked the size (check 1); the file is parsed
	// once, here, and the other checks run on the result.
	d, err := delivery.Parse(b)
	if err != nil {
		if errors.Is(err, delivery.ErrMalformed) && now.Sub(fi.ModTime()) < settle && now.Sub(fi.ModTime()) > -settle {
			// Perhaps still being written by a writer that does not
			// rename: look again once it has settled.
			in.retry[name] = time.AfterFunc(settle, func() { in.handle(name) })
			return nil
		}
		in.reject(name, f, nil, nil, err, now)
		return nil
	}
	v, acc, err := in.decide(name, b, d, now)
	switch v {
	case verdictDuplicate:
		in.remove(name, f)
		return nil
	case verdictRetry:
		return nil
	case verdictRejected:
		if errors.Is(err, delivery.ErrWrongRecipient) && d.To.Type == delivery.ToGroup && d.Verified() {
			// Addressed to a group whose key has not arrived (yet): wait
			// for it, bounded in count and in time.
			if err = in.waitForGroup(name, d, err, now); err == nil {
				return nil
			}
		}
	}
	if _, ok := in.waiting[name]; ok {
		delete(in.waiting, name)
		in.updateProblems()
	}
	if v == verdictRejected {
		in.reject(name, f, nil, d, err, now)
		return nil
	}
	in.remove(name, f)
	in.applied(name, acc, false)
	if acc.Kind == delivery.KindGroupKey && len(in.waiting) > 0 {
		again := make([]string, 0, len(in.waiting))
		for n := range in.waiting {
			again = append(again, n)
		}
		sort.Strings(again)
		return again
	}
	return nil
}

// verdict is what became of one delivery.
type verdict int

const (
	verdictApplied   verdict = iota
	verdictDuplicate         // byte for byte the applied record
	verdictRetry             // not the delivery's fault (key store, disk, unreadable record): try again later
	verdictRejected
)

// decide runs the checks that follow parsing on d (whose bytes are b) and
// applies it: the one path of every delivery, whether it came through the
// inbox directory or a feed (Apply). name is for the log. The caller holds
// mu.
func (in *Inbox) decide(name string, b []byte, d *delivery.Delivery, now time.Time) (verdict, *delivery.Accepted, error) {
	// A duplicate of the applied record: a crash came between storing the
	// record and removing the inbox file, or a feed lists what is applied.
	if rec, ok := in.records[d.Object()]; ok && in.seqs[d.Object()] == d.Seq {
		if old, rerr := fsutil.ReadPrivateFile(rec, delivery.MaxBytes); rerr == nil && bytes.Equal(old, b) {
			in.o.Log.Info().Str("file", printable(name)).Str("delivery", d.ID).Msg("inbox: already applied; dropping the duplicate")
			return verdictDuplicate, nil, nil
		}
	}
	// A record of this object that cannot be read may hold a higher
	// sequence number: nothing of the object is applied until an operator
	// restores or removes it.
	if rec := in.blockedFor(d.Object()); rec != "" {
		in.o.Log.Error().Str("file", printable(name)).Str("delivery", d.ID).Str("record", rec).
			Msg("inbox: the record of this object cannot be read; the delivery waits until an operator restores or removes the record")
		return verdictRetry, nil, fmt.Errorf("the record of %s cannot be read", d.Object())
	}
	acc, err := in.checker(now).CheckParsed(d)
	if errors.Is(err, delivery.ErrKeyUnavailable) {
		// Not the delivery's fault (the TPM does not answer): leave it for
		// the next scan, as for a full disk, and say so in status.
		in.o.Log.Error().Err(err).Str("file", printable(name)).Msg("inbox: the key store cannot open the delivery now; will retry")
		problem := "the key store cannot open deliveries (they wait in the inbox): " + err.Error()
		if in.o.State.Load().KeyProblem != problem {
			in.o.State.Update(func(s *state.Snapshot) { s.KeyProblem = problem })
		}
		return verdictRetry, nil, err
	}
	if err == nil && acc.Sealed() && in.o.State.Load().KeyProblem != "" {
		in.o.State.Update(func(s *state.Snapshot) { s.KeyProblem = "" })
		in.o.Log.Info().Msg("inbox: the key store opens deliveries again")
	}
	if err != nil {
		return verdictRejected, nil, err
	}
	if err := in.apply(acc, b, now); err != nil {
		// Not the delivery's fault (a full disk): leave it for the next
		// scan.
		in.o.Log.Error().Err(err).Str("file", printable(name)).Str("delivery", acc.ID).Msg("inbox: cannot store the record; will retry")
		return verdictRetry, nil, err
	}
	return verdictApplied, acc, nil
}

// applied logs and reports an applied delivery. The caller holds mu.
func (in *Inbox) applied(name string, acc *delivery.Accepted, fromFeed bool) {
	at := in.o.Now()
	in.o.Log.Info().Str("delivery", acc.ID).Str("kind", string(acc.Kind)).Str("target", acc.Target).Str("owner", acc.Owner).
		Uint64("seq", acc.Seq).Str("to", acc.To.String()).Str("file", printable(name)).Msg("inbox: delivery applied")
	in.event(Event{File: name, DeliveryID: acc.ID, Kind: acc.Kind, Owner: acc.Owner, Target: acc.Target, Seq: acc.Seq, At: at, Feed: fromFeed})
}

// ErrRetry wraps the error of Apply when the delivery is not at fault (the
// key store does not answer, the disk is full): try it again later.
var ErrRetry = errors.New("inbox: cannot apply now")

// Apply runs a delivery that did not come through the inbox directory (a
// feed, agent/feed) through the same checks and the same applying as an
// inbox file. name names it in the log, in status and in the rejected
// directory. It returns nil if the delivery was applied or is already the
// applied record; an error wrapping ErrRetry if it should be tried again
// later; otherwise the refusal (Reason gives its code), recorded as for an
// inbox file, with its bytes in the rejected directory.
func (in *Inbox) Apply(name string, b []byte) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	now := in.o.Now()
	var d *delivery.Delivery
	err := fmt.Errorf("%w: %d bytes, limit %d", delivery.ErrTooLarge, len(b), in.o.MaxBytes)
	if int64(len(b)) <= in.o.MaxBytes {
		d, err = delivery.Parse(b)
	}
	if err != nil {
		in.reject(name, nil, b, d, err, now)
		return err
	}
	v, acc, err := in.decide(name, b, d, now)
	switch v {
	case verdictRetry:
		return fmt.Errorf("%w: %w", ErrRetry, err)
	case verdictRejected:
		in.reject(name, nil, b, d, err, now)
		return err
	case verdictApplied:
		in.applied(name, acc, true)
	}
	return nil
}

// LastSeq is the sequence number last applied for o (0: none).
func (in *Inbox) LastSeq(o delivery.Object) uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.seqs[o]
}

// Groups lists the groups this machine is in: configured, or whose key it
// holds.
func (in *Inbox) Groups() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := slices.Clone(in.o.Groups)
	for _, k := range in.groupKeys {
		if !slices.Contains(out, k.group) {
			out = append(out, k.group)
		}
	}
	sort.Strings(out)
	return out
}

// waitForGroup keeps a group-addressed delivery that failed with
// wrong-recipient in the inbox, until its group's key comes (a group-key
// delivery that is applied handles it again) or GroupWait has passed since
// it was first seen. It returns nil while the delivery waits, or the
// error to reject it with. The caller holds mu.
func (in *Inbox) waitForGroup(name string, d *delivery.Delivery, cause error, now time.Time) error {
	first, ok := in.waiting[name]
	if !ok {
		if len(in.waiting) >= MaxGroupWaiting {
			return fmt.Errorf("%w (and %d deliveries already wait for their group's key)", cause, len(in.waiting))
		}
		first = now
		in.waiting[name] = now
		in.updateProblems()
		in.o.Log.Warn().Str("file", printable(name)).Str("delivery", d.ID).Str("to", d.To.String()).Dur("wait", in.o.GroupWait).
			Msg("inbox: the delivery is addressed to a group whose key this machine does not hold yet; it waits for the group key")
	}
	if now.Sub(first) < in.o.GroupWait {
		return nil
	}
	return fmt.Errorf("%w (waited %s for the group's key)", cause, in.o.GroupWait)
}

// remove deletes an applied or duplicate file from the inbox.
func (in *Inbox) remove(name string, f *os.File) {
	if err := in.dir.remove(name, f); err != nil && !errors.Is(err, fs.ErrNotExist) {
		in.o.Log.Warn().Err(err).Str("file", printable(name)).Msg("inbox: applied, but cannot remove the file")
	}
	in.forget(name)
}

// markStuck remembers that the rejected file name could not be moved out of
// the inbox (err says why), so that it is not rejected again at every scan.
// A name that another file has taken meanwhile is not stuck: that file is
// someone's new delivery, and is handled in its turn. The caller holds mu.
func (in *Inbox) markStuck(name string, err error) {
	if !errors.Is(err, errReplaced) {
		in.stuck[name] = true
	}
}

// forget drops what is remembered about an inbox file that is gone. The
// caller holds mu.
func (in *Inbox) forget(name string) {
	_, w := in.waiting[name]
	_, u := in.unreadable[name]
	_, st := in.stuck[name]
	delete(in.waiting, name)
	delete(in.unreadable, name)
	delete(in.stuck, name)
	if w || u || st {
		in.updateProblems()
	}
}

// forgetGone forgets the files that a scan no longer found. The caller
// holds mu.
func (in *Inbox) forgetGone(present map[string]bool) {
	for _, m := range []map[string]time.Time{in.waiting} {
		for n := range m {
			if !present[n] {
				in.forget(n)
			}
		}
	}
	for n := range in.unreadable {
		if !present[n] {
			in.forget(n)
		}
	}
	for n := range in.stuck {
		if !present[n] {
			in.forget(n)
		}
	}
}

// updateProblems publishes what waits in the inbox. The caller holds mu.
func (in *Inbox) updateProblems() {
	waiting := ""
	if n := len(in.waiting); n > 0 {
		oldest := time.Time{}
		for _, t := range in.waiting {
			if oldest.IsZero() || t.Before(oldest) {
				oldest = t
			}
		}
		waiting = fmt.Sprintf("%d deliveries addressed to a group wait in the inbox for the group's key (the oldest since %s; they are rejected after %s)",
			n, oldest.UTC().Format(time.RFC3339), in.o.GroupWait)
	}
	in.setProblem("group-wait", waiting)
	unreadable := ""
	if n := len(in.unreadable); n > 0 {
		names := make([]string, 0, n)
		for k := range in.unreadable {
			names = append(names, k)
		}
		sort.Strings(names)
		unreadable = fmt.Sprintf("%d inbox files cannot be read by the agent now and wait in the inbox (first: %s: %s); the portal must write deliveries with mode 0644, owned by an allowed owner",
			n, printable(names[0]), in.unreadable[names[0]])
	}
	in.setProblem("unreadable", unreadable)
	stuck := ""
	if n := len(in.stuck); n > 0 {
		stuck = fmt.Sprintf("%d rejected files cannot be moved out of the inbox and are left in it (see the log)", n)
	}
	in.setProblem("stuck", stuck)
}

func (in *Inbox) event(e Event) {
	if in.o.OnEvent != nil {
		in.o.OnEvent(e)
	}
}

// recordPath is where the record of an accepted delivery goes.
func (in *Inbox) recordPath(acc *delivery.Accepted) string {
	keyID := ""
	if acc.GroupPrivateKey != nil {
		keyID = delivery.KeyID(acc.GroupPrivateKey.PublicKey())
	}
	return filepath.Join(in.o.StateDir, recordsDir, string(acc.Object().Kind), recordName(acc.Delivery, keyID))
}

// recordStem names an object in its kind's records directory: the SHA-256
// of its name in hex, so that a record's file name has the same length
// whatever the name (a NAME is up to 128 bytes; its hex would not fit in
// NAME_MAX once suffixed).
func recordStem(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:])
}

// objectStem names an object in its kind's records directory: an object
// of an owner (SPEC section 9) by the SHA-256 of owner, NUL, name, so that
// the same name of two owners makes two records; an object without owner
// by recordStem(name), as before owners.
func objectStem(o delivery.Object) string {
	if o.Owner == "" {
		return recordStem(o.Name)
	}
	return recordStem(o.Owner + "\x00" + o.Name)
}

// legacyStem is the stem records had before: the hex of the name. Load
// renames such records to their current name.
func legacyStem(name string) string { return hex.EncodeToString([]byte(name)) }

// recordName is the file name of the record of d: <stem>.delivery, and for
// a group key <stem>.<key ID>.delivery (an application sealed to a
// superseded group key still needs it) or <stem>.revoked.delivery.
func recordName(d *delivery.Delivery, groupKeyID string) string {
	o := d.Object()
	stem := objectStem(o)
	if o.Kind == delivery.KindGroupKey {
		if d.Kind == delivery.KindRevoke {
			return stem + ".revoked.delivery"
		}
		return stem + "." + groupKeyID + ".delivery"
	}
	return stem + ".delivery"
}

// apply stores the record, then publishes the new state. The caller holds
// mu.
func (in *Inbox) apply(acc *delivery.Accepted, raw []byte, now time.Time) error {
	rec := in.recordPath(acc)
	if err := fsutil.WritePrivateFile(rec, raw); err != nil {
		return err
	}
	// A newer record supersedes a withdrawn one of the same object.
	os.Remove(rec + withdrawnSuffix)
	in.install(acc, rec, now)
	return nil
}

// install updates the in-memory maps and publishes the new snapshot for an
// accepted delivery whose record is at rec, then removes records that the
// delivery made obsolete. The caller holds mu.
func (in *Inbox) install(acc *delivery.Accepted, rec string, now time.Time) {
	o := acc.Object()
	if acc.Seq >= in.seqs[o] {
		in.seqs[o] = acc.Seq
		in.records[o] = rec
	}
	var obsolete, withdrawn []string
	in.o.State.Update(func(s *state.Snapshot) {
		switch c := acc.Content.(type) {
		case *delivery.Application:
			c.PrivateKey.Wipe()
			s.Applications[state.Key(acc.Owner, acc.Target)] = application(acc, now)
		case *delivery.GroupKey:
			c.PrivateKey.Wipe()
			id := delivery.KeyID(acc.GroupPrivateKey.PublicKey())
			in.groupKeys[id] = &groupKey{group: acc.Target, key: acc.GroupPrivateKey, seq: acc.Seq, record: rec, sealedTo: acc.Recipient}
			s.GroupKeys[id] = &state.GroupKey{ID: id, Group: acc.Target, Seq: acc.Seq, DeliveryID: acc.ID, AppliedAt: now}
			// A revocation of this group is superseded.
			if r := filepath.Join(filepath.Dir(rec), recordStem(acc.Target)+".revoked.delivery"); r != rec {
				obsolete = append(obsolete, r)
			}
		case *delivery.Store:
			s.Stores[state.Key(acc.Owner, acc.Target)] = storeState(acc, c, now)
		case *delivery.Credential:
			s.Credentials[state.Key(acc.Owner, acc.Target)] = credentialState(acc, c, now)
		case *delivery.Revoke:
			switch c.Revokes {
			case delivery.KindApplication:
				delete(s.Applications, state.Key(acc.Owner, acc.Target))
			case delivery.KindStore:
				delete(s.Stores, state.Key(acc.Owner, acc.Target))
			case delivery.KindCredential:
				delete(s.Credentials, state.Key(acc.Owner, acc.Target))
			case delivery.KindGroupKey:
				// Leaving a group: its keys go, and so do the
				// applications sealed to them.
				for id, k := range in.groupKeys {
					if k.group != acc.Target {
						continue
					}
					obsolete = append(obsolete, k.record)
					delete(in.groupKeys, id)
					delete(s.GroupKeys, id)
					// Everything sealed to them goes too. Its record is
					// kept, set aside, for its sequence number: without
					// it a restart would accept an older delivery again.
					withdraw := func(o delivery.Object) {
						withdrawn = append(withdrawn, in.records[o])
						delete(in.records, o)
						in.o.Log.Warn().Str("object", o.String()).Str("group", acc.Target).Msg("inbox: removed with its group key")
					}
					for key, a := range s.Applications {
						if a.SealedTo == id {
							delete(s.Applications, key)
							withdraw(delivery.Object{Kind: delivery.KindApplication, Owner: a.Owner, Name: a.AppID})
						}
					}
					for key, st := range s.Stores {
						if st.SealedTo == id {
							delete(s.Stores, key)
							withdraw(delivery.Object{Kind: delivery.KindStore, Owner: st.Owner, Name: st.Name})
						}
					}
					for key, c := range s.Credentials {
						if c.SealedTo == id {
							delete(s.Credentials, key)
							withdraw(delivery.Object{Kind: delivery.KindCredential, Owner: c.Owner, Name: c.Name})
						}
					}
				}
			}
		}
		if !in.loading {
			obsolete = append(obsolete, in.collectGroupKeys(s)...)
		}
	})
	for _, p := range withdrawn {
		if p != "" && p != rec {
			if err := os.Rename(p, p+withdrawnSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				in.o.Log.Warn().Err(err).Str("record", p).Msg("inbox: cannot set aside a withdrawn record")
			}
		}
	}
	for _, p := range obsolete {
		if p != "" && p != rec {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				in.o.Log.Warn().Err(err).Str("record", p).Msg("inbox: cannot remove an obsolete record")
			}
		}
	}
	if a, ok := acc.Content.(*delivery.Application); ok && a != nil {
		in.warnApp(in.o.State.Load().Applications[state.Key(acc.Owner, acc.Target)], now)
	}
}

// collectGroupKeys drops group keys that are neither their group's newest
// nor used by an application, and returns their records. The caller holds
// mu.
func (in *Inbox) collectGroupKeys(s *state.Snapshot) []string {
	newest := map[string]uint64{}
	for _, k := range in.groupKeys {
		newest[k.group] = max(newest[k.group], k.seq)
	}
	used := map[string]bool{}
	for id := range sealedTo(s) {
		used[id] = true
	}
	var out []string
	for id, k := range in.groupKeys {
		if k.seq < newest[k.group] && !used[id] {
			out = append(out, k.record)
			delete(in.groupKeys, id)
			delete(s.GroupKeys, id)
		}
	}
	return out
}

// sealedTo counts the sealed objects of a snapshot (applications, and
// stores and credentials that came sealed) by the key ID they were sealed
// to; objects in clear are not counted.
func sealedTo(s *state.Snapshot) map[string]int {
	out := map[string]int{}
	count := func(id string) {
		if id != "" {
			out[id]++
		}
	}
	for _, a := range s.Applications {
		count(a.SealedTo)
	}
	for _, st := range s.Stores {
		count(st.SealedTo)
	}
	for _, c := range s.Credentials {
		count(c.SealedTo)
	}
	return out
}

func application(acc *delivery.Accepted, now time.Time) *state.Application {
	leaf := acc.Certificate.Leaf
	fp := sha256.Sum256(leaf.Raw)
	return &state.Application{
		AppID:       acc.Target,
		Owner:       acc.Owner,
		Seq:         acc.Seq,
		DeliveryID:  acc.ID,
		Certificate: acc.Certificate,
		NotBefore:   leaf.NotBefore,
		NotAfter:    leaf.NotAfter,
		Serial:      strings.ToLower(leaf.SerialNumber.Text(16)),
		Fingerprint: hex.EncodeToString(fp[:]),
		SealedTo:    acc.Recipient,
		AppliedAt:   now,
	}
}

func storeState(acc *delivery.Accepted, c *delivery.Store, now time.Time) *state.Store {
	path := c.Path
	if path == "" {
		path = "/AIMWebService"
	}
	s := &state.Store{
		Name: acc.Target, Owner: acc.Owner, DisplayName: c.DisplayName, Seq: acc.Seq, DeliveryID: acc.ID,
		Servers: slices.Clone(c.Servers), Path: path, AppID: c.AppID, Safe: c.Safe, Folder: c.Folder,
		Pins: slices.Clone(c.Pins), Proxy: c.Proxy, NoProxy: slices.Clone(c.NoProxy), HealthObject: c.HealthObject,
		CacheTTL:      time.Duration(c.CacheTTLSeconds) * time.Second,
		CacheMaxStale: time.Duration(c.CacheMaxStaleSeconds) * time.Second,
		SealedTo:      acc.Recipient,
		AppliedAt:     now,
	}
	s.TLSMaxVersion = c.TLSMaxVersion
	if c.CABundle != "" {
		s.CABundle = []byte(c.CABundle)
	}
	return s
}

func credentialState(acc *delivery.Accepted, c *delivery.Credential, now time.Time) *state.Credential {
	return &state.Credential{
		Name: acc.Target, Owner: acc.Owner, Store: c.Store, Seq: acc.Seq, DeliveryID: acc.ID, Safe: c.Safe, Folder: c.Folder,
		Object: c.Object, Query: c.Query, QueryFormat: c.QueryFormat, UsernameVar: c.UsernameVar, SealedTo: acc.Recipient, AppliedAt: now,
	}
}

// reject moves a refused file to the rejected directory with a reason file,
// logs it and records it in the snapshot. f is the file as opened (nil for
// a symlink or other non-regular file); d may be nil. The caller holds mu.
func (in *Inbox) reject(name string, f *os.File, raw []byte, d *delivery.Delivery, cause error, now time.Time) {
	shown := printable(name)
	reason := Reason(cause)
	r := state.Rejection{File: shown, Reason: reason + ": " + cause.Error(), At: now}
	ev := in.o.Log.Error().Str("file", shown).Str("reason", reason).Err(cause)
	if d != nil {
		r.DeliveryID, r.Kind = d.ID, string(d.Kind)
		ev = ev.Str("delivery", d.ID).Str("kind", string(d.Kind)).Str("target", d.Target).Uint64("seq", d.Seq)
	}
	ev.Msg("inbox: delivery rejected")
	var size int64
	if f != nil {
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
	}
	if raw != nil { // a delivery from a feed: there is no inbox file
		size = int64(len(raw))
	}
	dir := filepath.Join(in.o.StateDir, rejectedDir)
	base := now.UTC().Format("20060102T150405.000000000Z") + "-" + quarantineName(name)
	kept := ""
	if why := in.quarantine.full(reason, min(size, in.o.MaxBytes)); why != "" {
		// The quarantine keeps the oldest of each reason; a flood of one
		// reason cannot push out the others.
		kept = "no: " + why
		if raw != nil {
			// nothing in the inbox to remove
		} else if err := in.dir.remove(name, f); err != nil {
			in.o.Log.Error().Err(err).Str("file", shown).Msg("inbox: cannot remove a rejected file")
			in.markStuck(name, err)
		}
	} else if f == nil && errors.Is(cause, ErrForeignOwner) {
		// A stranger's file the agent cannot read: there is nothing it
		// could keep a copy of, and the file itself is not taken in.
		kept = "no: the agent may not read it"
		if err := in.dir.remove(name, nil); err != nil {
			in.o.Log.Error().Err(err).Str("file", shown).Msg("inbox: cannot remove a rejected file")
			in.markStuck(name, err)
		}
	} else if raw != nil {
		kept = "yes"
		if err := fsutil.WritePrivateFile(filepath.Join(dir, base), raw[:min(size, in.o.MaxBytes)]); err != nil {
			kept = "no: " + err.Error()
		} else {
			in.quarantine.add(reason, base, min(size, in.o.MaxBytes))
		}
	} else {
		var err error
		if kept, err = in.moveOut(name, f, size, filepath.Join(dir, base)); err != nil {
			// Never deleted instead of kept: it stays in the inbox, and
			// is not rejected again while it is there.
			in.o.Log.Error().Err(err).Str("file", shown).Msg("inbox: cannot move the rejected file out of the inbox; it is left there")
			in.markStuck(name, err)
			kept = "no: left in the inbox: " + err.Error()
		} else {
			in.quarantine.add(reason, base, min(size, in.o.MaxBytes))
		}
	}
	if strings.HasPrefix(kept, "no") {
		r.Reason += " (file not kept: " + strings.TrimPrefix(kept, "no: ") + ")"
	}
	var note strings.Builder
	line := func(k, v string) { fmt.Fprintf(&note, "%s: %s\n", k, printable(v)) }
	line("file", name)
	line("reason", reason)
	line("error", cause.Error())
	line("at", now.UTC().Format(time.RFC3339Nano))
	line("kept", kept)
	if d != nil {
		line("delivery", d.ID)
		line("kind", string(d.Kind))
		line("target", d.Target)
		line("seq", strconv.FormatUint(d.Seq, 10))
		line("verified", strconv.FormatBool(d.Verified()))
	}
	// A reason file only next to a kept file: the quarantine's bound is
	// the bound of the directory.
	if kept != "" && !strings.HasPrefix(kept, "no") {
		if err := fsutil.WritePrivateFile(filepath.Join(dir, base+reasonSuffix), []byte(note.String())); err != nil {
			in.o.Log.Error().Err(err).Msg("inbox: cannot write the reason file")
		}
	}
	in.updateProblems()
	in.o.State.Update(func(s *state.Snapshot) { s.AddRejection(r) })
	e := Event{File: name, Err: cause, Reason: reason, At: in.o.Now(), Feed: raw != nil}
	if d != nil {
		e.DeliveryID, e.Kind, e.Owner, e.Target, e.Seq = d.ID, d.Kind, d.Owner, d.Target, d.Seq
	}
	in.event(e)
}

// moveOut moves a rejected file of size bytes from the inbox to dest. A
// regular file larger than MaxBytes, or one on another file system, is
// copied instead (at most MaxBytes of it) and then removed from the inbox:
// the quarantine counts at most MaxBytes of each file, and a stranger's
// gigabyte (or sparse) file moved in whole would fill it, for good. A
// symlink or other special file across file systems holds no data and is
// removed. It returns what the reason file says under "kept".
func (in *Inbox) moveOut(name string, f *os.File, size int64, dest string) (string, error) {
	how := "larger than a delivery may be"
	if f == nil || size <= in.o.MaxBytes {
		err := in.dir.moveOut(name, f, dest)
		if err == nil {
			return "yes", nil
		}
		if !errors.Is(err, errCrossDevice) {
			return "", err
		}
		how = "across file systems"
	}
	kept := "no: a special file across file systems, not copied"
	if f != nil {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		b, err := io.ReadAll(io.LimitReader(f, in.o.MaxBytes))
		if err != nil {
			return "", err
		}
		if err := fsutil.WritePrivateFile(dest, b); err != nil {
			return "", err
		}
		kept = "yes, copied " + how
		if fi, err := f.Stat(); err == nil && fi.Size() > int64(len(b)) {
			kept = fmt.Sprintf("partly: the first %d of %d bytes, copied (%s)", len(b), fi.Size(), how)
		}
	}
	if err := in.dir.remove(name, f); err != nil {
		return kept, fmt.Errorf("copied, but cannot remove it from the inbox: %w", err)
	}
	return kept, nil
}

// Load rebuilds the state from the records in the state directory: group
// keys first, then everything else. Each record is checked again as on
// arrival, except for its own expiry and the sequence. A record that no
// longer passes (its certificate expired, its group key is gone) is not
// applied and is reported, but its sequence number still counts against
// replays. Load replaces whatever the inbox held before.
func (in *Inbox) Load(ctx context.Context) error {
	start := time.Now()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.seqs = map[delivery.Object]uint64{}
	in.records = map[delivery.Object]string{}
	in.groupKeys = map[string]*groupKey{}
	for p := range in.blocked {
		in.setProblem("record:"+p, "")
	}
	in.blocked = map[string]blockedRecord{}
	in.loading = true
	defer func() { in.loading = false }()
	revoked := map[string]uint64{} // group -> seq of its revocation
	snap := in.o.State.Load()
	fresh := state.Empty()
	fresh.Generation = snap.Generation + 1
	fresh.Rejected = slices.Clone(snap.Rejected)
	fresh.NeedsReenroll = snap.NeedsReenroll
	fresh.InboxProblems = snap.InboxProblems
	in.o.State.Publish(fresh)
	now := in.o.Now()
	for _, k := range recordKinds {
		dir := filepath.Join(in.o.StateDir, recordsDir, string(k))
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("inbox: loading records: %w", err)
		}
		// Group revocations first, so that older keys of a revoked group
		// are not loaded.
		sort.SliceStable(ents, func(i, j int) bool {
			return strings.HasSuffix(ents[i].Name(), ".revoked.delivery") && !strings.HasSuffix(ents[j].Name(), ".revoked.delivery")
		})
		for _, e := range ents {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			name := e.Name()
			path := filepath.Join(dir, name)
			if strings.HasPrefix(name, ".") { // a temporary file left by a crash
				os.Remove(path)
				continue
			}
			if strings.HasSuffix(name, withdrawnSuffix) {
				in.loadWithdrawn(path, k)
				continue
			}
			if !strings.HasSuffix(name, ".delivery") {
				continue
			}
			in.loadRecord(path, k, now, revoked)
		}
	}
	in.loading = false
	in.o.State.Update(func(s *state.Snapshot) {
		for _, p := range in.collectGroupKeys(s) {
			os.Remove(p)
		}
	})
	snap = in.o.State.Load()
	in.o.Log.Info().Int("applications", len(snap.Applications)).Int("stores", len(snap.Stores)).
		Int("credentials", len(snap.Credentials)).Int("group_keys", len(snap.GroupKeys)).Dur("took", time.Since(start)).
		Msg("inbox: state rebuilt from the sealed records")
	in.warnExpiringLocked(now)
	return nil
}

func (in *Inbox) loadRecord(path string, k delivery.Kind, now time.Time, revoked map[string]uint64) {
	b, err := fsutil.ReadPrivateFile(path, delivery.MaxBytes)
	if err != nil {
		in.block(path, k, err)
		return
	}
	c := in.checker(now)
	c.IgnoreExpires = true
	c.LastSeq = nil
	acc, d, err := c.Check(b)
	if d == nil || !d.Verified() || d.Object().Kind != k {
		// Not authentic (truncated, altered, misplaced): its sequence
		// number is unknown, so its object is held (corrupt.go).
		if err == nil {
			err = fmt.Errorf("a %s record in the %s directory", d.Object().Kind, k)
		}
		in.block(path, k, err)
		return
	}
	// Authentic: its sequence counts even if it no longer applies.
	if d.Seq > in.seqs[d.Object()] {
		in.seqs[d.Object()] = d.Seq
		in.records[d.Object()] = path
	}
	if err != nil {
		in.o.Log.Error().Err(err).Str("record", path).Str("reason", Reason(err)).Msg("inbox: a stored delivery no longer applies")
		in.o.State.Update(func(s *state.Snapshot) {
			r := state.Rejection{File: filepath.Base(path), Reason: "record: " + Reason(err) + ": " + err.Error(), At: now}
			r.DeliveryID, r.Kind = d.ID, string(d.Kind)
			s.AddRejection(r)
		})
		return
	}
	if canon := in.recordPath(acc); canon != path {
		// A record named as before record names were hashed.
		if err := renameNoReplace(path, canon); err != nil {
			in.o.Log.Warn().Err(err).Str("record", path).Msg("inbox: cannot give a record its current name")
		} else {
			if in.records[d.Object()] == path {
				in.records[d.Object()] = canon
			}
			path = canon
		}
	}
	o := acc.Object()
	switch {
	case k == delivery.KindGroupKey:
		// A group may have several keys: the newest, and older ones still
		// used by applications. Only a revocation ends them.
		if acc.Kind == delivery.KindRevoke {
			revoked[o.Name] = max(revoked[o.Name], acc.Seq)
		} else if acc.Seq < revoked[o.Name] {
			return
		}
	case acc.Seq < in.seqs[o]:
		return
	}
	in.install(acc, path, now)
}

// renameNoReplace renames a record unless something is at to already.
func renameNoReplace(from, to string) error {
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("%s exists", to)
	}
	return os.Rename(from, to)
}

// withdrawnSuffix marks the record of an object removed without a record
// of its own taking its place (an application removed with its group's
// keys). It is never applied again; it is kept for its sequence number.
const withdrawnSuffix = ".withdrawn"

// loadWithdrawn counts the sequence number of a withdrawn record, if its
// signature verifies, so that replays stay refused across restarts.
func (in *Inbox) loadWithdrawn(path string, k delivery.Kind) {
	b, err := fsutil.ReadPrivateFile(path, delivery.MaxBytes)
	if err != nil {
		in.block(path, k, err)
		return
	}
	d, err := delivery.Parse(b)
	if err == nil {
		err = d.Verify(in.o.Signers)
	}
	if err == nil && d.Object().Kind != k {
		err = fmt.Errorf("a %s record in the %s directory", d.Object().Kind, k)
	}
	if err != nil {
		in.block(path, k, err)
		return
	}
	if o := d.Object(); d.Seq > in.seqs[o] {
		in.seqs[o] = d.Seq
	}
	if canon := filepath.Join(filepath.Dir(path), objectStem(d.Object())+".delivery"+withdrawnSuffix); canon != path && d.Object().Kind != delivery.KindGroupKey {
		if err := renameNoReplace(path, canon); err != nil {
			in.o.Log.Warn().Err(err).Str("record", path).Msg("inbox: cannot give a withdrawn record its current name")
		}
	}
}

// warnExpiring logs a warning for each application whose certificate
// expires within ExpiryWarning, at most once a day per application.
func (in *Inbox) warnExpiring() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.warnExpiringLocked(in.o.Now())
}

func (in *Inbox) warnExpiringLocked(now time.Time) {
	for _, a := range in.o.State.Load().Applications {
		in.warnApp(a, now)
	}
}

func (in *Inbox) warnApp(a *state.Application, now time.Time) {
	if a == nil || a.NotAfter.Sub(now) > in.o.ExpiryWarning {
		return
	}
	k := state.Key(a.Owner, a.AppID)
	if last, ok := in.warned[k]; ok && now.Sub(last) < 24*time.Hour {
		return
	}
	in.warned[k] = now
	in.o.Log.Warn().Str("app_id", a.AppID).Str("owner", a.Owner).Time("not_after", a.NotAfter).
		Int("days_left", int(a.NotAfter.Sub(now).Hours()/24)).Str("serial", a.Serial).
		Msg("inbox: application certificate expires soon")
}
