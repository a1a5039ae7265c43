//go:build windows

package paths

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"

	"github.com/credagent/credagent/platform/localsock"
)

func programData() string {
	if p := os.Getenv("ProgramData"); p != "" {
		return p
	}
	return `C:\ProgramData`
}

func defaults() Defaults {
	base := filepath.Join(programData(), "credagent")
	return Defaults{
		ConfigFile: filepath.Join(base, "config.yaml"),
		StateDir:   filepath.Join(base, "state"),
		KeyDir:     filepath.Join(base, "keys"),
		InboxDir:   filepath.Join(base, "inbox"),
		LogDir:     filepath.Join(base, "log"),
		// Under the prefix where only Administrators and SYSTEM can create
		// pipes, so an unprivileged process cannot squat the name.
		Socket: localsock.ProtectedPrefix + "credagent",
	}
}

// devSocket names a per-directory pipe outside the protected prefix, because
// dev mode runs as an ordinary user who cannot create pipes there.
func devSocket(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return `\\.\pipe\credagent-dev-` + hex.EncodeToString(sum[:6])
}
