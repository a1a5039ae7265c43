package inbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/platform/fsutil"
)

// handle checks one inbox file and applies or rejects it.
func (in *Inbox) handle(path string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if t := in.retry[path]; t != nil {
		t.Stop()
		delete(in.retry, path)
	}
	b, fi, err := readDelivery(path, in.o.MaxBytes, in.owners)
	if errors.Is(err, os.ErrNotExist) {
		return // handled already, or renamed away
	}
	now := in.o.Now()
	if err != nil {
		in.reject(path, nil, err, now)
		return
	}
	// readDelivery has checked the size (check 1); the file is parsed
	// once, here, and the other checks run on the result.
	d, err := delivery.Parse(b)
	if err != nil {
		if errors.Is(err, delivery.ErrMalformed) && now.Sub(fi.ModTime()) < settle && now.Sub(fi.ModTime()) > -settle {
			// Perhaps still being written by a writer that does not
			// rename: look again once it has settled.
			in.retry[path] = time.AfterFunc(settle, func() { in.handle(path) })
			return
		}
		in.reject(path, nil, err, now)
		return
	}
	// A duplicate of the applied record: a crash came between storing the
	// record and removing the inbox file.
	if rec, ok := in.records[d.Object()]; ok && in.seqs[d.Object()] == d.Seq {
		if old, rerr := fsutil.ReadPrivateFile(rec, delivery.MaxSize); rerr == nil && bytes.Equal(old, b) {
			in.o.Log.Info().Str("file", path).Str("delivery", d.ID).Msg("inbox: already applied; removing the duplicate")
			os.Remove(path)
			return
		}
	}
	acc, err := in.checker(now).CheckParsed(d)
	if errors.Is(err, delivery.ErrKeyUnavailable) {
		// Not the delivery's fault (the TPM does not answer): leave it for
		// the next scan, as for a full disk, and say so in status.
		in.o.Log.Error().Err(err).Str("file", path).Msg("inbox: the key store cannot open the delivery now; will retry")
		problem := "the key store cannot open deliveries (they wait in the inbox): " + err.Error()
		if in.o.State.Load().KeyProblem != problem {
			in.o.State.Update(func(s *state.Snapshot) error { s.KeyProblem = problem; return nil })
		}
		return
	}
	if err == nil && acc.Kind.Sealed() && in.o.State.Load().KeyProblem != "" {
		in.o.State.Update(func(s *state.Snapshot) error { s.KeyProblem = ""; return nil })
		in.o.Log.Info().Msg("inbox: the key store opens deliveries again")
	}
	if err != nil {
		in.reject(path, d, err, now)
		return
	}
	if err := in.apply(acc, b, now); err != nil {
		// Not the delivery's fault (a full disk): leave it for the next
		// scan.
		in.o.Log.Error().Err(err).Str("file", path).Str("delivery", acc.ID).Msg("inbox: cannot store the record; will retry")
		return
	}
	if err := os.Remove(path); err != nil {
		in.o.Log.Warn().Err(err).Str("file", path).Msg("inbox: applied, but cannot remove the file")
	}
	at := in.o.Now()
	in.o.Log.Info().Str("delivery", acc.ID).Str("kind", string(acc.Kind)).Str("target", acc.Target).
		Uint64("seq", acc.Seq).Str("to", acc.To.String()).Msg("inbox: delivery applied")
	in.event(Event{File: path, DeliveryID: acc.ID, Kind: acc.Kind, Target: acc.Target, Seq: acc.Seq, At: at})
}

func (in *Inbox) event(e Event) {
	if in.o.OnEvent != nil {
		in.o.OnEvent(e)
	}
}

