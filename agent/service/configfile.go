package service

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/credagent/credagent/installer"
	"github.com/credagent/credagent/platform/fsutil"
)

// InstallOptions seed the config on a first install, for silent installs
// across a fleet (the MSI's CONFIG and PORTALKEY properties).
type InstallOptions struct {
	// ConfigFrom is a config file to install when there is none yet.
	ConfigFrom string
	// PortalKey is the portal's public signing key (see NormalizePortalKey),
	// added to portal.signing_keys.
	PortalKey string
}

// seedConfig makes sure path holds a config: the one from opts.ConfigFrom or
// the default if there is none, with opts.PortalKey added. An existing
// config is kept, only the portal key is added to it. The file is written
// as a private file (fsutil): atomically, mode 0600 on Unix, and on Windows
// SYSTEM and Administrators only, which is what install gives its directory.
func seedConfig(path string, opts InstallOptions) (created bool, err error) {
	existing, err := os.ReadFile(path)
	switch {
	case err == nil:
		if opts.PortalKey == "" {
			return false, nil
		}
	case os.IsNotExist(err):
		existing = []byte(installer.DefaultConfig)
		if opts.ConfigFrom != "" {
			if existing, err = os.ReadFile(opts.ConfigFrom); err != nil {
				return false, fmt.Errorf("service: initial config: %w", err)
			}
		}
		created = true
	default:
		return false, fmt.Errorf("service: %w", err)
	}
	key := ""
	if opts.PortalKey != "" {
		if key, err = NormalizePortalKey(opts.PortalKey); err != nil {
			return false, err
		}
	}
	out, err := SeedConfig(existing, key)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("service: %w", err)
	}
	if err := fsutil.WritePrivateFile(path, out); err != nil {
		return false, fmt.Errorf("service: %w", err)
	}
	return created, nil
}
