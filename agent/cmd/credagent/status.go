package main

import (
	"flag"
	"os"
	"time"

	"github.com/credagent/credagent/agent/service"
	"github.com/credagent/credagent/agent/service/statusview"
	"github.com/credagent/credagent/config"
)

// agentStatus fills the agent's part of the report from the local API. It
// is nil until the local API client is wired in (agent/localapi/client).
var agentStatus func(socket string) (*statusview.Agent, error)

func init() {
	var sf serviceFlags
	var asJSON bool
	register(&command{
		name:    "status",
		summary: "show the service state and what the running agent holds",
		usage: `credagent status [--json] [--config FILE]

Shows the service manager's state, then, when the agent answers on its
socket: the key backend, applications and their expiry, stores and their
last CCP contact, credentials, and rejected deliveries.

Example:
  credagent status --json`,
		flags: func(fs *flag.FlagSet) {
			sf.register(fs)
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		},
		run: func(args []string) error {
			r := buildStatus(sf.manager(), sf.config)
			if asJSON {
				return r.JSON(os.Stdout)
			}
			r.Human(os.Stdout, time.Now())
			return nil
		},
	})
}

func buildStatus(m service.Manager, configPath string) statusview.Report {
	var r statusview.Report
	st, err := m.Status()
	r.Service = string(st)
	if err != nil {
		r.ServiceError = err.Error()
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		cfg = config.Default()
	}
	r.Socket = cfg.Paths.Socket
	if agentStatus == nil {
		r.AgentError = "status from the agent is not available in this build"
		return r
	}
	a, err := agentStatus(r.Socket)
	if err != nil {
		r.AgentError = err.Error()
		return r
	}
	r.Agent = a
	return r
}
