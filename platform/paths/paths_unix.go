//go:build !windows

package paths

import "path/filepath"

func defaults() Defaults {
	return Defaults{
		ConfigFile: "/etc/credagent/config.yaml",
		StateDir:   "/var/lib/credagent",
		KeyDir:     "/var/lib/credagent/keys",
		InboxDir:   "/var/lib/credagent/inbox",
		LogDir:     "/var/log/credagent",
		Socket:     "/run/credagent/agent.sock",
	}
}

func devSocket(dir string) string { return filepath.Join(dir, "agent.sock") }
