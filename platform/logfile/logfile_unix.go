//go:build !windows

package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openNoFollow opens path for appending, creating it with Mode. It fails on
// a symlink (O_NOFOLLOW) and does not hang on a FIFO (O_NONBLOCK, which
// does nothing to a regular file).
func openNoFollow(path string, extra int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|extra, Mode)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link; logs are never written through one: remove it", path)
	}
	return f, err
}

// checkOpened refuses a file the agent did not make its own: another
// owner's, or one with a second hard link (a name for a file elsewhere).
func checkOpened(path string, _ *os.File, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not the agent's uid %d; remove it", path, st.Uid, os.Geteuid())
	}
	if st.Nlink != 1 {
		return fmt.Errorf("%s has %d hard links; a log file has one: remove it", path, st.Nlink)
	}
	return nil
}

// checkDir refuses a log directory that someone other than root and the
// agent's user may write to: they could plant a symlink or a hard link
// under a name the agent writes, or one it rotates to.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("log directory %s is not a directory", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("log directory %s is owned by uid %d; give the logs a directory of their own, owned by the agent's user (such as /var/log/credagent)", dir, st.Uid)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("log directory %s (mode %04o) is writable by others; give the logs a directory of their own that only the agent writes to (such as /var/log/credagent, mode 0700)", dir, perm)
	}
	return nil
}
