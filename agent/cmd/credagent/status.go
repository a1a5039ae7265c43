package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/service"
	"github.com/credagent/credagent/agent/service/statusview"
	"github.com/credagent/credagent/config"
)

// fetchStatus asks the agent on socket for its own view (GET /v1/status).
func fetchStatus(socket string) (*apitype.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := client.New(socket)
	defer c.Close()
	return c.Status(ctx)
}

func init() {
	var sf serviceFlags
	var asJSON bool
	var devDir, socket string
	register(&command{
		name:    "status",
		summary: "show the service state and what the running agent holds",
		usage: `credagent status [--json] [--config FILE | --dev DIR | --socket PATH]

Shows the service manager's state, then, when the agent answers on its
socket: the key backend, applications and their expiry, stores and their
last CCP contact, credentials, and rejected deliveries.

Example:
  credagent status --json`,
		flags: func(fs *flag.FlagSet) {
			sf.register(fs)
			fs.BoolVar(&asJSON, "json", false, "print JSON")
			fs.StringVar(&devDir, "dev", "", "the dev-mode agent of `DIR` (credagent run --dev); no service manager")
			fs.StringVar(&socket, "socket", "", "ask the agent on this socket or pipe instead of the config's")
		},
		run: func(args []string, stdout, stderr io.Writer) error {
			var r statusview.Report
			switch {
			case devDir != "" || socket != "":
				r = buildAgentOnlyStatus(devDir, socket)
			default:
				r = buildStatus(sf.manager(), sf.config)
			}
			if asJSON {
				return r.JSON(stdout)
			}
			r.Human(stdout, time.Now())
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
	a, err := fetchStatus(r.Socket)
	if err != nil {
		r.AgentError = err.Error()
		return r
	}
	r.Agent = a
	return r
}

// buildAgentOnlyStatus asks an agent that is not run by the service manager
// (dev mode, or a socket given by hand).
func buildAgentOnlyStatus(devDir, socket string) statusview.Report {
	var r statusview.Report
	r.Service = "not managed (dev mode or --socket)"
	if socket == "" {
		var err error
		if socket, err = devSocket(devDir); err != nil {
			r.AgentError = err.Error()
			return r
		}
	}
	r.Socket = socket
	a, err := fetchStatus(socket)
	if err != nil {
		r.AgentError = err.Error()
		return r
	}
	r.Agent = a
	return r
}
