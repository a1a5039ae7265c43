//go:build windows

package service

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
)

// dispatcherRefused is set once svc.Run has said this process is not a
// service: StartServiceCtrlDispatcher may be called only once per process,
// and the answer does not change.
var dispatcherRefused atomic.Bool

func run(ctx context.Context, fn RunFunc, opts RunOptions) error {
	if dispatcherRefused.Load() || !askDispatcher(parentImage()) {
		return runInteractive(ctx, fn, opts)
	}
	// svc.Run decides: it fails with ERROR_FAILED_SERVICE_CONTROLLER_CONNECT
	// when the SCM did not start this process, and only then is it a
	// console program (notAService). svc.IsWindowsService is not asked: it
	// wants session 0, which Wine's services.exe and Windows containers do
	// not give a service.
	h := &handler{ctx: ctx, fn: fn, opts: opts}
	err := svc.Run(Name, h)
	switch {
	case notAService(err):
		dispatcherRefused.Store(true)
		return runInteractive(ctx, fn, opts)
	case err != nil:
		return fmt.Errorf("service: svc.Run: %w", err)
	}
	return h.err
}

// parentImage returns the executable name of this process's parent, and
// whether the process list could be read. A parent missing from the list
// (it exited, or under Wine it is a Unix process) is "": it is not
// services.exe, which runs as long as Windows does.
func parentImage() (string, bool) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return "", false
	}
	defer windows.CloseHandle(snap)
	names := map[uint32]string{}
	var parent uint32
	self := windows.GetCurrentProcessId()
	e := windows.ProcessEntry32{Size: uint32(unsafe.Sizeof(windows.ProcessEntry32{}))}
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		names[e.ProcessID] = windows.UTF16ToString(e.ExeFile[:])
		if e.ProcessID == self {
			parent = e.ParentProcessID
		}
	}
	if err != windows.ERROR_NO_MORE_FILES {
		return "", false
	}
	return names[parent], true
}

// runInteractive runs fn from a console: Ctrl-C stops; reloads come only to
// the service.
func runInteractive(ctx context.Context, fn RunFunc, opts RunOptions) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	ready := sync.OnceFunc(func() { opts.Log.Info().Msg("ready") })
	return fn(ctx, Hooks{Ready: ready, Reload: make(chan struct{}), Reloaded: func() {}})
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
	if el, err := eventlog.Open(Name); err == nil {
		h.elog = el
		defer el.Close()
	} else {
		h.opts.Log.Warn().Err(err).Msg("opening the Event Log")
	}
	// PreShutdown as well as Shutdown: the SCM then waits for the stop up
	// to the service's preshutdown timeout (install sets it from the drain
	// grace, PreshutdownTimeout) instead of the ~20 s it gives at shutdown.
	const accepts = svc.AcceptStop | svc.AcceptShutdown | svc.AcceptPreShutdown | svc.AcceptParamChange
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
			var sinceStop time.Duration
			if stopping {
				sinceStop = time.Since(stopStarted)
			}
			switch onTick(time.Since(started), sinceStop, running, stopping, h.opts.StartTimeout, h.opts.StopTimeout) {
			case tickStopPending:
				checkpoint++
				changes <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: hint}
			case tickStartPending:
				checkpoint++
				changes <- svc.Status{State: svc.StartPending, CheckPoint: checkpoint, WaitHint: hint}
			case tickStartTimedOut:
				// Out of start-up budget: say why before the SCM gives up.
				h.event(EventStartFailed, "error", fmt.Sprintf("credagent did not become ready within %v; stopping", h.opts.StartTimeout))
				stopping, stopStarted, startTimedOut = true, time.Now(), true
				cancel()
			case tickStopOverdue:
				// The agent hangs: report stopped without it (the process
				// then exits), so that the SCM is not left waiting and,
				// after a failed start, recovery restarts the service.
				return h.finish(errStopOverdue(h.opts.StopTimeout), stopAsked, startTimedOut, running)
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
			case svc.Stop, svc.Shutdown, svc.PreShutdown:
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
			return h.finish(err, stopAsked, startTimedOut, running)
		}
	}
}

// finish logs how the agent ended and returns Execute's result: a
// service-specific exit code for a failure, which is a non-crash failure
// the SCM runs the recovery actions for (OnNonCrashFailures).
func (h *handler) finish(err error, stopAsked, startTimedOut, running bool) (bool, uint32) {
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
		return true, 1
	}
	h.event(EventInfo, "info", "credagent stopped")
	return false, 0
}
