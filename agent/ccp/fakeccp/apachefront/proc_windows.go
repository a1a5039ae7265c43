package apachefront

import (
	"os"
	"os/exec"
)

// Debian's apache2 does not run on Windows (Available reports false); these
// keep the package building there, for scripts/e2e.

func setProcessGroup(*exec.Cmd) {}

func terminate(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

func killGroup(pid int) { terminate(pid) }
