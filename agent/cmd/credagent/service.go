package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/credagent/credagent/agent/service"
	"github.com/credagent/credagent/platform/paths"
)

// serviceFlags are shared by the service subcommands.
type serviceFlags struct {
	config string
}

func (f *serviceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", paths.Default().ConfigFile, "the config file the service runs with")
}

func (f *serviceFlags) manager() service.Manager {
	return service.Manager{ConfigPath: f.config}
}

func init() {
	var sf serviceFlags
	var configOnly bool
	var opts service.InstallOptions
	register(&command{
		name:    "install",
		summary: "register the agent as a system service (root/administrator)",
		usage: `credagent install [--config FILE] [--portal-key KEY] [--initial-config FILE] [--configure-only]

Registers this executable as the credagent service: a hardened systemd unit
with Type=notify on Linux; on Windows an automatic (delayed start) service
with restart-on-failure recovery, its own service SID, and
%ProgramData%\credagent locked to SYSTEM and Administrators. Writes the
default config if there is none. Running it again is harmless; it refuses
to replace a credagent service that runs another executable or config.

--configure-only applies the settings only, to a service the MSI has
registered (the MSI runs it as a custom action).

Example:
  sudo credagent install && sudo credagent start`,
		flags: func(fs *flag.FlagSet) {
			sf.register(fs)
			fs.StringVar(&opts.PortalKey, "portal-key", "", "the portal's public signing key (PEM, base64 DER, or @FILE) to pin")
			fs.StringVar(&opts.ConfigFrom, "initial-config", "", "a config file to install when there is none yet")
			fs.BoolVar(&configOnly, "configure-only", false, "only apply recovery, SID, ACL and config to the existing service")
		},
		run: func(args []string, stdout, stderr io.Writer) error {
			m := sf.manager()
			// The MSI passes its properties even when unset (as " ").
			opts.PortalKey = strings.TrimSpace(opts.PortalKey)
			opts.ConfigFrom = strings.TrimSpace(opts.ConfigFrom)
			if err := readAtFile(&opts.PortalKey); err != nil {
				return err
			}
			if configOnly {
				warnings, err := m.Configure(opts)
				if err != nil {
					return err
				}
				printWarnings(stderr, warnings)
				fmt.Fprintln(stdout, "credagent service configured")
				return nil
			}
			res, err := m.Install(opts)
			if err != nil {
				return err
			}
			if res.AlreadyInstalled {
				fmt.Fprintln(stdout, "credagent service already installed; settings re-applied")
			} else {
				fmt.Fprintln(stdout, "credagent service installed")
			}
			if res.ConfigCreated {
				fmt.Fprintf(stdout, "wrote the default config to %s\n", sf.config)
			}
			for _, n := range res.Notes {
				fmt.Fprintln(stdout, n)
			}
			printWarnings(stderr, res.Warnings)
			return nil
		},
	})
	register(&command{
		name:    "uninstall",
		summary: "stop and remove the system service (keeps config and state)",
		usage:   "credagent uninstall\n\nStops the service and removes its registration. The config, state and\nmachine key stay; remove them by hand to start over.\n\nExample:\n  sudo credagent uninstall",
		run: func(args []string, stdout, stderr io.Writer) error {
			if err := (service.Manager{}).Uninstall(); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "credagent service removed (config and state kept)")
			return nil
		},
	})
	for _, c := range []struct {
		name, summary, example string
		do                     func(service.Manager) error
	}{
		{"start", "start the system service", "sudo credagent start", service.Manager.Start},
		{"stop", "stop the system service, draining in-flight requests", "sudo credagent stop", service.Manager.Stop},
		{"restart", "stop and start the system service", "sudo credagent restart", service.Manager.Restart},
	} {
		register(&command{
			name:    c.name,
			summary: c.summary,
			usage:   fmt.Sprintf("credagent %s\n\nRuns as root or an administrator.\n\nExample:\n  %s", c.name, c.example),
			run: func(args []string, stdout, stderr io.Writer) error {
				if err := c.do(service.Manager{}); err != nil {
					if errors.Is(err, service.ErrNotInstalled) {
						return fmt.Errorf("%w; install it first: credagent install", err)
					}
					return err
				}
				return nil
			},
		})
	}
}

// printWarnings tells the operator which optional service settings the
// service manager refused; credagent doctor reports them too.
func printWarnings(stderr io.Writer, ws []string) {
	for _, w := range ws {
		fmt.Fprintf(stderr, "warning: %s (the service works without it; credagent doctor reports it)\n", w)
	}
}
