// Package version is the agent's version, set at link time with
// -ldflags "-X github.com/credagent/credagent/agent/version.Version=v1.2.3".
package version

import "runtime/debug"

// Version is the release version, or the VCS revision of a development build.
var Version = "dev"

func init() {
	if Version != "dev" {
		return
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				Version = "dev-" + s.Value[:12]
			}
		}
	}
}
