//go:build !windows

package inbox

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ownerSet holds the uids that may own a delivery file.
type ownerSet map[uint32]bool

// parseOwners takes uids or user names; the agent's own uid is always in.
func parseOwners(list []string) (ownerSet, error) {
	s := ownerSet{uint32(os.Geteuid()): true}
	for _, o := range list {
		if n, err := strconv.ParseUint(o, 10, 32); err == nil {
			s[uint32(n)] = true
			continue
		}
		u, err := user.Lookup(o)
		if err != nil {
			return nil, fmt.Errorf("inbox: allowed owner %q: %w", o, err)
		}
		n, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("inbox: allowed owner %q: uid %q", o, u.Uid)
		}
		s[uint32(n)] = true
	}
	return s, nil
}

func (s ownerSet) check(_ *os.File, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%w: no owner information", ErrForeignOwner)
	}
	if !s[st.Uid] {
		return fmt.Errorf("%w: uid %d", ErrForeignOwner, st.Uid)
	}
	return nil
}

// checkOwnerUnopened is the owner check for an entry the agent cannot open:
// from its lstat, which needs no access to the file. It returns nil when
// the owner may deliver, or the entry cannot be looked at.
func (d *inboxDir) checkOwnerUnopened(name string, owners ownerSet) error {
	if checkEntryName(name) != nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || owners[st.Uid] {
		return nil
	}
	return fmt.Errorf("%w: uid %d (and the agent may not read it)", ErrForeignOwner, st.Uid)
}

// inboxDir is the inbox, opened once. Every operation on its entries is
// relative to the descriptor (openat, renameat, unlinkat), so swapping the
// inbox's path for a symlink or another directory afterwards changes
// nothing the agent reads, moves or removes.
type inboxDir struct {
	path string
	fd   int
	st   unix.Stat_t
}

// openInboxDir opens path component by component from "/", each with
// O_NOFOLLOW, so that no symlink anywhere in the path is followed, and
// checks each directory: a parent must be owned by root, the agent's user or
// an allowed owner, and must not be writable by anyone else (group other
// than root, or others) unless it is sticky, so that nobody else can put
// another directory in the inbox's place. The inbox itself must be owned
// by one of those and not writable by others unless sticky.
func openInboxDir(path string, owners ownerSet) (*inboxDir, error) {
	clean := filepath.Clean(path)
	if !filepath.IsAbs(clean) {
		return nil, fmt.Errorf("inbox directory %s: not an absolute path", printable(path))
	}
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/", Err: err}
	}
	parts := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	if clean == "/" {
		parts = nil
	}
	at := "/"
	for i := 0; ; i++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, &os.PathError{Op: "fstat", Path: at, Err: err}
		}
		if err := checkInboxChain(at, &st, owners, i == len(parts)); err != nil {
			unix.Close(fd)
			return nil, err
		}
		if i == len(parts) {
			return &inboxDir{path: clean, fd: fd, st: st}, nil
		}
		at = filepath.Join(at, parts[i])
		next, err := unix.Openat(fd, parts[i], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				return nil, fmt.Errorf("inbox directory %s: %s is a symbolic link or not a directory; the inbox and every directory above it must be real directories", printable(clean), printable(at))
			}
			return nil, &os.PathError{Op: "open", Path: at, Err: err}
		}
		fd = next
	}
}

// checkInboxChain checks one directory of the inbox's path.
func checkInboxChain(path string, st *unix.Stat_t, owners ownerSet, inbox bool) error {
	what := "a directory above the inbox"
	if inbox {
		what = "the inbox"
	}
	if st.Uid != 0 && !owners[st.Uid] {
		return fmt.Errorf("inbox directory: %s (%s) is owned by uid %d, which is neither root, the agent's user nor an allowed owner (inbox.allowed_owners)", printable(path), what, st.Uid)
	}
	sticky := st.Mode&unix.S_ISVTX != 0
	if st.Mode&0o002 != 0 && !sticky {
		return fmt.Errorf("inbox directory: %s (%s) is writable by every user and not sticky (fix: chmod o-w %s)", printable(path), what, printable(path))
	}
	if !inbox && st.Mode&0o020 != 0 && st.Gid != 0 && !sticky {
		return fmt.Errorf("inbox directory: %s (%s) is writable by group %d, whose members could put another directory in the inbox's place (fix: chmod g-w %s)", printable(path), what, st.Gid, printable(path))
	}
	return nil
}

