package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/credagent/credagent/agent/daemon"
	"github.com/credagent/credagent/agent/logging"
	"github.com/credagent/credagent/agent/procs"
	"github.com/credagent/credagent/agent/service"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/logfile"
	"github.com/credagent/credagent/platform/paths"
)

func init() {
	var configPath, devDir string
	register(&command{
		name:    "run",
		summary: "run the agent in the foreground or under the service manager",
		usage: `credagent run [--config FILE] | --dev DIR

Runs the agent until it is stopped (Ctrl-C, SIGTERM, or the service manager).
Under systemd or the Windows SCM it reports readiness and takes reloads
(SIGHUP, PARAMCHANGE, 'credagent reload').

--dev DIR runs as an ordinary user with everything under DIR: a file key
store, the inbox, the state, the socket DIR/agent.sock, and a dev portal
signing key pair (DIR/portal-signing.key) that the agent trusts. Only the
user who started it may call it. A DIR/config.yaml, if present, is loaded
over the dev defaults.

Examples:
  sudo credagent run --config /etc/credagent/config.yaml
  credagent run --dev /tmp/credagent-dev`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&configPath, "config", paths.Default().ConfigFile, "config file")
			fs.StringVar(&devDir, "dev", "", "dev mode: keep everything under `DIR`, run as the current user")
		},
		run: func(args []string, stdout, stderr io.Writer) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			return runAgent(configPath, devDir, stdout, stderr)
		},
	})
}

func runAgent(configPath, devDir string, stdout, stderr io.Writer) error {
	govern := procs.SmallDaemon()
	var cfg config.Config
	var err error
	dev := devDir != ""
	if dev {
		if devDir, err = filepath.Abs(devDir); err != nil {
			return err
		}
		cfg, err = daemon.DevConfig(devDir)
		configPath = ""
	} else {
		cfg, err = config.Load(configPath)
	}
	if err != nil {
		return err
	}
	var fileWarnings []string
	if !dev {
		// The files the service trusts: nobody but SYSTEM and
		// Administrators (on Windows) may have changed the config or be
		// able to redirect the logs.
		if fileWarnings, err = service.CheckServiceFiles(configPath, cfg.Log.File, cfg.Log.AuditFile); err != nil {
			return err
		}
	}
	logs, err := logging.New(daemon.LogOptions(cfg), stderr, func(path string, maxBytes int64, maxFiles int) (io.WriteCloser, error) {
		return logfile.Open(path, logfile.Options{MaxBytes: maxBytes, MaxFiles: maxFiles})
	})
	if err != nil {
		return err
	}
	defer logs.Close()
	log := logs.Log
	for _, w := range fileWarnings {
		log.Warn().Msg(w)
	}
	if govern {
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		go procs.Govern(ctx, procs.Options{Log: log})
	}

	run := func(ctx context.Context, h service.Hooks) error {
		return daemon.Run(ctx, daemon.Options{
			Config:      cfg,
			ConfigPath:  configPath,
			Dev:         dev,
			DevDir:      devDir,
			Log:         log,
			Audit:       logs.Audit,
			SetLogLevel: logs.SetLevel,
			Reload:      h.Reload,
			Reloaded:    h.Reloaded,
			Ready: func() {
				if dev {
					fmt.Fprintf(stdout, "credagent (dev) listening on %s\n", cfg.Paths.Socket)
				}
				h.Ready()
			},
		})
	}
	err = service.Run(context.Background(), run, service.RunOptions{Log: log, StopTimeout: daemon.StopTimeout(cfg)})
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error().Err(err).Msg("credagent failed")
		return err
	}
	return nil
}
