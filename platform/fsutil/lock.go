package fsutil

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrLocked is matched (errors.Is) by LockPrivate's error when another
// process held the lock for the whole wait.
var ErrLocked = errors.New("fsutil: locked by another process")

// Lock is an exclusive lock on a private file, held by one open file at a
// time across every process on the machine (and within one process: two
// LockPrivate calls on the same path exclude each other). It serialises a
// read-change-write of files that two credagent processes may change at
// once, such as the service and an operator's 'credagent enroll'.
//
// The operating system releases the lock when the holder exits or dies, so a
// crashed holder never leaves it taken. The lock file is never removed:
// removing it would let a process that has just opened the old file and one
// that creates a new one each hold "the" lock.
type Lock struct {
	f *os.File
}

// lockPoll bounds the wait between two tries to take a busy lock.
const lockPoll = 50 * time.Millisecond

// LockPrivate opens the private file at path, creating it empty if it is not
// there, and takes an exclusive lock on it. If another holder has it, it
// tries again until wait has passed, then fails with an error matching
// ErrLocked. The file is checked like any private file (not a link, the
// agent's own, no access for others); an *InsecureError says why not. The
// directory must exist.
func LockPrivate(path string, wait time.Duration) (*Lock, error) {
	f, err := openLockFile(path)
	if err != nil {
		return nil, fmt.Errorf("fsutil.LockPrivate: %w", err)
	}
	deadline := time.Now().Add(wait)
	for delay := time.Millisecond; ; delay = min(2*delay, lockPoll) {
		got, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("fsutil.LockPrivate: %s: %w", path, err)
		}
		if got {
			return &Lock{f: f}, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			f.Close()
			return nil, fmt.Errorf("fsutil.LockPrivate: %s: still held after %v: %w", path, wait, ErrLocked)
		}
		time.Sleep(min(delay, left))
	}
}

// Unlock releases the lock and closes the file. Closing alone would release
// it too; unlocking first says so explicitly.
func (l *Lock) Unlock() error {
	uerr := unlock(l.f)
	cerr := l.f.Close()
	if err := errors.Join(uerr, cerr); err != nil {
		return fmt.Errorf("fsutil.Lock.Unlock: %w", err)
	}
	return nil
}
