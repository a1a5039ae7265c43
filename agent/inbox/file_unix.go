//go:build !windows

package inbox

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"

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

func openNoFollow(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, ErrSymlink
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}