// recordPath is where the record of an accepted delivery goes.
func (in *Inbox) recordPath(acc *delivery.Accepted) string {
	o := acc.Object()
	dir := filepath.Join(in.o.StateDir, recordsDir, string(o.Kind))
	name := hex.EncodeToString([]byte(o.Name))
	if o.Kind == delivery.KindGroupKey {
		if acc.Kind == delivery.KindRevoke {
			return filepath.Join(dir, name+".revoked.delivery")
		}
		return filepath.Join(dir, name+"."+delivery.KeyID(acc.GroupPrivateKey.PublicKey())+".delivery")
	}
	return filepath.Join(dir, name+".delivery")
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
	err := in.o.State.Update(func(s *state.Snapshot) error {
		switch c := acc.Content.(type) {
		case *delivery.Application:
			c.PrivateKey.Wipe()
			s.Applications[acc.Target] = application(acc, now)
		case *delivery.GroupKey:
			c.PrivateKey.Wipe()
			id := delivery.KeyID(acc.GroupPrivateKey.PublicKey())
			in.groupKeys[id] = &groupKey{group: acc.Target, key: acc.GroupPrivateKey, seq: acc.Seq, record: rec, sealedTo: acc.Recipient}
			s.GroupKeys[id] = &state.GroupKey{ID: id, Group: acc.Target, Seq: acc.Seq, DeliveryID: acc.ID, AppliedAt: now}
			// A revocation of this group is superseded.
			if r := filepath.Join(filepath.Dir(rec), hex.EncodeToString([]byte(acc.Target))+".revoked.delivery"); r != rec {
				obsolete = append(obsolete, r)
			}
		case *delivery.Store:
			s.Stores[acc.Target] = storeState(acc, c, now)
		case *delivery.Credential:
			s.Credentials[acc.Target] = credentialState(acc, c, now)
		case *delivery.Revoke:
			switch c.Revokes {
			case delivery.KindApplication:
				delete(s.Applications, acc.Target)
			case delivery.KindStore:
				delete(s.Stores, acc.Target)
			case delivery.KindCredential:
				delete(s.Credentials, acc.Target)
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
					for appID, a := range s.Applications {
						if a.SealedTo == id {
							delete(s.Applications, appID)
							ao := delivery.Object{Kind: delivery.KindApplication, Name: appID}
							// Its record is kept, set aside, for its
							// sequence number: without it a restart
							// would accept an older delivery again.
							withdrawn = append(withdrawn, in.records[ao])
							delete(in.records, ao)
							in.o.Log.Warn().Str("app_id", appID).Str("group", acc.Target).Msg("inbox: application removed with its group key")
						}
					}
				}
			}
		}
		if !in.loading {
			obsolete = append(obsolete, in.collectGroupKeys(s)...)
		}
		return nil
	})
	if err != nil { // Update's fn never fails
		panic(err)
	}
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
		in.warnApp(in.o.State.Load().Applications[acc.Target], now)
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
	for _, a := range s.Applications {
		used[a.SealedTo] = true
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

func application(acc *delivery.Accepted, now time.Time) *state.Application {
	leaf := acc.Certificate.Leaf
	fp := sha256.Sum256(leaf.Raw)
	return &state.Application{
		AppID:       acc.Target,
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
		Name: acc.Target, DisplayName: c.DisplayName, Seq: acc.Seq, DeliveryID: acc.ID,
		Servers: slices.Clone(c.Servers), Path: path, AppID: c.AppID, Safe: c.Safe, Folder: c.Folder,
		Pins: slices.Clone(c.Pins), Proxy: c.Proxy, NoProxy: slices.Clone(c.NoProxy), HealthObject: c.HealthObject,
		CacheTTL:      time.Duration(c.CacheTTLSeconds) * time.Second,
		CacheMaxStale: time.Duration(c.CacheMaxStaleSeconds) * time.Second,
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
		Name: acc.Target, Store: c.Store, Seq: acc.Seq, DeliveryID: acc.ID, Safe: c.Safe, Folder: c.Folder,
		Object: c.Object, Query: c.Query, QueryFormat: c.QueryFormat, UsernameVar: c.UsernameVar, AppliedAt: now,
	}
}

// reject moves a refused file to the rejected directory with a reason file,
// logs it and records it in the snapshot. d may be nil. The caller holds mu.
func (in *Inbox) reject(path string, d *delivery.Delivery, cause error, now time.Time) {
	base := filepath.Base(path)
	reason := Reason(cause)
	r := state.Rejection{File: base, Reason: reason + ": " + cause.Error(), At: now}
	ev := in.o.Log.Error().Str("file", base).Str("reason", reason).Err(cause)
	if d != nil {
		r.DeliveryID, r.Kind = d.ID, string(d.Kind)
		ev = ev.Str("delivery", d.ID).Str("kind", string(d.Kind)).Str("target", d.Target).Uint64("seq", d.Seq)
	}
	ev.Msg("inbox: delivery rejected")
	dest := filepath.Join(in.o.StateDir, rejectedDir, now.UTC().Format("20060102T150405.000000000Z")+"-"+base)
	var note strings.Builder
	fmt.Fprintf(&note, "file: %s\nreason: %s\nerror: %s\nat: %s\n", base, reason, cause, now.UTC().Format(time.RFC3339Nano))
	if d != nil {
		fmt.Fprintf(&note, "delivery: %s\nkind: %s\ntarget: %s\nseq: %d\nverified: %t\n", d.ID, d.Kind, d.Target, d.Seq, d.Verified())
	}
	if err := fsutil.WritePrivateFile(dest+".reason", []byte(note.String())); err != nil {
		in.o.Log.Error().Err(err).Msg("inbox: cannot write the reason file")
	}
	// Rename moves a symlink itself, never its target.
	if err := os.Rename(path, dest); err != nil {
		in.o.Log.Error().Err(err).Str("file", base).Msg("inbox: cannot move the rejected file; removing it")
		os.Remove(path)
	}
	in.pruneRejected()
	in.o.State.Update(func(s *state.Snapshot) error { s.AddRejection(r); return nil })
	e := Event{File: path, Err: cause, Reason: reason, At: in.o.Now()}
	if d != nil {
		e.DeliveryID, e.Kind, e.Target, e.Seq = d.ID, d.Kind, d.Target, d.Seq
	}
	in.event(e)
}

func (in *Inbox) pruneRejected() {
	dir := filepath.Join(in.o.StateDir, rejectedDir)
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) <= MaxRejectedFiles {
		return
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names) // time-stamped names: oldest first
	for _, n := range names[:len(names)-MaxRejectedFiles] {
		os.Remove(filepath.Join(dir, n))
	}
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
	in.loading = true
	defer func() { in.loading = false }()
	revoked := map[string]uint64{} // group -> seq of its revocation
	snap := in.o.State.Load()
	fresh := state.Empty()
	fresh.Generation = snap.Generation + 1
	fresh.Rejected = slices.Clone(snap.Rejected)
	fresh.NeedsReenroll = snap.NeedsReenroll
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
	in.o.State.Update(func(s *state.Snapshot) error {
		for _, p := range in.collectGroupKeys(s) {
			os.Remove(p)
		}
		return nil
	})
	snap = in.o.State.Load()
	in.o.Log.Info().Int("applications", len(snap.Applications)).Int("stores", len(snap.Stores)).
		Int("credentials", len(snap.Credentials)).Int("group_keys", len(snap.GroupKeys)).Dur("took", time.Since(start)).
		Msg("inbox: state rebuilt from the sealed records")
	in.warnExpiringLocked(now)
	return nil
}

