//go:build windows

package config

import (
	"path/filepath"

	"github.com/credagent/credagent/platform/paths"
)

// setPlatformDefaults refines the defaults for Windows. A service has no
// console and Windows no journal, so the log goes to a size-rotated file
// under ProgramData (the service lifecycle also goes to the Event Log).
func setPlatformDefaults(c *Config, d paths.Defaults) {
	c.Log.File = filepath.Join(d.LogDir, "agent.log")
	c.Log.AuditFile = filepath.Join(d.LogDir, "audit.log")
}
