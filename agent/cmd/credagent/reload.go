package main

import (
	"fmt"
	"io"

	"github.com/credagent/credagent/config"
)

func init() {
	var sf serviceFlags
	register(&command{
		name:    "reload",
		summary: "make the running service re-read its config file",
		usage: `credagent reload [--config FILE]

Checks the config file first and refuses to ask for a reload if it does not
load, printing why. Then sends the reload request: systemctl reload (SIGHUP)
on Linux, the PARAMCHANGE service control on Windows. The agent logs whether
it took the new config, which changed keys it applied and which wait for a
restart (credagent status lists those under "restart:"); on a bad config
the running one stays.

Example:
  sudo credagent reload`,
		flags: sf.register,
		run: func(args []string, stdout, stderr io.Writer) error {
			if _, err := config.Load(sf.config); err != nil {
				return fmt.Errorf("not reloading: %w", err)
			}
			if err := sf.manager().Reload(); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "reload requested; see the agent's log for the result, and credagent status for keys that wait for a restart")
			return nil
		},
	})
}
