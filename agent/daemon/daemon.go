// Package daemon is the agent's lifecycle: it builds the parts (key store,
// state and inbox, resolver, local API), runs them under one context, and
// stops them cleanly.
//
// Run is the same for the foreground, systemd and the Windows SCM: the
// service layer (agent/service) turns stop and shutdown into a context
// cancel, and SIGHUP or the Windows PARAMCHANGE control into a reload.
//
// The config file (package config) stops here: the daemon translates it
// once into each part's own options (settings.go), and the parts below
// never import it.
package daemon

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/daemon/task"
	"github.com/credagent/credagent/agent/feed"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/agent/localapi"
	"github.com/credagent/credagent/agent/metrics"
	"github.com/credagent/credagent/agent/resolve"
	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/agent/version"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/harden"
	"github.com/credagent/credagent/platform/keystore"
	"github.com/rs/zerolog"
)

// Options configure Run.
type Options struct {
	Config config.Config
	// ConfigPath is re-read on reload. Empty with Dev: DevDir is re-read.
	ConfigPath string
	// Dev is dev mode: only the starting user may call, everything lives
	// under DevDir.
	Dev    bool
	DevDir string
	// Log is the operational log; Audit the audit stream.
	Log   zerolog.Logger
	Audit zerolog.Logger
	// SetLogLevel, if set, changes the level of Log (logging.Logs.SetLevel):
	// a reload applies log.level with it. Nil: log.level waits for a
	// restart like the rest of the log section.
	SetLogLevel func(level string) error
	// Ready is called once the machine key is usable (or known to need
	// re-enrolment) and the socket listens.
	Ready func()
	// Reload receives a value for each reload request; Reloaded, if set, is
	// called once each request has been handled (applied or rejected).
	Reload   <-chan struct{}
	Reloaded func()
	// OnEvent, if set, sees every delivery applied or rejected.
	OnEvent func(inbox.Event)
	// KeyStore, if set, is used instead of opening the configured one
	// (tests and benchmarks).
	KeyStore keystore.Store
	// SkipHardening leaves the process as it is (tests that run the daemon
	// in-process).
	SkipHardening bool
}

// Run runs the agent until ctx is cancelled, then drains in-flight
// resolutions within the configured grace and returns. It returns early with
// the reason the agent cannot run.
func Run(ctx context.Context, opts Options) error {
	a, err := newAgent(ctx, opts)
	if a != nil {
		defer a.close()
	}
	if err != nil {
		return err
	}
	return a.run(ctx)
}

// agent is the built agent: its parts, and what it took from the config.
type agent struct {
	opts      Options
	log       zerolog.Logger
	started   time.Time
	hardening harden.Report
	// startedCfg is the config the agent started with, and set its
	// translation: the restart settings in force. running is the config
	// last applied (by a reload), and live its live settings.
	startedCfg, running config.Config
	set                 settings
	live                atomic.Pointer[liveSettings]

	ks      keystore.Store
	closeKS bool
	keys    keystore.Keys
	keyID   string // the registered key (the pending one during a rotation)
	st      *state.State
	m       *metrics.Registry
	in      *inbox.Inbox // nil while the machine key cannot be used
	fd      *feed.Feed   // nil without a feed
	applied chan struct{}
	res     *resolverHolder
	// fetchers makes a resolver's CCP clients with the given settings.
	fetchers func(ccp.Options) resolve.FetcherFactory
	srv      *localapi.Server
	serve    func(ctx context.Context) error

	pendingRestart pendingKeys
}

// run runs the built agent's parts until ctx is done or one of them fails.
func (a *agent) run(ctx context.Context) error {
	tasks := []task.Task{
		a.serve,
		task.Go(func(ctx context.Context) { a.reloadLoop(ctx) }),
	}
	if a.in != nil {
		tasks = append(tasks, func(ctx context.Context) error {
			if err := a.in.Run(ctx); err != nil {
				return fmt.Errorf("inbox: %w", err)
			}
			return nil
		})
	}
	if a.fd != nil {
		tasks = append(tasks, a.fd.Run)
	}
	if mo := a.set.restart.Metrics; mo.Textfile != "" || mo.Listen != "" {
		mo.Log = a.log.With().Str("component", "metrics").Logger()
		tasks = append(tasks, func(ctx context.Context) error { return a.m.Run(ctx, mo) })
	}
	if a.in != nil && a.keys.Pending != nil {
		tasks = append(tasks, task.Go(func(ctx context.Context) {
			finishRotation(ctx, a.ks, a.set.restart.KeyName, a.keys, a.in, a.applied, a.log)
		}))
	}

	info := a.ks.Info()
	a.log.Info().Str("socket", a.set.restart.Socket).Str("keystore", info.Backend).Bool("hardware_key", info.HardwareBacked).
		Str("key_id", a.keyID).Str("version", version.Version).Dur("start", time.Since(a.started)).Msg("credagent ready")
	if a.opts.Ready != nil {
		a.opts.Ready()
	}
	err := task.Run(ctx, tasks...)
	if err != nil {
		a.log.Error().Err(err).Msg("a part of the agent failed; stopped")
	}
	a.log.Info().Msg("credagent stopped")
	return err
}
