//go:build !windows

package service

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// reloadWait bounds how long systemd hears RELOADING before READY.
const reloadWait = 30 * time.Second

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
	ready := sync.OnceFunc(func() {
		isReady.Store(true)
		log.Info().Str("service", Name).Msg("ready")
		if err := n.Notify(notifyReady, statusMessage("serving")); err != nil {
			log.Warn().Err(err).Msg("telling systemd the agent is ready")
		}
	})
	reload := make(chan struct{})
	reloaded := make(chan struct{}, 1)
	markReloaded := func() {
		select {
		case reloaded <- struct{}{}:
		default:
		}
	}
	done := make(chan error, 1)
	go func() { done <- fn(ctx, Hooks{Ready: ready, Reload: reload, Reloaded: markReloaded}) }()

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
			// The daemon takes the request when it is free to reload and
			// reports when it has handled it; READY=1 follows that. A
			// rejected config leaves the old one running, which is "ready"
			// as well. A daemon that does not report within reloadWait is
			// taken to be done, so systemd is not left waiting.
			select {
			case <-reloaded: // a stale report from before this request
			default:
			}
			select {
			case reload <- struct{}{}:
			case <-ctx.Done():
				continue
			case err := <-done:
				stopping()
				return err
			}
			select {
			case <-reloaded:
			case <-time.After(reloadWait):
				log.Warn().Dur("waited", reloadWait).Msg("the reload did not report completion; telling systemd the agent is ready")
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
