//go:build windows

package inbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// ownerSet holds the SIDs that may own a delivery file: SYSTEM, the
// Administrators group, the agent's own user, and the configured ones.
type ownerSet map[string]bool

func parseOwners(list []string) (ownerSet, error) {
	s := ownerSet{"S-1-5-18": true, "S-1-5-32-544": true}
	if u, err := windows.GetCurrentProcessToken().GetTokenUser(); err == nil {
		s[u.User.Sid.String()] = true
	}
	for _, o := range list {
		sid, err := windows.StringToSid(o)
		if err != nil {
			return nil, fmt.Errorf("inbox: allowed owner %q is not a SID: %w", o, err)
		}
		s[sid.String()] = true
	}
	return s, nil
}

func (s ownerSet) check(f *os.File, _ os.FileInfo) error {
	owner, err := ownerOf(windows.Handle(f.Fd()))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrForeignOwner, err)
	}
	if !s[owner] {
		return fmt.Errorf("%w: %s", ErrForeignOwner, owner)
	}
	return nil
}

func ownerOf(h windows.Handle) (string, error) {
	sd, err := windows.GetSecurityInfo(h, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return "", fmt.Errorf("reading the owner: %w", err)
	}
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return "", errors.New("no owner")
	}
	return owner.String(), nil
}

// inboxDir is the inbox, opened once. The directory handle is held without
// FILE_SHARE_DELETE, so while the agent runs Windows refuses to rename or
// delete the inbox: its path keeps naming the directory that was checked.
// Each entry is opened without following a reparse point
// (FILE_FLAG_OPEN_REPARSE_POINT), and is removed or moved out through that
// handle (SetFileInformationByHandle), never by a second look at a path.
type inboxDir struct {
	path string
	h    windows.Handle
	id   fileID
}

type fileID struct {
	vol        uint32
	idx1, idx2 uint32
}

func idOf(h windows.Handle) (fileID, uint32, error) {
	var fi windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &fi); err != nil {
		return fileID{}, 0, err
	}
	return fileID{fi.VolumeSerialNumber, fi.FileIndexHigh, fi.FileIndexLow}, fi.FileAttributes, nil
}

// openNoReparse opens path itself, never what a reparse point (symlink,
// junction, mount point) at path points to.
func openNoReparse(path string, access, share, flags uint32) (windows.Handle, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return windows.InvalidHandle, err
	}
	h, err := windows.CreateFile(p, access, share, nil, windows.OPEN_EXISTING, flags|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return windows.InvalidHandle, &os.PathError{Op: "open", Path: printable(path), Err: err}
	}
	return h, nil
}

