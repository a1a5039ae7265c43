// Package inbox takes deliveries in: it watches the inbox directory (fsnotify
// plus a periodic rescan, since events can be lost or overflow), checks each
// complete file with agent/delivery in the order of its SPEC.md, and either
// applies it, swapping in a new state.Snapshot atomically, or moves it to
// <StateDir>/rejected/ with a reason file.
//
// # The inbox directory
//
// The inbox is opened once (New), component by component without following
// a symlink or reparse point, after checking that neither it nor a
// directory above it can be replaced by someone other than root, the
// agent's user or an allowed owner. Every later operation (listing,
// opening, removing, moving a rejected file out) is relative to that
// handle, so a path swapped afterwards changes nothing the agent touches.
// Errors of the machine reading a file (too many open files, an I/O
// error, a permission the agent lacks) leave the file for the next scan.
//
// # Records
//
// The only thing kept on disk is the delivery file itself, unchanged, as
// the record of the object it applied: <StateDir>/records/<kind>/<stem>
// .delivery, where stem is the SHA-256 of the object's name in hex (group
// keys: <stem>.<key ID>.delivery, since an application sealed to a
// superseded group key still needs it). Records are written atomically and
// privately (platform/fsutil); Load rebuilds the state from them at
// start-up. The record of an application removed with its group's keys is
// renamed to <name>.delivery.withdrawn and only counts for its sequence
// number. A record that can no longer be read or verified holds its object:
// its deliveries wait until an operator restores or removes it. A crash at
// any point leaves either the old record or the new one, and the inbox
// file, if still there, is then a byte-for-byte duplicate that is dropped
// silently. Private keys live only in memory.
//
// # Rejections
//
// A refused file goes to <StateDir>/rejected/<time>-<name>, with
// <time>-<name>.reason next to it, an error log line, and a state.Rejection
// in the snapshot; the name is shortened and stripped of anything but
// letters, digits, '.', '_' and '-', and every name printed is quoted if it
// holds a control character. The rejected directory keeps the oldest
// MaxQuarantinedPerReason files of each reason, within MaxQuarantineBytes;
// its reason files list the rejections again after a restart. It is in the
// state directory, not the inbox, because the inbox may be writable by the
// portal's drop account and the state directory is not. The last good
// state stays in force.
//
// A delivery addressed to a group whose key this machine does not hold yet
// waits in the inbox (at most MaxGroupWaiting, for at most GroupWait) and
// is handled again when a group key is applied.
package inbox

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/credagent/credagent/agent/delivery"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/platform/fsutil"
	"github.com/rs/zerolog"
)

// Key is a machine key: the subset of platform/keystore.Key the inbox needs.
type Key interface {
	ecdh.KeyExchanger
	ID() string
}

// Options configure an Inbox. InboxDir, StateDir, Signers, MachineKeys,
// MachineID and State are required.
type Options struct {
	InboxDir string
	StateDir string
	// MaxBytes refuses larger files before reading them. Default 1 MiB.
	MaxBytes int64
	// Rescan is the periodic full scan. Default 30 s.
	Rescan time.Duration
	// ExpiryWarning: warn when an application certificate expires within
	// this long. Default 30 days.
	ExpiryWarning time.Duration
	// Signers are the pinned portal signing keys (config.ParseSigningKey).
	Signers []crypto.PublicKey
	// MachineKeys are this machine's keys: the current one, and during a
	// rotation the pending one.
	MachineKeys []Key
	MachineID   string
	// Groups this machine belongs to by configuration. A machine also
	// belongs to every group whose key it holds.
	Groups []string
	// AllowedOwners may own a delivery file besides the agent's own user:
	// uids or user names on Unix, SIDs on Windows. They (and root) may also
	// own the inbox and the directories above it.
	AllowedOwners []string
	State         *state.State
	Log           zerolog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// GroupWait bounds how long a delivery addressed to a group whose key
	// has not arrived waits in the inbox for it. Default 1 hour.
	GroupWait time.Duration
	// OnEvent, if set, is called after each file is applied or rejected,
	// from the goroutine that handled it. The benchmark uses it to measure
	// drop-to-in-use latency.
	OnEvent func(Event)
}

