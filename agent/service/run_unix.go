//go:build !windows

package service

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// interactive: systemd sets INVOCATION_ID for every unit it starts, and
// NOTIFY_SOCKET for Type=notify.
func interactive() bool {
	return os.Getenv("INVOCATION_ID") == "" && os.Getenv("NOTIFY_SOCKET") == ""
}

func run(parent context.Context, fn RunFunc, opts RunOptions) error {
	return runWith(parent, fn, opts, NewNotifier())
}

// runWith is run with the notifier given, for tests.
func runWith(parent context.Context, fn RunFunc, opts RunOptions, n *Notifier) error {
	log := opts.Log
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var isReady atomic.Bool
	ready := onceFunc(func() {
		isReady.Store(true)
		log.Info().Str("service", Name).Msg("ready")
		if err := n.Notify(notifyReady, statusMessage("serving")); err != nil {
			log.Warn().Err(err).Msg("telling systemd the agent is ready")
		}
	})
	reload := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- fn(ctx, Hooks{Ready: ready, Reload: reload}) }()

	stopping := func() {
		if err := n.Notify(notifyStopping, statusMessage("stopping")); err != nil {
			log.Warn().Err(err).Msg("telling systemd the agent is stopping")
		}
	}
	for {
		select {
		case err := <-done:
			stopping()
			if err == nil && ctx.Err() == nil {
				err = errors.New("the agent stopped without being asked to")
			}
			return err
		case <-ctx.Done():
			log.Info().Str("service", Name).Msg("stopping")
			stopping()
			return <-done
		case <-hup:
			log.Info().Str("service", Name).Msg("reload requested (SIGHUP)")
			notified := false
			if isReady.Load() {
				if mono, err := monotonicNow(); err == nil {
					notified = n.Notify(reloadingMessage(mono), statusMessage("reloading")) == nil
				}
			}
			// The daemon takes the request when it is free to reload; it
			// does not report when it has finished, so READY=1 follows the
			// hand-over. A rejected config leaves the old one running, which
			// is "ready" as well.
			select {
			case reload <- struct{}{}:
			case <-ctx.Done():
				continue
			case err := <-done:
				stopping()
				return err
			}
			if notified {
				n.Notify(notifyReady, statusMessage("serving"))
			}
		}
	}
}
