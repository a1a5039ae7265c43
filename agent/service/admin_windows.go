//go:build windows

package service

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// RequireAdmin returns an error wrapping ErrNotAdmin unless the process runs
// with an elevated token (an administrator after UAC, or SYSTEM).
func RequireAdmin() error {
	if !windows.GetCurrentProcessToken().IsElevated() {
		return fmt.Errorf("%w: run it from an elevated prompt (Run as administrator)", ErrNotAdmin)
	}
	return nil
}
