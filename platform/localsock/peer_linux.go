package localsock

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// rawConn finds the socket under conn, looking through wrappers that expose
// NetConn (as crypto/tls does).
func rawConn(conn net.Conn) (syscall.RawConn, error) {
	for i := 0; i < 4 && conn != nil; i++ {
		if sc, ok := conn.(syscall.Conn); ok {
			return sc.SyscallConn()
		}
		w, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		conn = w.NetConn()
	}
	return nil, ErrUnsupported
}

func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}

func peerOf(conn net.Conn) (*Identity, error) {
	raw, err := rawConn(conn)
	if err != nil {
		return nil, fmt.Errorf("localsock.PeerOf: %w", err)
	}
	var (
		cred     *unix.Ucred
		credErr  error
		pidfd    = -1
		pidfdErr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if credErr == nil {
			// The kernel creates the pidfd with O_CLOEXEC.
			pidfd, pidfdErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
		}
	}); err != nil {
		return nil, fmt.Errorf("localsock.PeerOf: %w", err)
	}
	if credErr != nil {
		return nil, fmt.Errorf("localsock.PeerOf: SO_PEERCRED: %w", credErr)
	}
	id := &Identity{Verified: true, UID: cred.Uid, GID: cred.Gid, PID: int(cred.Pid), Username: usernameOf(cred.Uid)}
	if id.PID <= 0 {
		return id, nil
	}

	switch {
	case pidfdErr == nil:
		// The pidfd pins the process that connected. If that process is
		// still alive after /proc has been read, its pid cannot have been
		// recycled in between: a pid is reused only after its process has
		// been reaped.
		defer unix.Close(pidfd)
		p, err := readProc(id.PID, id.UID)
		if err == nil && pidfdAlive(pidfd) {
			p.apply(id, "pidfd")
		}
	case errors.Is(pidfdErr, unix.ESRCH):
		// The process that connected is gone (the socket is held by a
		// child or was passed on): its pid may already belong to another
		// process, so report no process details.
	default:
		// Kernels before 6.5 have no SO_PEERPIDFD: bracket the reads with
		// the process start time instead.
		before, err := startTime(id.PID)
		if err != nil {
			break
		}
		p, err := readProc(id.PID, id.UID)
		if err != nil {
			break
		}
		if after, err := startTime(id.PID); err == nil && after == before {
			p.apply(id, "starttime")
		}
	}
	return id, nil
}

type procInfo struct {
	exe    string
	groups []uint32
}

func (p *procInfo) apply(id *Identity, guard string) {
	id.Exe = p.exe
	id.Groups = p.groups
	id.PIDGuard = guard
}

// readProc reads the supplementary groups and executable of pid. It fails if
// the process's effective uid is not euid, which catches a pid that has been
// recycled by another user's process.
func readProc(pid int, euid uint32) (*procInfo, error) {
	base := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(base + "/status")
	if err != nil {
		return nil, err
	}
	p := &procInfo{}
	uidOK := false
	for line := range bytes.Lines(status) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch string(k) {
		case "Uid":
			f := bytes.Fields(v)
			uidOK = len(f) >= 2 && string(f[1]) == strconv.FormatUint(uint64(euid), 10)
		case "Groups":
			for _, g := range bytes.Fields(v) {
				n, err := strconv.ParseUint(string(g), 10, 32)
				if err == nil {
					p.groups = append(p.groups, uint32(n))
				}
			}
		}
	}
	if !uidOK {
		return nil, errors.New("process uid changed")
	}
	// A process's executable can be unreadable (another user's process when
	// the agent is not root): leave Exe empty, so rules on executables fail
	// closed.
	if exe, err := os.Readlink(base + "/exe"); err == nil && sameExe(base+"/exe", exe) {
		p.exe = exe
	}
	return p, nil
}

// sameExe reports whether path, the name /proc/<pid>/exe gives, is in the
// agent's own view of the file system the very file the process runs
// (procExe, which stat follows to the mapped inode). The name is the one
// seen from the process's mount namespace and root: a process in another
// mount namespace (an unprivileged user namespace is enough) or a chroot
// can bind its own binary over /opt/rpa/bin/runner and be named after it.
// A binary replaced or deleted since it started fails too. Either way the
// name is not trusted and Exe stays empty, so executable rules fail closed.
func sameExe(procExe, path string) bool {
	if !filepath.IsAbs(path) {
		return false
	}
	mapped, err := os.Stat(procExe)
	if err != nil {
		return false
	}
	named, err := os.Stat(path)
	if err != nil {
		return false
	}
	return os.SameFile(mapped, named)
}

// startTime returns field 22 of /proc/<pid>/stat: the process start time in
// clock ticks after boot.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may contain spaces
	// and parentheses; fields are counted after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := bytes.Fields(b[i+1:])
	const idx = 22 - 3 // f[0] is field 3 (state)
	if len(f) <= idx {
		return 0, errors.New("malformed stat")
	}
	return strconv.ParseUint(string(f[idx]), 10, 64)
}

// nameTTL bounds how long a uid's account name is reused without looking
// it up again: an account deleted and its uid given to a new account must
// not be served, or audited, under the old name for long. FlushNames (at
// every reload) forgets them all at once.
//
// Names come from os/user. The agent is built with CGO_ENABLED=0, so that
// reads /etc/passwd only: accounts that exist only in a directory (LDAP,
// SSSD, winbind) have no name here, never match a rule's `users`, and are
// audited by uid. Rules for them must use `uids`/`gids` (see the README).
const nameTTL = time.Minute

type nameEntry struct {
	name string
	at   time.Time
}

var (
	usernames sync.Map // uint32 -> nameEntry
	namesNow  = time.Now
)

func usernameOf(uid uint32) string {
	now := namesNow()
	if v, ok := usernames.Load(uid); ok {
		if e := v.(nameEntry); now.Sub(e.at) < nameTTL && now.Sub(e.at) >= 0 {
			return e.name
		}
	}
	name := ""
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		name = u.Username
	}
	usernames.Store(uid, nameEntry{name: name, at: now})
	return name
}

func flushNames() { usernames.Clear() }

func peerCred(conn net.Conn) (*Identity, error) {
	raw, err := rawConn(conn)
	if err != nil {
		return nil, fmt.Errorf("localsock.PeerCred: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, fmt.Errorf("localsock.PeerCred: %w", err)
	}
	if cerr != nil {
		return nil, fmt.Errorf("localsock.PeerCred: SO_PEERCRED: %w", cerr)
	}
	return &Identity{Verified: true, UID: cred.Uid, GID: cred.Gid, PID: int(cred.Pid)}, nil
}

// pidfdAlive reports whether the process pidfd refers to has not exited: a
// pidfd becomes readable when its process exits. Polling needs no
// privilege, where pidfd_send_signal with signal 0 needs the right to
// signal the process: CAP_KILL, for root and another user's process, which
// the agent's unit does not keep (its capability bounding set is empty).
func pidfdAlive(pidfd int) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n == 0
	}
}
