// Package fsutil writes and reads private files: files that only the agent's
// own account (root on Linux; SYSTEM and Administrators on Windows) may read
// or write.
//
// Writes are atomic: the data goes to a new temporary file in the same
// directory, is flushed to disk, and is renamed over the target, and the
// directory is flushed too, so a reader sees either the old file or the new
// one, never a torn one, even across a power cut.
//
// Reads check the file that was actually opened (fstat on the descriptor, not
// a second look at the path), so a file swapped in between the check and the
// open cannot slip through. A file that fails a check is refused with an
// *InsecureError that says what is wrong and how to fix it; it matches
// ErrInsecure with errors.Is.
//
// On Linux and other Unix systems a private file is a regular file, not a
// symlink, owned by the effective uid, with no group or other permission
// bits, and with exactly one link. On Windows it is a regular file that is
// not a reparse point, with one link, owned by SYSTEM, Administrators or the
// current user, whose DACL grants access to no one else.
package fsutil

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrInsecure is matched (errors.Is) by every *InsecureError.
var ErrInsecure = errors.New("fsutil: file is not private")

// InsecureError says why a file or directory was refused and how to fix it.
type InsecureError struct {
	Path    string // the file or directory
	Problem string // what is wrong, e.g. "mode 0644 lets group or others in"
	Fix     string // what an operator should do, e.g. "chmod 600 /path"
}

func (e *InsecureError) Error() string {
	s := fmt.Sprintf("%s: not private: %s", e.Path, e.Problem)
	if e.Fix != "" {
		s += " (fix: " + e.Fix + ")"
	}
	return s
}

// Is reports whether target is ErrInsecure.
func (e *InsecureError) Is(target error) bool { return target == ErrInsecure }

// IsInsecure reports whether err says a file was not private.
func IsInsecure(err error) bool { return errors.Is(err, ErrInsecure) }

// WritePrivateFile atomically replaces path with data, as a private file. It
// never follows a symlink at path: a symlink there is replaced, not written
// through. The directory must already exist.
func WritePrivateFile(path string, data []byte) error {
	if err := writePrivateFile(path, data, true); err != nil {
		return fmt.Errorf("fsutil.WritePrivateFile: %w", err)
	}
	return nil
}

// CreatePrivateFile is WritePrivateFile that never replaces: if anything
// already exists at path (even a dangling symlink) it fails with an error
// matching fs.ErrExist and leaves it alone. Two processes racing to create
// the same file cannot both succeed.
func CreatePrivateFile(path string, data []byte) error {
	if err := writePrivateFile(path, data, false); err != nil {
		return fmt.Errorf("fsutil.CreatePrivateFile: %w", err)
	}
	return nil
}

// OpenPrivateFile opens path for reading, without following a symlink, and
// checks on the opened file that it is private. The caller closes the file.
func OpenPrivateFile(path string) (*os.File, error) {
	f, err := openPrivateFile(path)
	if err != nil {
		return nil, fmt.Errorf("fsutil.OpenPrivateFile: %w", err)
	}
	return f, nil
}

// ReadPrivateFile reads a private file of at most max bytes. A larger file is
// an error; it is not truncated.
func ReadPrivateFile(path string, max int64) ([]byte, error) {
	f, err := OpenPrivateFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("fsutil.ReadPrivateFile: %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("fsutil.ReadPrivateFile: %s: larger than %d bytes", path, max)
	}
	return b, nil
}

// MkdirPrivate makes sure path is a private directory: it creates it (and any
// missing parents) if needed, and checks that the final directory is not a
// symlink, is owned by the agent's account, and lets no one else in.
func MkdirPrivate(path string) error {
	if err := mkdirPrivate(path); err != nil {
		return fmt.Errorf("fsutil.MkdirPrivate: %w", err)
	}
	return nil
}

// tempPath splits path into its directory ("." for a bare name) and a new,
// random name in that directory for the temporary file an atomic write
// renames over path.
func tempPath(path string) (dir, tmp string, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", "", err
	}
	return dir, filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(rnd[:])), nil
}
