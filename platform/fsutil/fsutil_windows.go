//go:build windows

package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

func privateSA() (*windows.SecurityAttributes, error) {
	// An ordinary (unelevated) user, in dev mode, is granted access to its
	// own private files; SYSTEM and an elevated administrator make
	// Administrators the owner. See PrivateSDDLFor.
	var self string
	if tok := windows.GetCurrentProcessToken(); !tok.IsElevated() {
		if u, err := tok.GetTokenUser(); err == nil {
			self = u.User.Sid.String()
		}
	}
	sddl := PrivateSDDLFor(self)
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		return nil, fmt.Errorf("security descriptor %q: %w", sddl, err)
	}
	return &windows.SecurityAttributes{
		Length:             uint32(unsafe.Sizeof(windows.SecurityAttributes{})),
		SecurityDescriptor: sd,
	}, nil
}

func writePrivateFile(path string, data []byte, replace bool) (err error) {
	_, tmp, err := tempPath(path)
	if err != nil {
		return err
	}
	sa, err := privateSA()
	if err != nil {
		return err
	}
	tmp16, err := windows.UTF16PtrFromString(tmp)
	if err != nil {
		return err
	}
	h, err := windows.CreateFile(tmp16, windows.GENERIC_WRITE, 0, sa,
		windows.CREATE_NEW, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return &os.PathError{Op: "create", Path: tmp, Err: err}
	}
	f := os.NewFile(uintptr(h), tmp)
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil { // FlushFileBuffers
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	path16, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return err
	}
	// MOVEFILE_WRITE_THROUGH returns only once the rename is on disk, which
	// stands in for the directory fsync of the Unix version.
	// Without MOVEFILE_REPLACE_EXISTING the move fails with
	// ERROR_ALREADY_EXISTS (which matches fs.ErrExist) if path exists.
	flags := uint32(windows.MOVEFILE_WRITE_THROUGH)
	if replace {
		flags |= windows.MOVEFILE_REPLACE_EXISTING
	}
	if err := windows.MoveFileEx(tmp16, path16, flags); err != nil {
		os.Remove(tmp)
		return &os.LinkError{Op: "rename", Old: tmp, New: path, Err: err}
	}
	return nil
}

func openPrivateFile(path string) (*os.File, error) {
	p16, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, err
	}
	// FILE_FLAG_OPEN_REPARSE_POINT opens a symlink or junction itself rather
	// than its target, so the checks below see and refuse it.
	h, err := windows.CreateFile(p16, windows.GENERIC_READ, windows.FILE_SHARE_READ, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if err := checkHandle(path, h, false); err != nil {
		windows.CloseHandle(h)
		return nil, err
	}
	return os.NewFile(uintptr(h), path), nil
}

// checkHandle checks an opened file or directory.
func checkHandle(path string, h windows.Handle, wantDir bool) error {
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return &os.PathError{Op: "GetFileInformationByHandle", Path: path, Err: err}
	}
	if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		return &InsecureError{Path: path, Problem: "it is a symbolic link or junction",
			Fix: "replace it with the real file or directory"}
	}
	isDir := info.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY != 0
	if isDir != wantDir {
		return &InsecureError{Path: path, Problem: "it is not the expected kind of file",
			Fix: "remove it and enrol again"}
	}
	if !wantDir && info.NumberOfLinks != 1 {
		return &InsecureError{Path: path, Problem: fmt.Sprintf("it has %d hard links; a private file has one", info.NumberOfLinks),
			Fix: "remove the other links (fsutil hardlink list " + path + ")"}
	}
	sd, err := windows.GetSecurityInfo(h, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return &os.PathError{Op: "GetSecurityInfo", Path: path, Err: err}
	}
	allowed, err := trustedSIDs()
	if err != nil {
		return err
	}
	fix := fmt.Sprintf("icacls %s /inheritance:r /grant:r SYSTEM:F Administrators:F", path)
	owner, _, err := sd.Owner()
	if err != nil {
		return &os.PathError{Op: "owner", Path: path, Err: err}
	}
	if !anySID(owner, allowed) {
		return &InsecureError{Path: path, Problem: "it is owned by " + owner.String() + ", not SYSTEM or Administrators",
			Fix: "icacls " + path + " /setowner Administrators"}
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		return &InsecureError{Path: path, Problem: "it has no DACL, so everyone has access", Fix: fix}
	}
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return &os.PathError{Op: "GetAce", Path: path, Err: err}
		}
		switch ace.Header.AceType {
		case windows.ACCESS_DENIED_ACE_TYPE:
			continue // a deny entry only takes access away
		case windows.ACCESS_ALLOWED_ACE_TYPE:
			sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
			if !anySID(sid, allowed) {
				return &InsecureError{Path: path, Problem: "its DACL grants access to " + sid.String(), Fix: fix}
			}
		default:
			return &InsecureError{Path: path, Problem: fmt.Sprintf("its DACL has an entry of type %d that the agent does not check", ace.Header.AceType), Fix: fix}
		}
	}
	return nil
}

// trustedSIDs are SYSTEM, Administrators and the account the agent runs as.
func trustedSIDs() ([]*windows.SID, error) {
	system, err := windows.CreateWellKnownSid(windows.WinLocalSystemSid)
	if err != nil {
		return nil, err
	}
	admins, err := windows.CreateWellKnownSid(windows.WinBuiltinAdministratorsSid)
	if err != nil {
		return nil, err
	}
	sids := []*windows.SID{system, admins}
	if u, err := windows.GetCurrentProcessToken().GetTokenUser(); err == nil {
		sids = append(sids, u.User.Sid)
	}
	return sids, nil
}

func anySID(s *windows.SID, list []*windows.SID) bool {
	for _, t := range list {
		if s.Equals(t) {
			return true
		}
	}
	return false
}

func mkdirPrivate(path string) error {
	if parent := filepath.Dir(path); parent != path {
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return err
		}
	}
	p16, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return err
	}
	sa, err := privateSA()
	if err != nil {
		return err
	}
	if err := windows.CreateDirectory(p16, sa); err != nil && err != windows.ERROR_ALREADY_EXISTS {
		return &os.PathError{Op: "mkdir", Path: path, Err: err}
	}
	h, err := windows.CreateFile(p16, windows.GENERIC_READ|windows.READ_CONTROL, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer windows.CloseHandle(h)
	return checkHandle(path, h, true)
}
