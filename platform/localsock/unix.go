//go:build !windows

package localsock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Socket and directory modes. The directory mode is what actually keeps
// outsiders away: connecting to a Unix socket needs search permission on its
// directory and write permission on the socket.
const (
	dirMode     fs.FileMode = 0o750
	sockMode    fs.FileMode = 0o660
	devDirMode  fs.FileMode = 0o700
	devSockMode fs.FileMode = 0o600
)

func listen(path string, opts ListenOptions) (net.Listener, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("localsock.Listen: %q is not an absolute path", path)
	}
	euid := os.Geteuid()
	gid := -1
	if !opts.Dev {
		name := opts.Group
		if name == "" {
			name = DefaultGroup
		}
		g, err := user.LookupGroup(name)
		if err != nil {
			var unknown user.UnknownGroupError
			if errors.As(err, &unknown) {
				return nil, fmt.Errorf("localsock.Listen: %w: %q; create it (groupadd --system %s), add the flow runner's user to it, or set api.socket_group", ErrNoGroup, name, name)
			}
			return nil, fmt.Errorf("localsock.Listen: looking up group %q: %w", name, err)
		}
		n, err := strconv.Atoi(g.Gid)
		if err != nil {
			return nil, fmt.Errorf("localsock.Listen: group %q has non-numeric gid %q", name, g.Gid)
		}
		gid = n
	}
	dir := filepath.Dir(path)
	if err := ownDir(dir, opts.Reserved); err != nil {
		return nil, fmt.Errorf("localsock.Listen: %w", err)
	}
	if err := prepareDir(dir, euid, gid, opts.Dev); err != nil {
		return nil, fmt.Errorf("localsock.Listen: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, fmt.Errorf("localsock.Listen: %s: %w", path, err)
	}

	// Bind under a temporary name, set mode and owner, then rename into
	// place: the socket is never reachable at path with looser permissions
	// than intended, and no process-wide umask change is needed.
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, ".sock-"+hex.EncodeToString(rnd[:]))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("localsock.Listen: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("localsock.Listen: %w", err)
	}
	mode := sockMode
	if opts.Dev {
		mode = devSockMode
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(err)
	}
	if gid >= 0 {
		if err := os.Lchown(tmp, euid, gid); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	l := &unixListener{UnixListener: ln, path: path, dev: uint64(st.Dev), ino: uint64(st.Ino)}
	if opts.Dev {
		l.onlyUID = euid
	} else {
		l.onlyUID = -1
	}
	return l, nil
}

// sharedDirs are directories that hold others' files: the socket never
// lives directly in one, because its directory is chowned and chmodded.
var sharedDirs = []string{"/", "/run", "/var/run", "/tmp", "/var/tmp", "/dev/shm", "/var", "/var/lib", "/etc", "/home", "/root", "/srv", "/opt", "/usr", "/run/user"}

// ownDir refuses a socket directory that is shared (sharedDirs) or one of
// the agent's other directories (reserved), by name and by what it
// resolves to.
func ownDir(dir string, reserved []string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("socket directory %q is not an absolute path", dir)
	}
	same := func(a, b string) bool {
		if filepath.Clean(a) == filepath.Clean(b) {
			return true
		}
		ra, erra := filepath.EvalSymlinks(a)
		rb, errb := filepath.EvalSymlinks(b)
		return erra == nil && errb == nil && ra == rb
	}
	for _, d := range sharedDirs {
		if same(dir, d) {
			return fmt.Errorf("socket directory %s is shared with other programs; give the socket a directory of its own, such as /run/credagent/agent.sock", dir)
		}
	}
	for _, d := range reserved {
		if d != "" && same(dir, d) {
			return fmt.Errorf("socket directory %s is also the agent's directory %s, which must stay private; give the socket a directory of its own, such as /run/credagent/agent.sock", dir, d)
		}
	}
	return nil
}

// prepareDir creates the socket directory or checks an existing one, then
// sets its owner and mode. It refuses a directory that others could write to,
// so a shared directory such as /tmp is never chmodded, and (outside dev
// mode, where it is left as it is) an existing directory that holds anything
// but sockets: that is someone else's directory, or the agent's state.
func prepareDir(dir string, euid, gid int, dev bool) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		mode := dirMode
		if dev {
			mode = devDirMode
		}
		if err := os.MkdirAll(dir, mode); err != nil {
			return err
		}
		if err := os.Chmod(dir, mode); err != nil {
			return err
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket directory %s is not a directory", dir)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != euid {
		return fmt.Errorf("socket directory %s is owned by uid %d, not the agent's uid %d", dir, st.Uid, euid)
	}
	perm := fi.Mode().Perm()
	if perm&0o002 != 0 || fi.Mode()&fs.ModeSticky != 0 {
		return fmt.Errorf("socket directory %s is writable by everyone; give the socket a directory of its own", dir)
	}
	if dev {
		if perm&0o020 != 0 {
			return fmt.Errorf("socket directory %s is group-writable", dir)
		}
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Type() != fs.ModeSocket {
			return fmt.Errorf("socket directory %s holds %q, which is not a socket: it is not a directory of the socket's own, so its owner and mode are left alone; give the socket a directory of its own, such as /run/credagent/agent.sock", dir, e.Name())
		}
	}
	if err := os.Lchown(dir, euid, gid); err != nil {
		return err
	}
	return os.Chmod(dir, dirMode)
}

// removeStale removes path if it is a socket that nobody is serving. It
// leaves anything else alone.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return ErrNotSocket
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return ErrInUse
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("checking the existing socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale socket: %w", err)
	}
	return nil
}

type unixListener struct {
	*net.UnixListener
	path     string
	dev, ino uint64
	onlyUID  int // dev mode: the only uid (besides root) let through; -1: any
}

// Accept returns the next connection. In dev mode it drops connections from
// other users (the socket mode already keeps them out; this is a second wall).
func (l *unixListener) Accept() (net.Conn, error) {
	for {
		c, err := l.UnixListener.AcceptUnix()
		if err != nil {
			return nil, err
		}
		if l.onlyUID < 0 {
			return c, nil
		}
		uid, err := peerUID(c)
		if err == nil && (uid == uint32(l.onlyUID) || uid == 0) {
			return c, nil
		}
		c.Close()
	}
}

// Close stops listening and removes the socket file, if it is still ours.
func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && uint64(st.Dev) == l.dev && uint64(st.Ino) == l.ino {
			os.Remove(l.path)
		}
	}
	return err
}

func dial(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("localsock.Dial: %w", err)
	}
	return c, nil
}

func checkSocketDir(dir string, reserved []string) error { return ownDir(dir, reserved) }

// wrapListener: Unix sockets identify the peer from the socket itself
// (SO_PEERCRED, a pidfd), so nothing is recorded at accept.
func wrapListener(ln net.Listener) net.Listener { return ln }
