// Package paths gives the agent's default locations on each operating system.
//
// Linux: /etc/credagent for configuration, /var/lib/credagent for state and
// keys, /run/credagent for the socket. Windows: everything under
// %ProgramData%\credagent, and the named pipe \\.\pipe\ProtectedPrefix\Administrators\credagent.
package paths

import "path/filepath"

// Defaults are the locations used when the config does not name others.
type Defaults struct {
	ConfigFile string // the agent's config file
	StateDir   string // sealed records, rejected deliveries
	KeyDir     string // machine key (file backend) or TPM-wrapped blobs
	InboxDir   string // where the portal drops deliveries
	LogDir     string // log files, when logging to files
	Socket     string // Unix socket path or named pipe name
}

// Default returns the defaults for this operating system.
func Default() Defaults { return defaults() }

// Dev returns the layout of dev mode: everything under dir.
func Dev(dir string) Defaults {
	return Defaults{
		ConfigFile: filepath.Join(dir, "config.yaml"),
		StateDir:   filepath.Join(dir, "state"),
		KeyDir:     filepath.Join(dir, "keys"),
		InboxDir:   filepath.Join(dir, "inbox"),
		LogDir:     filepath.Join(dir, "log"),
		Socket:     devSocket(dir),
	}
}
