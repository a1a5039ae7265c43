//go:build !windows

package service

import (
	"fmt"
	"os"
)

// RequireAdmin returns an error wrapping ErrNotAdmin unless the process runs
// as root.
func RequireAdmin() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: run it as root (sudo credagent ...)", ErrNotAdmin)
	}
	return nil
}
