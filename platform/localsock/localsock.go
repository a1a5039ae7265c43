// Package localsock is the agent's local transport: a Unix socket on Linux
// and a named pipe on Windows, and the operating-system identity of whoever
// is on the other end.
//
// The server side calls Listen, and attaches the caller's identity to each
// connection with ConnContext, so that HTTP handlers read it back with
// FromContext. The client side calls Dial.
//
// Linux: the socket lives in a directory of mode 0750 and has mode 0660, both
// owned by the agent's user and the configured group, so only members of that
// group (and root) can connect at all. The caller's uid, gid and pid come from
// SO_PEERCRED, which the kernel records at connect time; its supplementary
// groups and executable come from /proc, guarded against pid reuse with a
// pidfd (SO_PEERPIDFD) or, on older kernels, by comparing the process start
// time before and after reading.
//
// Windows: a named pipe under \\.\pipe\ProtectedPrefix\Administrators\ with
// an explicit security descriptor. The caller's identity comes from its
// token, obtained by impersonating the pipe client at the Identification
// level, which Dial requests.
package localsock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
)

// Identity is who is on the other end of a local connection.
//
// Its zero value is nobody: an Identity grants nothing unless Verified is
// set, which PeerOf does when the identity comes from the operating
// system's own account of the peer (SO_PEERCRED, the pipe client's token).
// Without that, UID 0 would read as root and a caller whose identity was
// never filled in would be trusted.
type Identity struct {
	// Verified says the identity was read from the operating system by
	// PeerOf. An unverified Identity is not privileged and matches no
	// policy rule.
	Verified bool `json:"verified"`
	// UID and GID are the caller's effective user and group (Linux).
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	// Groups are the caller's supplementary group IDs (Linux).
	Groups []uint32 `json:"groups,omitempty"`
	// Username is the caller's account name: "alice" on Linux,
	// "DOMAIN\alice" on Windows. Empty when it cannot be looked up.
	Username string `json:"username,omitempty"`
	// PID is the caller's process ID.
	PID int `json:"pid"`
	// Exe is the caller's executable path, or "" if it could not be read
	// (for example, a non-root agent looking at another user's process).
	Exe string `json:"exe,omitempty"`
	// SID and GroupSIDs are the caller's user SID and its enabled group SIDs
	// (Windows).
	SID       string   `json:"sid,omitempty"`
	GroupSIDs []string `json:"group_sids,omitempty"`
	// PIDGuard says how PID reuse was ruled out while reading Exe and
	// Groups: "pidfd", "starttime", "handle" (Windows), or "" if the
	// process details could not be read.
	PIDGuard string `json:"pid_guard,omitempty"`
}

// Key is a stable identifier of the caller's account, for per-caller limits:
// "uid:1000" on Linux, "sid:S-1-5-..." on Windows.
func (id *Identity) Key() string {
	if id.SID != "" {
		return "sid:" + id.SID
	}
	return "uid:" + strconv.FormatUint(uint64(id.UID), 10)
}

// String describes the caller for logs.
func (id *Identity) String() string {
	if id == nil {
		return "<unknown caller>"
	}
	who := id.Key()
	if id.Username != "" {
		who += "(" + id.Username + ")"
	}
	return fmt.Sprintf("%s pid=%d exe=%q", who, id.PID, id.Exe)
}

// Well-known Windows SIDs of privileged accounts.
const (
	SIDLocalSystem    = "S-1-5-18"
	SIDAdministrators = "S-1-5-32-544"
)

// Privileged reports whether the caller administers the machine: on Linux
// root or the agent's own user; on Windows (where the caller has a SID)
// SYSTEM or a member of Administrators. A nil or unverified Identity (the
// zero value among them) is not privileged.
func (id *Identity) Privileged() bool {
	if id == nil || !id.Verified {
		return false
	}
	if id.SID != "" {
		return id.SID == SIDLocalSystem || slices.Contains(id.GroupSIDs, SIDAdministrators)
	}
	return id.UID == 0 || int(id.UID) == os.Getuid()
}