// Event reports one handled file.
type Event struct {
	File       string
	DeliveryID string
	Kind       delivery.Kind
	// Owner is the delivery's owner header (SPEC section 9), not the
	// file's owner.
	Owner  string
	Target string
	Seq    uint64
	Err    error // nil: applied
	Reason string
	At     time.Time // when the new snapshot was published, or the rejection recorded
	// Feed is set for a delivery that came through Apply (a feed), not
	// the inbox directory.
	Feed bool
}

// File-level refusals, before the delivery format is looked at.
var (
	ErrSymlink      = errors.New("inbox: delivery is a symlink")
	ErrNotRegular   = errors.New("inbox: delivery is not a regular file")
	ErrForeignOwner = errors.New("inbox: delivery is owned by a user not allowed to deliver")
)

// Reason is delivery.Reason extended with the inbox's own refusals.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrSymlink):
		return "symlink"
	case errors.Is(err, ErrNotRegular):
		return "not-regular"
	case errors.Is(err, ErrForeignOwner):
		return "foreign-owner"
	}
	return delivery.Reason(err)
}

// Inbox applies deliveries to a state.State. Its methods may be called from
// several goroutines; applying is serialised.
type Inbox struct {
	o      Options
	owners ownerSet
	dir    *inboxDir

	closeOnce sync.Once
	closeErr  error

	mu sync.Mutex
	// waiting: group-addressed deliveries waiting for their group's key,
	// by inbox file name, with when they were first seen.
	waiting map[string]time.Time
	// blocked: records that cannot be read or no longer parse, by path.
	// Deliveries of the object such a record may hold wait until an
	// operator restores or removes it (see corrupt.go).
	blocked map[string]blockedRecord
	// unreadable: inbox files the agent cannot read now, with the error.
	unreadable map[string]string
	// stuck: rejected files that could not be moved out of the inbox.
	stuck      map[string]bool
	problems   map[string]string // by key: the snapshot's InboxProblems
	quarantine quarantine
	seqs       map[delivery.Object]uint64
	records    map[delivery.Object]string // path of the record of each object
	groupKeys  map[string]*groupKey       // by key ID
	warned     map[string]time.Time       // app ID -> last expiry warning
	retry      map[string]*time.Timer
	loading    bool // Load is running: no group key collection yet
}

type groupKey struct {
	group    string
	key      *ecdh.PrivateKey
	seq      uint64
	record   string
	sealedTo string // the machine key ID its delivery was sealed to
}

// recordKinds are the kinds that have a records directory, in the order
// Load reads them (delivery.Kinds: group keys before the applications sealed
// to them). A revocation's record goes with the kind it revokes.
var recordKinds = slices.DeleteFunc(slices.Clone(delivery.Kinds), func(k delivery.Kind) bool { return k == delivery.KindRevoke })

const (
	recordsDir  = "records"
	rejectedDir = "rejected"
	// MaxGroupWaiting bounds how many group-addressed deliveries may wait
	// for their group's key at once; past it they are rejected.
	MaxGroupWaiting = 64
	// settle is how long a file that does not parse is given to be
	// completed by a writer that does not rename into place.
	settle = 2 * time.Second
)

