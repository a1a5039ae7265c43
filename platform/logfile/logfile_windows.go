package logfile

import (
	"fmt"
	"io/fs"
	"os"
)

// openNoFollow opens path for appending, creating it with Mode. Windows has
// no O_NOFOLLOW: the path is refused if it is a symbolic link or junction
// (a reparse point, which Lstat reports as a symlink or an irregular file),
// and the file opened must be the one that was checked (checkOpened).
func openNoFollow(path string, extra int) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (a link or reparse point?)", path)
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|extra, Mode)
}

// checkOpened checks, after the open, that the path still names the very
// file opened and is not a reparse point, so a link swapped in between is
// caught.
func checkOpened(path string, _ *os.File, opened fs.FileInfo) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || !os.SameFile(fi, opened) {
		return fmt.Errorf("%s changed while it was opened, or is a link", path)
	}
	return nil
}

// checkDir refuses a log directory that is a reparse point. Its ACL is not
// checked here: the default log directory is under %ProgramData%\credagent,
// whose ACL the installer sets to SYSTEM and Administrators only.
func checkDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("log directory %s is not a directory (a link or junction?)", dir)
	}
	return nil
}
