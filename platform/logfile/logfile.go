// Package logfile is a log file that rotates by size and keeps a bounded
// number of old files.
//
// A File is an io.Writer safe for concurrent use: each Write lands whole in
// one file, never split across a rotation. The active file is path; rotated
// files are path.1 (newest) to path.N (oldest), and path.N+1 is deleted, so
// at most MaxFiles files (the active one included) exist at a time. Every
// file is created with mode 0600, because the log names applications,
// stores and callers.
//
// The agent writes its logs as root, so a log file is never opened through
// a symlink (O_NOFOLLOW; on Windows the path must not be a reparse point,
// before and after the open), never a file of another owner or with another
// hard link, and never in a directory that others can write to (Linux:
// group- or world-writable, or owned by someone other than root or the
// agent's user), where they could plant such a file.
package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Options bound a File. The zero value of a field selects its default.
type Options struct {
	// MaxBytes is the size in bytes past which the file is rotated before the
	// next write. Default 10 MiB.
	MaxBytes int64
	// MaxFiles is the number of files kept, the active one included.
	// Default 5; 1 truncates the file instead of keeping an old one.
	MaxFiles int
}

const (
	defaultMaxBytes = 10 << 20
	defaultMaxFiles = 5
	// Mode is the permission of every log file.
	Mode fs.FileMode = 0o600
)

// File is a size-rotated log file.
type File struct {
	path string
	opts Options

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Open opens (creating if needed, appending if present) the log file at path.
// The directory is created with mode 0700 if it does not exist.
func Open(path string, opts Options) (*File, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = defaultMaxBytes
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = defaultMaxFiles
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("logfile.Open: %w", err)
	}
	if err := checkDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("logfile.Open: %w", err)
	}
	l := &File{path: path, opts: opts}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *File) open() error { return l.openFlags(0) }

// openFlags opens the active file, with os.O_TRUNC in extra to empty it.
func (l *File) openFlags(extra int) error {
	f, err := openNoFollow(l.path, extra)
	if err != nil {
		return fmt.Errorf("logfile.Open: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("logfile.Open: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("logfile.Open: %s is not a regular file", l.path)
	}
	if err := checkOpened(l.path, f, st); err != nil {
		f.Close()
		return fmt.Errorf("logfile.Open: %w", err)
	}
	// A file left by an older version, or created by someone else, may be
	// wider than 0600; narrow it.
	if st.Mode().Perm() != Mode {
		if err := f.Chmod(Mode); err != nil {
			f.Close()
			return fmt.Errorf("logfile.Open: %w", err)
		}
	}
	l.f, l.size = f, st.Size()
	return nil
}

// Write appends p to the file, rotating first if p would take the file past
// MaxBytes (unless the file is empty: one oversized record is written whole).
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, os.ErrClosed
	}
	if l.size > 0 && l.size+int64(len(p)) > l.opts.MaxBytes {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// rotate shifts path.i to path.i+1, drops the oldest, and reopens path.
func (l *File) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("logfile: rotate: %w", err)
	}
	l.f = nil
	keep := l.opts.MaxFiles - 1 // rotated files kept
	if keep == 0 {
		// Truncate through a new descriptor, not by path: os.Truncate
		// would follow a symlink planted meanwhile.
		return l.openFlags(os.O_TRUNC)
	}
	if err := os.Remove(l.name(keep)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("logfile: rotate: %w", err)
	}
	for i := keep - 1; i >= 1; i-- {
		if err := os.Rename(l.name(i), l.name(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("logfile: rotate: %w", err)
		}
	}
	if err := os.Rename(l.path, l.name(1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("logfile: rotate: %w", err)
	}
	return l.open()
}

// name is the i-th rotated file (i >= 1).
func (l *File) name(i int) string { return l.path + "." + strconv.Itoa(i) }

// Sync flushes the active file to disk.
func (l *File) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return os.ErrClosed
	}
	return l.f.Sync()
}

// Close closes the active file. Later writes fail with os.ErrClosed.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