// openInboxDir checks that no directory from the volume root to the inbox
// is a reparse point, checks the inbox's owner, and opens it.
func openInboxDir(path string, owners ownerSet) (*inboxDir, error) {
	clean := filepath.Clean(path)
	if !filepath.IsAbs(clean) {
		return nil, fmt.Errorf("inbox directory %s: not an absolute path", printable(path))
	}
	vol := filepath.VolumeName(clean)
	rest := strings.Split(strings.Trim(clean[len(vol):], `\`), `\`)
	at := vol + `\`
	for i := 0; i <= len(rest); i++ {
		if i > 0 {
			if rest[i-1] == "" {
				continue
			}
			at = filepath.Join(at, rest[i-1])
		}
		last := i == len(rest)
		share := uint32(windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE | windows.FILE_SHARE_DELETE)
		access := uint32(windows.FILE_READ_ATTRIBUTES)
		if last {
			// Held for the agent's lifetime: no FILE_SHARE_DELETE, so the
			// directory cannot be renamed or deleted under it.
			share = windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE
			access = windows.FILE_LIST_DIRECTORY | windows.FILE_READ_ATTRIBUTES | windows.READ_CONTROL
		}
		h, err := openNoReparse(at, access, share, windows.FILE_FLAG_BACKUP_SEMANTICS)
		if err != nil {
			return nil, fmt.Errorf("inbox directory %s: %w", printable(clean), err)
		}
		id, attrs, err := idOf(h)
		if err == nil && attrs&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
			err = fmt.Errorf("%s is a reparse point (symbolic link, junction or mount point); the inbox and every directory above it must be real directories", printable(at))
		} else if err == nil && attrs&windows.FILE_ATTRIBUTE_DIRECTORY == 0 {
			err = fmt.Errorf("%s is not a directory", printable(at))
		}
		if err == nil && last {
			var owner string
			if owner, err = ownerOf(h); err == nil && !owners[owner] {
				err = fmt.Errorf("the inbox is owned by %s, which is neither SYSTEM, Administrators, the agent's user nor an allowed owner (inbox.allowed_owners)", owner)
			}
		}
		if err != nil || !last {
			windows.CloseHandle(h)
			if err != nil {
				return nil, fmt.Errorf("inbox directory %s: %w", printable(clean), err)
			}
			continue
		}
		return &inboxDir{path: clean, h: h, id: id}, nil
	}
	return nil, fmt.Errorf("inbox directory %s: empty path", printable(clean))
}

// Close releases the directory.
func (d *inboxDir) Close() error { return windows.CloseHandle(d.h) }

func (d *inboxDir) watchPath() string { return d.path }

// stillAt reports an error if the inbox's path no longer names the
// directory the agent holds.
func (d *inboxDir) stillAt() error {
	h, err := openNoReparse(d.path, windows.FILE_READ_ATTRIBUTES, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, windows.FILE_FLAG_BACKUP_SEMANTICS)
	if err != nil {
		return fmt.Errorf("inbox directory %s: %w", printable(d.path), err)
	}
	defer windows.CloseHandle(h)
	id, _, err := idOf(h)
	if err != nil {
		return fmt.Errorf("inbox directory %s: %w", printable(d.path), err)
	}
	if id != d.id {
		return fmt.Errorf("inbox directory %s was replaced after the agent opened it; the agent keeps using the directory it opened (restart the agent to take the new one, after checking who replaced it)", printable(d.path))
	}
	return nil
}

// names lists the inbox. The held handle keeps the path naming the
// directory that was checked.
func (d *inboxDir) names() ([]string, error) {
	f, err := os.Open(d.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// modTime is when the entry name was last written, zero if unknown.
func (d *inboxDir) modTime(name string) time.Time {
	if checkEntryName(name) != nil {
		return time.Time{}
	}
	fi, err := os.Lstat(filepath.Join(d.path, name))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// checkOwnerUnopened has nothing to add on Windows, where a file's owner is
// read through a handle. A file created in the inbox inherits a DACL that
// lets SYSTEM open it; one the agent may not open has had its DACL changed
// on purpose, and stays in the inbox, listed in status as unreadable.
func (d *inboxDir) checkOwnerUnopened(string, ownerSet) error { return nil }

// openEntry opens an inbox entry for reading and for being moved or
// deleted through its handle, without following a reparse point.
func (d *inboxDir) openEntry(name string) (*os.File, error) {
	h, err := d.openAny(name)
	if err != nil {
		return nil, err
	}
	_, attrs, err := idOf(h)
	if err != nil {
		windows.CloseHandle(h)
		return nil, &os.PathError{Op: "stat", Path: printable(name), Err: err}
	}
	switch {
	case attrs&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0:
		windows.CloseHandle(h)
		return nil, ErrSymlink
	case attrs&windows.FILE_ATTRIBUTE_DIRECTORY != 0:
		windows.CloseHandle(h)
		return nil, fmt.Errorf("%w: a directory", ErrNotRegular)
	}
	if t, _ := windows.GetFileType(h); t != windows.FILE_TYPE_DISK {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("%w: not a disk file", ErrNotRegular)
	}
	return os.NewFile(uintptr(h), name), nil
}

func (d *inboxDir) openAny(name string) (windows.Handle, error) {
	if err := checkEntryName(name); err != nil {
		return windows.InvalidHandle, err
	}
	return openNoReparse(filepath.Join(d.path, name), windows.GENERIC_READ|windows.DELETE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_DELETE, windows.FILE_FLAG_BACKUP_SEMANTICS)
}

// remove deletes the file through its handle (f), or, for an entry that
// was not opened as a delivery, through a handle to the entry itself.
func (d *inboxDir) remove(name string, f *os.File) error {
	h, done, err := d.handleOf(name, f)
	if err != nil {
		return err
	}
	defer done()
	info := struct{ DeleteFile uint8 }{1}
	if err := windows.SetFileInformationByHandle(h, windows.FileDispositionInfo, (*byte)(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		return &os.PathError{Op: "delete", Path: printable(name), Err: err}
	}
	return nil
}

// moveOut renames the opened entry to dest, an absolute path in the state
// directory. A move to another volume fails with errCrossDevice.
func (d *inboxDir) moveOut(name string, f *os.File, dest string) error {
	h, done, err := d.handleOf(name, f)
	if err != nil {
		return err
	}
	defer done()
	to, err := windows.UTF16FromString(dest)
	if err != nil {
		return err
	}
	// FILE_RENAME_INFO: a union of BOOLEAN ReplaceIfExists and DWORD Flags,
	// HANDLE RootDirectory (NULL: FileName is absolute), DWORD
	// FileNameLength in bytes without the NUL, WCHAR FileName[].
	type renameInfo struct {
		Flags          uint32
		RootDirectory  windows.Handle
		FileNameLength uint32
		FileName       [1]uint16
	}
	off := unsafe.Offsetof(renameInfo{}.FileName)
	size := off + uintptr(len(to))*2
	buf := make([]uint64, (size+7)/8)
	ri := (*renameInfo)(unsafe.Pointer(&buf[0]))
	ri.FileNameLength = uint32((len(to) - 1) * 2)
	copy(unsafe.Slice((*uint16)(unsafe.Add(unsafe.Pointer(ri), off)), len(to)), to)
	if err := windows.SetFileInformationByHandle(h, windows.FileRenameInfo, (*byte)(unsafe.Pointer(ri)), uint32(size)); err != nil {
		if errors.Is(err, windows.ERROR_NOT_SAME_DEVICE) {
			return fmt.Errorf("%w: %v", errCrossDevice, err)
		}
		return &os.PathError{Op: "rename", Path: printable(name), Err: err}
	}
	return nil
}

func (d *inboxDir) handleOf(name string, f *os.File) (windows.Handle, func(), error) {
	if f != nil {
		return windows.Handle(f.Fd()), func() {}, nil
	}
	h, err := d.openAny(name)
	if err != nil {
		return windows.InvalidHandle, nil, err
	}
	return h, func() { windows.CloseHandle(h) }, nil
}

// checkEntryName refuses a name that is not a single entry of the inbox,
// including an alternate data stream ("name:stream").
func checkEntryName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\:`) || strings.ContainsRune(name, 0) {
		return fmt.Errorf("inbox: %s is not a file name in the inbox", printable(name))
	}
	return nil
}
