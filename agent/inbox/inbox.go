// Package inbox takes deliveries in: it watches the inbox directory (fsnotify
// plus a periodic rescan, since events can be lost or overflow), checks each
// complete file with agent/delivery in the order of its SPEC.md, and either
// applies it, swapping in a new state.Snapshot atomically, or moves it to
// <StateDir>/rejected/ with a reason file.
//
// # Records
//
// The only thing kept on disk is the delivery file itself, unchanged, as
// the record of the object it applied: <StateDir>/records/<kind>/<hex of
// name>.delivery (group keys: <hex of group>.<key ID>.delivery, since an
// application sealed to a superseded group key still needs it). Records are
// written atomically and privately (platform/fsutil); Load rebuilds the state
// from them at start-up. The record of an application removed with its
// group's keys is renamed to <name>.delivery.withdrawn and only counts for
// its sequence number. A crash at any point leaves either the old record
// or the new one, and the inbox file, if still there, is then a byte-for-byte
// duplicate that is dropped silently. Private keys live only in memory.
//
// # Rejections
//
// A refused file goes to <StateDir>/rejected/<time>-<name>, with
// <time>-<name>.reason next to it, an error log line, and a state.Rejection
// in the snapshot. The rejected directory is in the state directory, not the
// inbox, because the inbox may be writable by the portal's drop account and
// the state directory is not. The last good state stays in force.
package inbox

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	// uids or user names on Unix, SIDs on Windows.
	AllowedOwners []string
	State         *state.State
	Log           zerolog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
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
	Target     string
	Seq        uint64
	Err        error // nil: applied
	Reason     string
	At         time.Time // when the new snapshot was published, or the rejection recorded
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

	mu        sync.Mutex
	seqs      map[delivery.Object]uint64
	records   map[delivery.Object]string // path of the record of each object
	groupKeys map[string]*groupKey       // by key ID
	warned    map[string]time.Time       // app ID -> last expiry warning
	retry     map[string]*time.Timer
	loading   bool // Load is running: no group key collection yet
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
	// MaxRejectedFiles bounds the rejected directory; the oldest go first.
	MaxRejectedFiles = 200
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
	owners, err := parseOwners(o.AllowedOwners)
	if err != nil {
		return nil, err
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
	return &Inbox{
		o:         o,
		owners:    owners,
		seqs:      map[delivery.Object]uint64{},
		records:   map[delivery.Object]string{},
		groupKeys: map[string]*groupKey{},
		warned:    map[string]time.Time{},
		retry:     map[string]*time.Timer{},
	}, nil
}

// checker returns the delivery checks bound to the inbox's current keys and
// sequences. The caller holds mu.
func (in *Inbox) checker(now time.Time) *delivery.Checker {
	return &delivery.Checker{
		MaxSize:   in.o.MaxBytes,
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
	w, err := newWatcher(in.o.InboxDir)
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
			in.handle(filepath.Join(in.o.InboxDir, name))
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

// ScanOnce handles every complete file in the inbox, in name order.
func (in *Inbox) ScanOnce(ctx context.Context) {
	ents, err := os.ReadDir(in.o.InboxDir)
	if err != nil {
		in.o.Log.Error().Err(err).Str("dir", in.o.InboxDir).Msg("inbox: cannot read the inbox")
		return
	}
	for _, e := range ents {
		if ctx.Err() != nil {
			return
		}
		if eligible(e.Name()) {
			in.handle(filepath.Join(in.o.InboxDir, e.Name()))
		}
	}
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

// SealedTo counts the sealed objects in force (applications and group keys)
// by the key ID they were sealed to. During a machine-key rotation the agent
// promotes the pending key once nothing in force is sealed to the old one.
// Every group key held counts, not only its group's newest: an older one
// still used by an application must open again after a restart.
func (in *Inbox) SealedTo() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := map[string]int{}
	for _, a := range in.o.State.Load().Applications {
		out[a.SealedTo]++
	}
	for _, k := range in.groupKeys {
		out[k.sealedTo]++
	}
	return out
}
