//go:build windows

package service

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
)

func interactive() bool {
	is, err := svc.IsWindowsService()
	return err != nil || !is
}

func run(ctx context.Context, fn RunFunc, opts RunOptions) error {
	if interactive() {
		// From a console: Ctrl-C stops; reloads come only to the service.
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
		ready := sync.OnceFunc(func() { opts.Log.Info().Msg("ready") })
		return fn(ctx, Hooks{Ready: ready, Reload: make(chan struct{}), Reloaded: func() {}})
	}
	h := &handler{ctx: ctx, fn: fn, opts: opts}
	if el, err := eventlog.Open(Name); err == nil {
		h.elog = el
		defer el.Close()
	} else {
		opts.Log.Warn().Err(err).Msg("opening the Event Log")
	}
	if err := svc.Run(Name, h); err != nil {
		return fmt.Errorf("service: svc.Run: %w", err)
	}
	return h.err
}

// pendingTick is how often a pending state's checkpoint advances.
const pendingTick = 2 * time.Second

// handler is the svc.Handler: it reports StartPending with advancing
// checkpoints until the agent calls Ready, Running then, and StopPending
// while the agent drains.
type handler struct {
	ctx  context.Context
	fn   RunFunc
	opts RunOptions
	elog *eventlog.Log
	err  error
}

func (h *handler) event(id uint32, kind string, msg string) {
	l := h.opts.Log.Info()
	if kind == "error" {
		l = h.opts.Log.Error()
	}
	l.Str("service", Name).Msg(msg)
	if h.elog == nil {
		return
	}
	switch kind {
	case "error":
		h.elog.Error(id, msg)
	case "warning":
		h.elog.Warning(id, msg)
	default:
		h.elog.Info(id, msg)
	}
}

func (h *handler) Execute(_ []string, req <-chan svc.ChangeRequest, changes chan<- svc.Status) (bool, uint32) {
	const accepts = svc.AcceptStop | svc.AcceptShutdown | svc.AcceptParamChange
	hint := uint32(waitHint(pendingTick) / time.Millisecond)
	var checkpoint uint32 = 1
	changes <- svc.Status{State: svc.StartPending, CheckPoint: checkpoint, WaitHint: hint}

	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	readyCh := make(chan struct{})
	reload := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- h.fn(ctx, Hooks{Ready: sync.OnceFunc(func() { close(readyCh) }), Reload: reload, Reloaded: func() {}})
	}()

	tick := time.NewTicker(pendingTick)
	defer tick.Stop()
	started := time.Now()
	var stopStarted time.Time
	running, stopping := false, false
	stopAsked, startTimedOut := false, false
	status := svc.Status{State: svc.StartPending}
	for {
		select {
		case <-tick.C:
			switch {
			case stopping && time.Since(stopStarted) < h.opts.StopTimeout+10*time.Second:
				checkpoint++
				changes <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: hint}
			case !running && !stopping && time.Since(started) < h.opts.StartTimeout:
				checkpoint++
				changes <- svc.Status{State: svc.StartPending, CheckPoint: checkpoint, WaitHint: hint}
			case !running && !stopping:
				// Out of start-up budget: say why before the SCM gives up.
				h.event(EventStartFailed, "error", fmt.Sprintf("credagent did not become ready within %v; stopping", h.opts.StartTimeout))
				stopping, stopStarted, startTimedOut = true, time.Now(), true
				cancel()
			}
		case <-readyCh:
			readyCh = nil
			if stopping {
				continue
			}
			running = true
			status = svc.Status{State: svc.Running, Accepts: accepts}
			changes <- status
			h.event(EventInfo, "info", "credagent is running")
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				changes <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				stopAsked = true
				if !stopping {
					stopping, stopStarted = true, time.Now()
					checkpoint = 1
					changes <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: hint}
					h.event(EventInfo, "info", "credagent is stopping")
					cancel()
				}
			case svc.ParamChange:
				h.event(EventInfo, "info", "credagent: reload requested")
				go func() {
					select {
					case reload <- struct{}{}:
					case <-ctx.Done():
					}
				}()
				changes <- status
			}
		case err := <-done:
			reason, fail := serviceOutcome(err, stopAsked, startTimedOut, h.opts.StartTimeout)
			if reason != nil {
				h.err = reason
				if !running {
					h.event(EventStartFailed, "error", "credagent could not start: "+reason.Error())
				} else {
					h.event(EventError, "error", "credagent stopped with an error: "+reason.Error())
				}
			}
			if fail {
				// A service-specific exit code is a non-crash failure: the
				// SCM runs the recovery actions (OnNonCrashFailures).
				return true, 1
			}
			h.event(EventInfo, "info", "credagent stopped")
			return false, 0
		}
	}
}
