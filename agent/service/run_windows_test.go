package service

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/windows/svc"
)

// A test binary is not started by the SCM: svc.Run must fail with
// ERROR_FAILED_SERVICE_CONTROLLER_CONNECT and Run then run the agent
// interactively, whatever svc.IsWindowsService would have guessed.
func TestRunFromAConsoleRunsInteractively(t *testing.T) {
	parent, known := parentImage()
	t.Logf("parent %q (found %v): asks the dispatcher %v", parent, known, askDispatcher(parent, known))
	ran := false
	err := Run(context.Background(), func(ctx context.Context, h Hooks) error {
		ran = true
		h.Ready()
		return nil
	}, RunOptions{Log: zerolog.Nop()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !ran {
		t.Fatal("the run function did not run")
	}
}

// executeHung drives the SCM handler with an agent that never returns, and
// returns Execute's result and how long it took.
func executeHung(t *testing.T, opts RunOptions, stop bool) (bool, uint32, *handler, time.Duration) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	h := &handler{ctx: context.Background(), opts: opts.withDefaults(), fn: func(ctx context.Context, hk Hooks) error {
		if stop {
			hk.Ready()
		}
		<-release // ignores ctx: hung
		return nil
	}}
	h.opts.Log = zerolog.Nop()
	req := make(chan svc.ChangeRequest, 1)
	changes := make(chan svc.Status, 1024)
	if stop {
		go func() {
			for s := range changes {
				if s.State == svc.Running {
					req <- svc.ChangeRequest{Cmd: svc.Stop}
					break
				}
			}
			for range changes {
			}
		}()
	} else {
		go func() {
			for range changes {
			}
		}()
	}
	start := time.Now()
	type res struct {
		specific bool
		code     uint32
	}
	done := make(chan res, 1)
	go func() { s, c := h.Execute(nil, req, changes); done <- res{s, c} }()
	select {
	case r := <-done:
		return r.specific, r.code, h, time.Since(start)
	case <-time.After(stopBudget(opts.StopTimeout) + opts.StartTimeout + time.Minute):
		t.Fatal("Execute waits for ever for a hung agent")
	}
	return false, 0, nil, 0
}

// R2: an agent that hangs after a stop request is left after the stop
// budget; the stop was asked, so the exit is clean (no restart of a
// service an operator stopped), and the reason is kept.
func TestExecuteStopsWaitingForAHungAgent(t *testing.T) {
	t.Parallel()
	specific, code, h, took := executeHung(t, RunOptions{StopTimeout: time.Second, StartTimeout: time.Minute}, true)
	if specific || code != 0 {
		t.Errorf("exit (%v, %d), want a clean stop after an operator's Stop", specific, code)
	}
	if h.err == nil {
		t.Error("the hang is not reported")
	}
	if took > stopBudget(time.Second)+2*pendingTick+time.Second {
		t.Errorf("took %v, budget %v", took, stopBudget(time.Second))
	}
}

// R2: a start that runs out of budget and an agent that then hangs: the
// service stops with a service-specific exit code, so recovery restarts it.
func TestExecuteFailsAHungStart(t *testing.T) {
	t.Parallel()
	specific, code, h, _ := executeHung(t, RunOptions{StopTimeout: time.Second, StartTimeout: time.Millisecond}, false)
	if !specific || code == 0 {
		t.Errorf("exit (%v, %d), want a service-specific failure so that recovery runs", specific, code)
	}
	if h.err == nil || errors.Is(h.err, context.Canceled) {
		t.Errorf("reason %v", h.err)
	}
}

// The dispatcher itself refuses a process the SCM did not start, with the
// error notAService recognises (about 11 s under Wine).
func TestDispatcherRefusesAConsoleProcess(t *testing.T) {
	if dispatcherRefused.Load() {
		t.Skip("the dispatcher already answered in this process")
	}
	h := &handler{ctx: context.Background(), opts: RunOptions{Log: zerolog.Nop()}.withDefaults(),
		fn: func(context.Context, Hooks) error { return nil }}
	err := svc.Run(Name, h)
	if !notAService(err) {
		t.Fatalf("svc.Run from a test binary: %v, want ERROR_FAILED_SERVICE_CONTROLLER_CONNECT", err)
	}
	dispatcherRefused.Store(true)
}
