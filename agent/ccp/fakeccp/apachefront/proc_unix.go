//go:build !windows

package apachefront

import (
	"os/exec"
	"syscall"
)

func setProcessGroup(c *exec.Cmd) { c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// terminate asks httpd to stop (it stops its workers itself).
func terminate(pid int) { syscall.Kill(pid, syscall.SIGTERM) }

// killGroup kills httpd and its workers.
func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }
