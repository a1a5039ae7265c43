//go:build !windows

package childproc

import (
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func inherit(cmd *exec.Cmd, f *os.File) (string, error) {
	cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	// ExtraFiles[i] becomes descriptor 3+i in the child.
	return strconv.Itoa(2 + len(cmd.ExtraFiles)), nil
}

// forwarded are the signals sent on to the child. SIGKILL and SIGSTOP
// cannot be caught; SIGCHLD, SIGURG (the Go runtime's preemption) and
// SIGPIPE are about this process itself.
var forwarded = []os.Signal{
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGTSTP,
	syscall.SIGCONT, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGALRM,
}

func forward(p *os.Process) func() {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, forwarded...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				p.Signal(s)
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

func outcomeOf(st *os.ProcessState) Outcome {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Outcome{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return Outcome{Code: st.ExitCode()}
}

func reraise(o Outcome) {
	s, ok := o.Signal.(syscall.Signal)
	if !ok {
		return
	}
	signal.Reset(s)
	syscall.Kill(os.Getpid(), s)
	// A signal whose default action is not to end the process (or one
	// that is blocked) leaves us here: exit with the code instead.
	time.Sleep(100 * time.Millisecond)
}