// New checks the options and makes the state directories.
func New(o Options) (*Inbox, error) {
	if o.InboxDir == "" || o.StateDir == "" || o.MachineID == "" || o.State == nil {
		return nil, errors.New("inbox: InboxDir, StateDir, MachineID and State are required")
	}
	if len(o.Signers) == 0 {
		return nil, errors.New("inbox: no portal signing key is pinned")
	}
	if len(o.MachineKeys) == 0 {
		return nil, errors.New("inbox: no machine key")
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 20
	}
	if o.Rescan <= 0 {
		o.Rescan = 30 * time.Second
	}
	if o.ExpiryWarning <= 0 {
		o.ExpiryWarning = 30 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.GroupWait <= 0 {
		o.GroupWait = time.Hour
	}
	owners, err := parseOwners(o.AllowedOwners)
	if err != nil {
		return nil, err
	}
	// The inbox may be a directory of the state directory (the default),
	// but not the state directory itself, nor in its records or rejected
	// directories.
	for _, d := range []string{"", recordsDir, rejectedDir} {
		if within(filepath.Join(o.StateDir, d), o.InboxDir, d != "") {
			return nil, fmt.Errorf("inbox: the inbox %s must not be the state directory or in its %s directory", printable(o.InboxDir), d)
		}
	}
	for _, d := range []string{o.StateDir, filepath.Join(o.StateDir, recordsDir), filepath.Join(o.StateDir, rejectedDir)} {
		if err := fsutil.MkdirPrivate(d); err != nil {
			return nil, fmt.Errorf("inbox: %w", err)
		}
	}
	for _, k := range recordKinds {
		if err := fsutil.MkdirPrivate(filepath.Join(o.StateDir, recordsDir, string(k))); err != nil {
			return nil, fmt.Errorf("inbox: %w", err)
		}
	}
	// Opened once; every later operation on the inbox is relative to it.
	dir, err := openInboxDir(o.InboxDir, owners)
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	in := &Inbox{
		o:          o,
		owners:     owners,
		dir:        dir,
		seqs:       map[delivery.Object]uint64{},
		records:    map[delivery.Object]string{},
		groupKeys:  map[string]*groupKey{},
		warned:     map[string]time.Time{},
		retry:      map[string]*time.Timer{},
		waiting:    map[string]time.Time{},
		blocked:    map[string]blockedRecord{},
		unreadable: map[string]string{},
		stuck:      map[string]bool{},
		problems:   map[string]string{},
	}
	// Rejections survive a restart: they are listed again from the
	// quarantine's reason files.
	persisted := in.quarantine.load(filepath.Join(o.StateDir, rejectedDir), o.MaxBytes, o.Log)
	o.State.Update(func(s *state.Snapshot) {
		for _, r := range persisted {
			s.AddRejection(r)
		}
	})
	return in, nil
}

// Close releases the inbox directory. Run must have returned. A second
// Close does nothing and returns the first one's error: the descriptor
// (handle) is closed exactly once, since closing its number again would
// close whatever the process has opened under that number since.
func (in *Inbox) Close() error {
	in.closeOnce.Do(func() { in.closeErr = in.dir.Close() })
	return in.closeErr
}

// setProblem sets (text != "") or clears the inbox problem key and
// publishes the list if it changed. The caller holds mu.
func (in *Inbox) setProblem(key, text string) {
	if in.problems[key] == text {
		return
	}
	if text == "" {
		delete(in.problems, key)
	} else {
		in.problems[key] = text
	}
	list := make([]string, 0, len(in.problems))
	for _, p := range in.problems {
		list = append(list, p)
	}
	sort.Strings(list)
	in.o.State.Update(func(s *state.Snapshot) { s.InboxProblems = list })
}

// checker returns the delivery checks bound to the inbox's current keys and
// sequences. The caller holds mu.
func (in *Inbox) checker(now time.Time) *delivery.Checker {
	return &delivery.Checker{
		MaxBytes:  in.o.MaxBytes,
		Signers:   in.o.Signers,
		MachineID: in.o.MachineID,
		InGroup: func(g string) bool {
			for _, x := range in.o.Groups {
				if x == g {
					return true
				}
			}
			for _, k := range in.groupKeys {
				if k.group == g {
					return true
				}
			}
			return false
		},
		MachineKey: func(id string) ecdh.KeyExchanger {
			for _, k := range in.o.MachineKeys {
				if k.ID() == id {
					return k
				}
			}
			return nil
		},
		GroupKey: func(g, id string) ecdh.KeyExchanger {
			if k := in.groupKeys[id]; k != nil && k.group == g {
				return k.key
			}
			return nil
		},
		LastSeq: func(o delivery.Object) uint64 { return in.seqs[o] },
		Now:     now,
	}
}

// Run scans the inbox, then watches it until ctx is done. It returns nil
// when ctx is cancelled.
func (in *Inbox) Run(ctx context.Context) error {
	w, err := newWatcher(in.dir.watchPath())
	if err != nil {
		in.o.Log.Warn().Err(err).Str("dir", in.o.InboxDir).Msg("inbox: cannot watch; relying on the periodic rescan")
	}
	if w != nil {
		defer w.Close()
	}
	in.ScanOnce(ctx)
	tick := time.NewTicker(in.o.Rescan)
	defer tick.Stop()
	defer in.stopRetries()
	var events <-chan string
	var errs <-chan error
	if w != nil {
		events, errs = w.names, w.errs
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			in.ScanOnce(ctx)
			in.warnExpiring()
		case name, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			in.handle(name)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			in.o.Log.Warn().Err(err).Msg("inbox: watcher error; rescanning")
			in.ScanOnce(ctx)
		}
	}
}

