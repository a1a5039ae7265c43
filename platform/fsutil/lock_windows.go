//go:build windows

package fsutil

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

func openLockFile(path string) (*os.File, error) {
	sa, err := privateSA()
	if err != nil {
		return nil, err
	}
	p16, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	// OPEN_ALWAYS creates the file with the private descriptor if it is
	// not there. FILE_FLAG_OPEN_REPARSE_POINT opens a symlink or junction
	// itself, which checkHandle then refuses. Other opens must be able to
	// share the file: the lock, not the sharing mode, is what excludes.
	h, err := windows.CreateFile(p16, windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, sa, windows.OPEN_ALWAYS,
		windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if err := checkHandle(path, h, false); err != nil {
		windows.CloseHandle(h)
		return nil, err
	}
	return os.NewFile(uintptr(h), path), nil
}

// tryLock locks the file's first byte with LockFileEx. The lock belongs to
// the handle: a second handle, even in the same process, cannot take it,
// and the system releases it when the handle is closed or the process ends
// (Microsoft's documentation warns that after a process ends this may take
// a moment, which LockPrivate's wait covers).
func tryLock(f *os.File) (bool, error) {
	var ol windows.Overlapped // offset 0
	err := windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION):
		// The handle is synchronous, so with LOCKFILE_FAIL_IMMEDIATELY a
		// held lock is this error, never a queued request.
		return false, nil
	}
	return false, &os.PathError{Op: "LockFileEx", Path: f.Name(), Err: err}
}

func unlock(f *os.File) error {
	var ol windows.Overlapped
	if err := windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &ol); err != nil {
		return &os.PathError{Op: "UnlockFileEx", Path: f.Name(), Err: err}
	}
	return nil
}