// InGroup reports whether gid is the caller's primary or a supplementary
// group.
func (id *Identity) InGroup(gid uint32) bool {
	if id.GID == gid {
		return true
	}
	for _, g := range id.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// ListenOptions tune Listen.
type ListenOptions struct {
	// Group is the group allowed to connect (Linux): it owns the socket
	// directory and the socket. Empty means "credagent". The group must
	// exist unless Dev is set.
	Group string
	// Allow lists extra SIDs or account names allowed on the pipe (Windows),
	// besides SYSTEM and Administrators.
	Allow []string
	// Reserved are directories the socket must not live in (Linux): the
	// agent's state, inbox and key directories. The socket's directory is
	// created, chowned and chmodded, so it must be one of the socket's own.
	Reserved []string
	// Dev is dev mode: only the user who starts the agent may connect. On
	// Linux the socket is 0600 and Group is ignored; on Windows the pipe
	// grants only the current user, and may live outside the protected
	// prefix.
	Dev bool
}

// DefaultGroup is the socket group when ListenOptions.Group is empty.
const DefaultGroup = "credagent"

var (
	// ErrInUse means another live process is serving on the path.
	ErrInUse = errors.New("localsock: socket in use by another process")
	// ErrNoGroup means the configured socket group does not exist.
	ErrNoGroup = errors.New("localsock: socket group does not exist")
	// ErrNotSocket means the path exists and is not a socket, so it was left
	// alone.
	ErrNotSocket = errors.New("localsock: path exists and is not a socket")
	// ErrUnsupported means the connection is not one PeerOf understands.
	ErrUnsupported = errors.New("localsock: connection type not supported")
)

// CheckSocketDir reports whether dir may hold the socket (Linux): not a
// directory shared with other programs (/run, /var/run, /tmp, ...) and
// none of reserved (the agent's own private directories). Listen checks the
// same; config validation calls it so that load, reload and doctor refuse
// such a path before the agent starts. On Windows it returns nil.
func CheckSocketDir(dir string, reserved []string) error {
	return checkSocketDir(dir, reserved)
}

// FlushNames forgets the account names cached for uids (Linux), so that the
// next caller of each uid is named afresh; the agent calls it at every
// reload. Names are also looked up again after a minute. On Windows the
// name comes from the caller's SID each time, and there is nothing to
// forget.
func FlushNames() { flushNames() }

// Listen creates the listener at path (a socket path or a pipe name). A stale
// Unix socket left by a dead agent is removed; a live one is ErrInUse.
func Listen(path string, opts ListenOptions) (net.Listener, error) {
	ln, err := listen(path, opts)
	if err != nil {
		return nil, err
	}
	return wrapListener(ln), nil
}

// Dial connects to the agent at path. On Windows it dials at the
// Identification impersonation level, so the server can read the caller's
// token but not act as the caller.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	return dial(ctx, path)
}

// PeerOf returns the identity of the process on the other end of conn, which
// must come from a listener made by Listen (or, in tests, from a Unix socket).
//
// On Windows the pipe client must have written to the pipe first: Windows
// refuses to impersonate a client before data has been read from the pipe.
// ConnContext handles this by identifying lazily, at the first FromContext.
func PeerOf(conn net.Conn) (*Identity, error) {
	return peerOf(conn)
}

// PeerCred returns the part of the caller's identity that the kernel gives
// at once, before anything has been read from conn: on Linux its uid, gid
// and pid (SO_PEERCRED), enough for Key and Privileged, without the /proc
// reads of PeerOf. It is for decisions at accept time, such as per-caller
// connection limits. On Windows it returns ErrUnsupported: the pipe client
// is identified at its first request instead.
func PeerCred(conn net.Conn) (*Identity, error) {
	return peerCred(conn)
}

type ctxKey struct{}

// peer identifies a connection once, on first use.
type peer struct {
	conn net.Conn
	once sync.Once
	id   *Identity
	err  error
}

func (p *peer) get() (*Identity, error) {
	p.once.Do(func() {
		p.id, p.err = PeerOf(p.conn)
		p.conn = nil
	})
	return p.id, p.err
}

// ConnContext is for http.Server.ConnContext: it attaches the connection's
// peer to ctx, so that every request on that connection reads the same
// identity with FromContext. The identity is established once per
// connection, at the first FromContext (after the first request has been
// read, which the Windows pipe requires).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, ctxKey{}, &peer{conn: c})
}

// WithIdentity returns ctx carrying id, as ConnContext would.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	p := &peer{id: id}
	p.once.Do(func() {})
	return context.WithValue(ctx, ctxKey{}, p)
}

// ErrNoIdentity means the context carries no peer (the server was not set up
// with ConnContext).
var ErrNoIdentity = errors.New("localsock: no peer identity in context")

// FromContext returns the identity attached by ConnContext or WithIdentity.
func FromContext(ctx context.Context) (*Identity, error) {
	p, ok := ctx.Value(ctxKey{}).(*peer)
	if !ok {
		return nil, ErrNoIdentity
	}
	return p.get()
}
