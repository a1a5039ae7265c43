//go:build windows

package doctor

import "io/fs"

// On Windows ownership is checked through the DACL, not here.
func ownerUID(fs.FileInfo) (int, bool)     { return 0, false }
func groupName(fs.FileInfo) (string, bool) { return "", false }
