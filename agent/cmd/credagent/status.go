package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/service"
	"github.com/credagent/credagent/agent/service/statusview"
	"github.com/credagent/credagent/config"
)

// agentStatus fills the agent's part of the report from the local API's
// GET /v1/status.
var agentStatus = func(socket string) (*statusview.Agent, error) {
	st, err := fetchStatus(socket)
	if err != nil {
		return nil, err
	}
	return toView(st), nil
}

func fetchStatus(socket string) (*apitype.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return client.New(socket).Status(ctx)
}

// toView maps the local API's status onto what status shows.
func toView(st *apitype.Status) *statusview.Agent {
	a := &statusview.Agent{
		Version:     st.Version,
		KeyBackend:  st.KeyStore.Backend,
		HardwareKey: st.KeyStore.HardwareBacked,
		NeedsEnroll: st.KeyStore.NeedsReenroll,
	}
	for _, ap := range st.Applications {
		a.Applications = append(a.Applications, statusview.Application{AppID: ap.AppID, NotAfter: ap.NotAfter})
	}
	for _, s := range st.Stores {
		a.Stores = append(a.Stores, statusview.Store{Name: s.Name, LastContact: s.LastSuccess, LastError: s.LastError})
	}
	for _, c := range st.Credentials {
		a.Credentials = append(a.Credentials, c.Name)
	}
	for _, r := range st.Rejected {
		a.Rejected = append(a.Rejected, statusview.Rejection{File: r.File, Reason: r.Reason, At: r.At})
	}
	return a
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
		run: func(args []string) error {
			var r statusview.Report
			switch {
			case devDir != "" || socket != "":
				r = buildAgentOnlyStatus(devDir, socket)
			default:
				r = buildStatus(sf.manager(), sf.config)
			}
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
	a, err := agentStatus(socket)
	if err != nil {
		r.AgentError = err.Error()
		return r
	}
	r.Agent = a
	return r
}
