package childproc

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/windows"
)

func inherit(cmd *exec.Cmd, f *os.File) (string, error) {
	h := windows.Handle(f.Fd())
	// AdditionalInheritedHandles wants handles already marked inheritable;
	// the handle list keeps them from leaking into any other child.
	if err := windows.SetHandleInformation(h, windows.HANDLE_FLAG_INHERIT, windows.HANDLE_FLAG_INHERIT); err != nil {
		return "", fmt.Errorf("childproc: SetHandleInformation: %w", err)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.AdditionalInheritedHandles = append(cmd.SysProcAttr.AdditionalInheritedHandles, syscall.Handle(h))
	return strconv.FormatUint(uint64(h), 10), nil
}

// forward swallows Ctrl+C and Ctrl+Break: Windows delivers them to the
// child too (it shares the console), and credagent must outlive the child
// to report its exit code.
func forward(p *os.Process) func() {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

func outcomeOf(st *os.ProcessState) Outcome { return Outcome{Code: st.ExitCode()} }

func reraise(Outcome) {}