// ScanOnce handles every complete file in the inbox, oldest first (by
// modification time, then name).
func (in *Inbox) ScanOnce(ctx context.Context) {
	moved := in.dir.stillAt()
	in.mu.Lock()
	if moved != nil {
		in.setProblem("inbox-moved", moved.Error())
	} else {
		in.setProblem("inbox-moved", "")
	}
	in.mu.Unlock()
	if moved != nil {
		in.o.Log.Error().Err(moved).Msg("inbox: the inbox directory is not the one the agent opened")
	}
	names, err := in.dir.names()
	if err != nil {
		in.o.Log.Error().Err(err).Str("dir", in.o.InboxDir).Msg("inbox: cannot read the inbox")
		return
	}
	// A backlog (after downtime, or a burst faster than the watcher) may
	// hold several deliveries of one object. Apply them in sequence order,
	// so that the older ones are not refused as replays of a newer one met
	// first: by the sequence in each header (file times tie within a
	// clock tick), then oldest file first for what does not parse, which
	// is refused whatever its place.
	mod := make(map[string]time.Time, len(names))
	seq := make(map[string]uint64, len(names))
	for _, n := range names {
		if eligible(n) {
			mod[n] = in.dir.modTime(n)
			seq[n] = in.peekSeq(n)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if a, b := seq[names[i]], seq[names[j]]; a != b {
			return a < b
		}
		if a, b := mod[names[i]], mod[names[j]]; !a.Equal(b) {
			return a.Before(b)
		}
		return names[i] < names[j]
	})
	present := map[string]bool{}
	for _, n := range names {
		if ctx.Err() != nil {
			return
		}
		present[n] = true
		if eligible(n) {
			in.handle(n)
		}
	}
	in.mu.Lock()
	in.forgetGone(present)
	in.mu.Unlock()
}

// peekSeq is the sequence in the header of the inbox file name, 0 if it
// cannot be read or parsed now (handle says why, in its turn).
func (in *Inbox) peekSeq(name string) uint64 {
	b, _, f, err := readDelivery(in.dir, name, in.o.MaxBytes, in.owners)
	if f != nil {
		f.Close()
	}
	if err != nil {
		return 0
	}
	d, err := delivery.Parse(b)
	if err != nil {
		return 0
	}
	return d.Header.Seq
}

// eligible reports whether a name in the inbox is a complete delivery:
// writers use a dot file or a .tmp suffix until they rename.
func eligible(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, ".tmp") && !strings.HasSuffix(name, "~")
}

func (in *Inbox) stopRetries() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, t := range in.retry {
		t.Stop()
	}
}

// SealedTo counts the sealed objects in force (applications, group keys,
// and sealed stores and credentials) by the key ID they were sealed to.
// During a machine-key rotation the agent promotes the pending key once
// nothing in force is sealed to the old one. Every group key held counts,
// not only its group's newest: an older one still used by a sealed object
// must open again after a restart.
func (in *Inbox) SealedTo() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := sealedTo(in.o.State.Load())
	for _, k := range in.groupKeys {
		out[k.sealedTo]++
	}
	return out
}

// within reports whether path is dir, or (with below) inside dir.
func within(dir, path string, below bool) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	if err != nil {
		return false
	}
	return rel == "." || (below && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}
