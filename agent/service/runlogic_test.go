package service

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"
)

func TestNotAService(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{syscall.Errno(1063), true}, // ERROR_FAILED_SERVICE_CONTROLLER_CONNECT
		{fmt.Errorf("svc.Run: %w", syscall.Errno(1063)), true},
		{syscall.Errno(1056), false}, // ERROR_SERVICE_ALREADY_RUNNING
		{syscall.Errno(5), false},
		{errors.New("1063"), false},
		{nil, false},
	} {
		if got := notAService(c.err); got != c.want {
			t.Errorf("notAService(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestAskDispatcher(t *testing.T) {
	for _, c := range []struct {
		parent string
		known  bool
		want   bool
	}{
		{"services.exe", true, true},
		{`C:\Windows\System32\services.exe`, true, true},
		{"SERVICES.EXE", true, true},
		{"cmd.exe", true, false},
		{"powershell.exe", true, false},
		{"", true, false}, // parent gone, or a Unix process under Wine
		{"notservices.exe", true, false},
		{"", false, true}, // the process list could not be read: ask
	} {
		if got := askDispatcher(c.parent, c.known); got != c.want {
			t.Errorf("askDispatcher(%q, %v) = %v, want %v", c.parent, c.known, got, c.want)
		}
	}
}

func TestOnTick(t *testing.T) {
	const start, stop = 90 * time.Second, 30 * time.Second
	tests := []struct {
		name                  string
		sinceStart, sinceStop time.Duration
		running, stopping     bool
		want                  tickAction
	}{
		{"starting within budget", 10 * time.Second, 0, false, false, tickStartPending},
		{"start budget spent", 90 * time.Second, 0, false, false, tickStartTimedOut},
		{"running", time.Hour, 0, true, false, tickNone},
		{"draining within the grace", time.Hour, 5 * time.Second, true, true, tickStopPending},
		{"draining in the margin", time.Hour, 35 * time.Second, true, true, tickStopPending},
		{"hung past the stop budget", time.Hour, 40 * time.Second, true, true, tickStopOverdue},
		{"hung after a start timeout", 3 * time.Minute, time.Minute, false, true, tickStopOverdue},
	}
	for _, tt := range tests {
		if got := onTick(tt.sinceStart, tt.sinceStop, tt.running, tt.stopping, start, stop); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	// A hung stop ends: after an operator's stop cleanly, after a start
	// timeout as a failure that recovery restarts.
	if _, fail := serviceOutcome(errStopOverdue(stop), true, false, start); fail {
		t.Error("a hung drain after Stop restarts a service the operator stopped")
	}
	if reason, fail := serviceOutcome(errStopOverdue(stop), false, true, start); !fail || reason == nil {
		t.Error("a hung agent after a start timeout does not fail the service")
	}
}

func TestPreshutdownTimeout(t *testing.T) {
	for _, grace := range []time.Duration{10 * time.Second, 30 * time.Second} {
		got := PreshutdownTimeout(grace)
		if got <= stopBudget(grace) {
			t.Errorf("grace %v: preshutdown %v, not more than the handler's stop budget %v", grace, got, stopBudget(grace))
		}
		if got <= 20*time.Second {
			t.Errorf("grace %v: preshutdown %v, no better than the ~20 s of a plain shutdown", grace, got)
		}
	}
}
