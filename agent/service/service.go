// Package service runs the agent under the operating system's service
// manager and installs it there: a systemd unit with Type=notify on Linux, a
// Windows service with recovery actions, delayed start and its own SID.
//
// Running: Run is the one entry point for the foreground, systemd and the
// Windows SCM. It calls the agent's RunFunc with a context that Stop,
// Shutdown, SIGTERM or Ctrl-C cancel, tells the manager when the agent is
// ready (sd_notify READY=1; SERVICE_RUNNING after StartPending with wait
// hints), and turns SIGHUP or the Windows PARAMCHANGE control into a reload
// request.
//
// Why not kardianos/service's Run: on Windows it reports StartPending without
// wait hints and Running as soon as Start returns, and accepts only Stop and
// Shutdown; on Linux it knows nothing of sd_notify or SIGHUP. So Run drives
// golang.org/x/sys/windows/svc and the notify socket itself, and
// kardianos/service does what it is good at: install, uninstall, start,
// stop, restart and status (see Manager).
//
// Installing: Manager.Install is idempotent, and refuses to replace a
// service of the same name that runs another command line. On Windows it
// then sets what kardianos does not: three restart actions with back-off,
// also on non-crash failures, delayed automatic start, an unrestricted
// service SID, the Event Log source, and %ProgramData%\credagent with a
// protected DACL for SYSTEM and Administrators. On Linux it writes the unit
// the packages ship (installer/systemd/credagent.service), with ExecStart
// naming this executable.
package service

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"
)

// Name is the service's name: the systemd unit credagent.service and the
// Windows service credagent (and its Event Log source).
const Name = "credagent"

// DisplayName and Description are shown by the service managers.
const (
	DisplayName = "credagent credential agent"
	Description = "Holds the machine key, applies sealed deliveries from the portal and hands credentials to local RPA flows."
)

// Hooks connect the agent's run function to the service manager.
type Hooks struct {
	// Ready must be called once, when the key is usable and the socket
	// listens. Later calls do nothing.
	Ready func()
	// Reload receives one value for each reload request (SIGHUP, the
	// Windows PARAMCHANGE control, `credagent reload`). It is never closed.
	Reload <-chan struct{}
	// Reloaded must be called once a reload request has been handled,
	// whether the new config was applied or rejected (then the running one
	// stays, which is ready as well). systemd hears READY=1 only then.
	Reloaded func()
}

// RunFunc is the agent's whole lifetime. It returns when ctx is cancelled
// and its work has drained, or earlier with the reason it cannot run.
type RunFunc func(ctx context.Context, h Hooks) error

// RunOptions tune Run.
type RunOptions struct {
	// Log receives the lifecycle messages (they also go to the Event Log on
	// Windows).
	Log zerolog.Logger
	// StopTimeout is how long the agent may take to drain after a stop
	// request (its shutdown grace). It sizes the wait hint given to the
	// Windows SCM. Default 30s.
	StopTimeout time.Duration
	// StartTimeout is how long start-up may take before Ready, for the
	// Windows wait hints. Default 90s, the unit's TimeoutStartSec.
	StartTimeout time.Duration
}

func (o RunOptions) withDefaults() RunOptions {
	if o.StopTimeout <= 0 {
		o.StopTimeout = 30 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 90 * time.Second
	}
	return o
}

// Run runs fn until ctx is cancelled or the service manager stops the
// service, and returns fn's error (nil after a clean stop; context.Canceled
// counts as clean). It works both under a service manager and from a
// terminal, where Ctrl-C and SIGTERM stop and SIGHUP reloads.
func Run(ctx context.Context, fn RunFunc, opts RunOptions) error {
	err := run(ctx, fn, opts.withDefaults())
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
