//go:build !windows

package fsutiltest

import "os"

func letOthersRead(path string) error { return os.Chmod(path, 0o644) }