func (in *Inbox) loadRecord(path string, k delivery.Kind, now time.Time, revoked map[string]uint64) {
	b, err := fsutil.ReadPrivateFile(path, delivery.MaxSize)
	if err != nil {
		in.o.Log.Error().Err(err).Str("record", path).Msg("inbox: cannot read a record")
		return
	}
	c := in.checker(now)
	c.IgnoreExpires = true
	c.LastSeq = nil
	acc, d, err := c.Check(b)
	if d != nil && d.Verified() && d.Object().Kind == k {
		// Authentic: its sequence counts even if it no longer applies.
		if d.Seq > in.seqs[d.Object()] {
			in.seqs[d.Object()] = d.Seq
			in.records[d.Object()] = path
		}
	}
	if err != nil {
		in.o.Log.Error().Err(err).Str("record", path).Str("reason", Reason(err)).Msg("inbox: a stored delivery no longer applies")
		in.o.State.Update(func(s *state.Snapshot) error {
			r := state.Rejection{File: filepath.Base(path), Reason: "record: " + Reason(err) + ": " + err.Error(), At: now}
			if d != nil {
				r.DeliveryID, r.Kind = d.ID, string(d.Kind)
			}
			s.AddRejection(r)
			return nil
		})
		return
	}
	o := acc.Object()
	switch {
	case o.Kind != k:
		return
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

// withdrawnSuffix marks the record of an object removed without a record
// of its own taking its place (an application removed with its group's
// keys). It is never applied again; it is kept for its sequence number.
const withdrawnSuffix = ".withdrawn"

// loadWithdrawn counts the sequence number of a withdrawn record, if its
// signature verifies, so that replays stay refused across restarts.
func (in *Inbox) loadWithdrawn(path string, k delivery.Kind) {
	b, err := fsutil.ReadPrivateFile(path, delivery.MaxSize)
	if err != nil {
		in.o.Log.Error().Err(err).Str("record", path).Msg("inbox: cannot read a withdrawn record")
		return
	}
	d, err := delivery.Parse(b)
	if err != nil || d.Verify(in.o.Signers) != nil || d.Object().Kind != k {
		in.o.Log.Warn().Str("record", path).Msg("inbox: ignoring a withdrawn record that does not verify")
		return
	}
	if o := d.Object(); d.Seq > in.seqs[o] {
		in.seqs[o] = d.Seq
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
	if last, ok := in.warned[a.AppID]; ok && now.Sub(last) < 24*time.Hour {
		return
	}
	in.warned[a.AppID] = now
	in.o.Log.Warn().Str("app_id", a.AppID).Time("not_after", a.NotAfter).
		Int("days_left", int(a.NotAfter.Sub(now).Hours()/24)).Str("serial", a.Serial).
		Msg("inbox: application certificate expires soon")
}
