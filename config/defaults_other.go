//go:build !windows

package config

import "github.com/credagent/credagent/platform/paths"

// setPlatformDefaults refines the defaults for Linux: logs go to standard
// error, which systemd sends to the journal.
func setPlatformDefaults(c *Config, d paths.Defaults) {}
