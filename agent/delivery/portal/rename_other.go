//go:build !windows

package portal

import "os"

// replaceFile renames from over to; on POSIX systems a reader holding the
// old file open does not stop it.
func replaceFile(from, to string) error { return os.Rename(from, to) }
