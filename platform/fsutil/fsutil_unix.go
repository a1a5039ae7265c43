//go:build !windows

package fsutil

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func writePrivateFile(path string, data []byte, replace bool) (err error) {
	dir, tmp, err := tempPath(path)
	if err != nil {
		return err
	}
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: tmp, Err: err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// The umask can only take bits away; set the mode explicitly anyway so
	// that the result never depends on the caller's umask.
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if replace {
		// rename(2) replaces a symlink at path rather than following it.
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	} else {
		// link(2) fails with EEXIST if anything is at path, and does not
		// follow a symlink there.
		if err := os.Link(tmp, path); err != nil {
			os.Remove(tmp)
			return err
		}
		if err := os.Remove(tmp); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func openPrivateFile(path string) (*os.File, error) {
	f, err := openChecked(path, unix.O_RDONLY, 0, "replace the link with the real file, or remove it and enrol again")
	if err != nil {
		return nil, err
	}
	// O_NONBLOCK only guarded against a FIFO; reads of a regular file never
	// block, but clear it so the descriptor behaves normally.
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openChecked opens path with flags (and mode, for O_CREAT) without
// following a symlink there, and checks the opened file with checkFile;
// linkFix is what to do about a symlink. O_NONBLOCK keeps a FIFO planted at
// path from blocking the open before checkFile refuses it; it stays set.
func openChecked(path string, flags int, mode uint32, linkFix string) (*os.File, error) {
	fd, err := unix.Open(path, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, mode)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, &InsecureError{Path: path, Problem: "it is a symbolic link", Fix: linkFix}
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if err := checkFile(path, &st); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkFile checks the stat of an opened file.
func checkFile(path string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return &InsecureError{Path: path, Problem: "it is not a regular file",
			Fix: "remove it and enrol again"}
	}
	if euid := uint32(os.Geteuid()); st.Uid != euid {
		return &InsecureError{Path: path, Problem: fmt.Sprintf("it is owned by uid %d, not by uid %d that the agent runs as", st.Uid, euid),
			Fix: fmt.Sprintf("chown %d %s, after checking who wrote it", euid, path)}
	}
	if perm := st.Mode & 0o7777; perm&0o077 != 0 {
		return &InsecureError{Path: path, Problem: fmt.Sprintf("mode %04o lets group or others in", perm),
			Fix: "chmod 600 " + path + " (and consider the key exposed: rotate it)"}
	}
	if st.Nlink != 1 {
		return &InsecureError{Path: path, Problem: fmt.Sprintf("it has %d hard links; a private file has one", st.Nlink),
			Fix: "remove the other links (find / -samefile " + path + ")"}
	}
	return nil
}

func mkdirPrivate(path string) error {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return err
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return &InsecureError{Path: path, Problem: "it is a symbolic link or not a directory",
				Fix: "replace it with a real directory owned by the agent's account, mode 700"}
		}
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if euid := uint32(os.Geteuid()); st.Uid != euid {
		return &InsecureError{Path: path, Problem: fmt.Sprintf("the directory is owned by uid %d, not %d", st.Uid, euid),
			Fix: fmt.Sprintf("chown %d %s", euid, path)}
	}
	if perm := st.Mode & 0o7777; perm&0o077 != 0 {
		return &InsecureError{Path: path, Problem: fmt.Sprintf("the directory's mode %04o lets group or others in", perm),
			Fix: "chmod 700 " + path}
	}
	return nil
}