// Close releases the directory.
func (d *inboxDir) Close() error { return unix.Close(d.fd) }

// watchPath is what fsnotify watches: on Linux the directory behind the
// descriptor itself, not whatever its path names now.
func (d *inboxDir) watchPath() string {
	if runtime.GOOS == "linux" {
		return fmt.Sprintf("/proc/self/fd/%d", d.fd)
	}
	return d.path
}

// stillAt reports an error if the inbox's path no longer names the
// directory the agent holds (it was renamed or replaced).
func (d *inboxDir) stillAt() error {
	var st unix.Stat_t
	if err := unix.Lstat(d.path, &st); err != nil {
		return fmt.Errorf("inbox directory %s: %w", printable(d.path), err)
	}
	if st.Dev != d.st.Dev || st.Ino != d.st.Ino {
		return fmt.Errorf("inbox directory %s was replaced after the agent opened it; the agent keeps using the directory it opened (restart the agent to take the new one, after checking who replaced it)", printable(d.path))
	}
	return nil
}

// names lists the entries of the inbox, through the descriptor.
func (d *inboxDir) names() ([]string, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	return f.Readdirnames(-1)
}

// modTime is when the entry name was last written, zero if unknown.
func (d *inboxDir) modTime(name string) time.Time {
	var st unix.Stat_t
	if unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return time.Time{}
	}
	return time.Unix(st.Mtim.Unix())
}

// openEntry opens the inbox entry name for reading without following a
// symlink, and checks on the opened file that it is the regular file that
// was looked at.
func (d *inboxDir) openEntry(name string) (*os.File, error) {
	if err := checkEntryName(name); err != nil {
		return nil, err
	}
	var lst unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &lst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: printable(name), Err: err}
	}
	switch lst.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return nil, ErrSymlink
	case unix.S_IFREG:
	default:
		return nil, fmt.Errorf("%w: mode %s", ErrNotRegular, os.FileMode(lst.Mode&0o777)|typeBits(lst.Mode))
	}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, ErrSymlink
		}
		return nil, &os.PathError{Op: "open", Path: printable(name), Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: printable(name), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Dev != lst.Dev || st.Ino != lst.Ino {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: replaced while being opened", ErrNotRegular)
	}
	return os.NewFile(uintptr(fd), name), nil
}

func typeBits(m uint32) os.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFIFO:
		return os.ModeNamedPipe
	case unix.S_IFSOCK:
		return os.ModeSocket
	case unix.S_IFCHR:
		return os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		return os.ModeDevice
	case unix.S_IFDIR:
		return os.ModeDir
	}
	return os.ModeIrregular
}

// same reports whether name in the inbox is still the file f (nil f: any).
func (d *inboxDir) same(name string, f *os.File) bool {
	if f == nil {
		return true
	}
	var a, b unix.Stat_t
	if unix.Fstatat(d.fd, name, &a, unix.AT_SYMLINK_NOFOLLOW) != nil || unix.Fstat(int(f.Fd()), &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// remove unlinks name from the inbox, if it is still the file f.
func (d *inboxDir) remove(name string, f *os.File) error {
	if err := checkEntryName(name); err != nil {
		return err
	}
	if !d.same(name, f) {
		return fmt.Errorf("inbox: %s: %w", printable(name), errReplaced)
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &os.PathError{Op: "unlink", Path: printable(name), Err: err}
	}
	return nil
}

// moveOut renames name from the inbox to dest (an absolute path in the
// state directory), if it is still the file f. A rename across file
// systems fails with an error matching errCrossDevice.
func (d *inboxDir) moveOut(name string, f *os.File, dest string) error {
	if err := checkEntryName(name); err != nil {
		return err
	}
	if !d.same(name, f) {
		return fmt.Errorf("inbox: %s: %w", printable(name), errReplaced)
	}
	if err := unix.Renameat(d.fd, name, unix.AT_FDCWD, dest); err != nil {
		if errors.Is(err, unix.EXDEV) {
			return fmt.Errorf("%w: %v", errCrossDevice, err)
		}
		return &os.PathError{Op: "rename", Path: printable(name), Err: err}
	}
	return nil
}

// checkEntryName refuses a name that is not a single entry of the inbox.
func checkEntryName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') || strings.ContainsRune(name, 0) {
		return fmt.Errorf("inbox: %s is not a file name in the inbox", printable(name))
	}
	return nil
}
