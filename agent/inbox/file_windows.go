//go:build windows

package inbox

import (
	"fmt"
	"os"

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
	sd, err := windows.GetSecurityInfo(windows.Handle(f.Fd()), windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("%w: reading the owner: %v", ErrForeignOwner, err)
	}
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return fmt.Errorf("%w: no owner", ErrForeignOwner)
	}
	if !s[owner.String()] {
		return fmt.Errorf("%w: %s", ErrForeignOwner, owner.String())
	}
	return nil
}

// openNoFollow opens path; readDelivery has already refused a symlink by
// Lstat and compares the opened file with it, so a swapped-in reparse point
// is caught by os.SameFile.
func openNoFollow(path string) (*os.File, error) { return os.Open(path) }
