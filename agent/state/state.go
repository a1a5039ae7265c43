// Package state holds what the agent currently knows: the applications with
// their certificates, the CCP stores, the credentials, the group keys, and the
// last rejected deliveries.
//
// A Snapshot is immutable once published. State swaps whole snapshots
// atomically, so a resolution that has loaded a snapshot finishes with it
// while new resolutions see the next one.
package state

import (
	"crypto/tls"
	"sync/atomic"
	"time"
)

// Application is an application identity that CCP knows by AppID, with the
// certificate and private key it authenticates with. The private key exists
// only in memory; on disk there is only the sealed delivery it came from.
type Application struct {
	AppID       string
	Owner       string // "" for none; see Key
	Seq         uint64
	DeliveryID  string
	Certificate *tls.Certificate // Leaf is set; PrivateKey is a crypto.Signer
	NotBefore   time.Time
	NotAfter    time.Time
	Serial      string // lowercase hex, as CCP writes it
	Fingerprint string // SHA-256 of the leaf certificate, hex
	SealedTo    string // key ID the delivery was sealed to (machine or group)
	AppliedAt   time.Time
}

// Store is a CCP endpoint configuration, as delivered by the portal.
type Store struct {
	Name        string
	Owner       string // "" for none; see Key
	DisplayName string
	Seq         uint64
	DeliveryID  string
	Servers     []string // base URLs, https://host[:port]; tried in order, last good first
	Path        string   // web-service path, default /AIMWebService
	AppID       string
	Safe        string
	Folder      string
	CABundle    []byte   // PEM; added to the system roots
	Pins        []string // base64 SHA-256 of the server's SubjectPublicKeyInfo
	Proxy       string   // https:// or http:// proxy URL; empty: environment
	NoProxy     []string // hosts, suffixes, IPs or CIDR blocks that bypass Proxy
	// TLSMaxVersion is "1.2", "1.3" or "" (the agent's ccp.tls_max_version).
	TLSMaxVersion string
	// HealthObject is an account used by doctor to check the store end to
	// end without spamming CCP's error log.
	HealthObject string
	// CacheTTL > 0 opts this store into caching resolved accounts.
	CacheTTL time.Duration
	// CacheMaxStale bounds how old a cached value may be served while CCP is
	// unreachable. Zero: never served stale.
	CacheMaxStale time.Duration
	// SealedTo is the key ID a sealed store delivery was sealed to; empty
	// for one in clear.
	SealedTo  string
	AppliedAt time.Time
}

// Credential names an account that flows ask for.
type Credential struct {
	Name       string
	Owner      string // "" for none; see Key
	Store      string
	Seq        uint64
	DeliveryID string
	Safe       string // overrides the store's safe when set
	Folder     string // overrides the store's folder when set
	Object     string
	// Query and QueryFormat, when Query is set, replace Safe/Folder/Object.
	Query       string
	QueryFormat string
	// UsernameVar is the flow variable the username is bound to.
	UsernameVar string
	// SealedTo is the key ID a sealed credential delivery was sealed to;
	// empty for one in clear.
	SealedTo  string
	AppliedAt time.Time
}

// GroupKey records a machine-group key this machine holds. The private key
// itself lives in the key store's memory only, never here.
type GroupKey struct {
	ID         string // key ID of the group public key
	Group      string
	Seq        uint64
	DeliveryID string
	AppliedAt  time.Time
}

// Rejection is a delivery that was refused, kept for status.
type Rejection struct {
	File       string
	DeliveryID string
	Kind       string
	Reason     string
	At         time.Time
}

// Snapshot is one consistent view. Do not modify a published snapshot; build
// a new one (Clone) and Publish it.
type Snapshot struct {
	Generation uint64
	// Applications, stores and credentials are keyed by Key(owner, name):
	// the objects of each owner are a namespace of their own.
	Applications map[string]*Application // by Key(Owner, AppID)
	Stores       map[string]*Store       // by Key(Owner, Name)
	Credentials  map[string]*Credential  // by Key(Owner, Name)
	GroupKeys    map[string]*GroupKey    // by key ID
	// Rejected holds the most recent rejections, newest last, bounded.
	Rejected []Rejection
	// NeedsReenroll is set when the machine key cannot be used.
	NeedsReenroll string
	// KeyProblem is set while the key store fails to open deliveries (a TPM
	// that stopped answering, or was cleared). What is already applied
	// keeps working; new sealed deliveries wait in the inbox.
	KeyProblem string
	// InboxProblems are what the inbox cannot do now and an operator should
	// know (a record it cannot read, deliveries waiting for a group key or
	// that it cannot read, an inbox directory replaced), sorted.
	InboxProblems []string
}

// Key is the map key of an owner's object: the name alone for an object
// without owner, else owner, NUL, name. Names and owners are printable
// ASCII (delivery.SPEC), so no two (owner, name) pairs share a key.
func Key(owner, name string) string {
	if owner == "" {
		return name
	}
	return owner + "\x00" + name
}

// MaxRejections bounds Snapshot.Rejected.
const MaxRejections = 32

// Empty returns a snapshot with no content.
func Empty() *Snapshot {
	return &Snapshot{
		Applications: map[string]*Application{},
		Stores:       map[string]*Store{},
		Credentials:  map[string]*Credential{},
		GroupKeys:    map[string]*GroupKey{},
	}
}

// Clone returns a shallow copy whose maps and slices may be modified. The
// values they point to are shared and must be replaced, not mutated.
func (s *Snapshot) Clone() *Snapshot {
	n := &Snapshot{
		Generation:    s.Generation + 1,
		Applications:  make(map[string]*Application, len(s.Applications)),
		Stores:        make(map[string]*Store, len(s.Stores)),
		Credentials:   make(map[string]*Credential, len(s.Credentials)),
		GroupKeys:     make(map[string]*GroupKey, len(s.GroupKeys)),
		Rejected:      append([]Rejection(nil), s.Rejected...),
		NeedsReenroll: s.NeedsReenroll,
		KeyProblem:    s.KeyProblem,
		InboxProblems: s.InboxProblems, // replaced, never modified in place
	}
	for k, v := range s.Applications {
		n.Applications[k] = v
	}
	for k, v := range s.Stores {
		n.Stores[k] = v
	}
	for k, v := range s.Credentials {
		n.Credentials[k] = v
	}
	for k, v := range s.GroupKeys {
		n.GroupKeys[k] = v
	}
	return n
}

// AddRejection appends r, dropping the oldest past MaxRejections.
func (s *Snapshot) AddRejection(r Rejection) {
	s.Rejected = append(s.Rejected, r)
	if len(s.Rejected) > MaxRejections {
		s.Rejected = append([]Rejection(nil), s.Rejected[len(s.Rejected)-MaxRejections:]...)
	}
}

// State publishes snapshots. The zero value holds an empty snapshot.
type State struct {
	p atomic.Pointer[Snapshot]
}

// Load returns the current snapshot. It never returns nil.
func (st *State) Load() *Snapshot {
	if s := st.p.Load(); s != nil {
		return s
	}
	empty := Empty()
	st.p.CompareAndSwap(nil, empty)
	return st.p.Load()
}

// Publish makes s the current snapshot.
func (st *State) Publish(s *Snapshot) { st.p.Store(s) }

// Update applies fn to a clone of the current snapshot and publishes the
// result; readers holding the old snapshot keep it unchanged. Updates must
// be serialised by the caller (the inbox is the only writer).
func (st *State) Update(fn func(*Snapshot)) {
	n := st.Load().Clone()
	fn(n)
	st.Publish(n)
}
