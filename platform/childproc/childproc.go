// Package childproc starts a command as a direct child that hands over
// secrets through inherited pipes, forwards signals to it, and reports how
// it ended, per OS.
//
// Linux: a pipe's read end is passed with exec.Cmd.ExtraFiles, so the
// child sees it as file descriptor 3, 4, ...; every catchable signal
// credagent receives is sent on to the child; a child killed by a signal
// is reported as that signal, which the caller re-raises on itself.
//
// Windows: the read end is marked inheritable and passed in
// SysProcAttr.AdditionalInheritedHandles (PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
// so only the listed handles are inherited); the child sees the same
// handle value. Console control events (Ctrl+C, Ctrl+Break) reach every
// process attached to the console, the child included, so they are
// swallowed here rather than forwarded, and credagent waits for the child.
package childproc

import (
	"os"
	"os/exec"
)

// Inherit arranges for f to be inherited by cmd's process, which must not
// have been started, and returns how the child names it: a file descriptor
// number on Linux, a handle value on Windows, in decimal.
func Inherit(cmd *exec.Cmd, f *os.File) (string, error) { return inherit(cmd, f) }

// Forward sends the signals this process receives on to p, from right
// after p's Start until stop is called.
func Forward(p *os.Process) (stop func()) { return forward(p) }

// Outcome says how a child ended: Code is its exit code; when it was
// killed by a signal (Unix), Signal is set and Code is 128 plus the signal
// number, as shells report it.
type Outcome struct {
	Code   int
	Signal os.Signal
}

// OutcomeOf reads the outcome from a finished process's state.
func OutcomeOf(st *os.ProcessState) Outcome { return outcomeOf(st) }

// Reraise ends this process the way the child ended: by the same signal
// when it was killed by one (Unix), else it returns and the caller exits
// with Outcome.Code.
func Reraise(o Outcome) { reraise(o) }

// Protect makes this process's memory unreadable to other processes of
// its user where the OS allows (Linux: not dumpable, which also stops
// ptrace by non-root users). It is reset by exec, so the child is not
// affected. It returns an error only for the record; nothing depends on it.
func Protect() error { return protect() }
