package rig

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process started by the harness. Its standard output is
// read line by line (with the time each line arrived) and copied, with its
// standard error, to a log file.
type Proc struct {
	name string
	cmd  *exec.Cmd
	// Started is when the process was started.
	Started time.Time
	// LogPath is the file its standard output and error are copied to.
	LogPath string
	onLine  func(text string, at time.Time)

	mu    sync.Mutex
	lines []stampedLine
	cond  *sync.Cond
	done  chan struct{}
	err   error // from Wait, once done is closed
}

type stampedLine struct {
	text string
	at   time.Time
}

var (
	procsMu sync.Mutex
	procs   []*Proc
)

// ProcOptions are the less common ways to start a child.
type ProcOptions struct {
	// Credential runs the child as another user (the harness must be root).
	Credential *syscall.Credential
	// OnLine, if set, receives every line of standard output as it arrives,
	// instead of the log file (for children that stream records). The first
	// lines are still kept for WaitLine.
	OnLine func(text string, at time.Time)
}

// StartProc starts argv. The child dies with the harness (Pdeathsig), and
// StopAll stops whatever is still running when the harness ends.
func StartProc(name, logPath string, argv ...string) (*Proc, error) {
	return StartProcWith(name, logPath, ProcOptions{}, argv...)
}

// StartProcWith is StartProc with options.
func StartProcWith(name, logPath string, o ProcOptions, argv ...string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p := &Proc{name: name, LogPath: logPath, done: make(chan struct{}), onLine: o.OnLine}
	p.cond = sync.NewCond(&p.mu)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stderr = logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: o.Credential}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	p.Started = time.Now()
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	procsMu.Lock()
	procs = append(procs, p)
	procsMu.Unlock()
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			at := time.Now()
			if p.onLine != nil {
				p.onLine(sc.Text(), at)
			} else {
				fmt.Fprintf(logf, "[stdout] %s\n", sc.Text())
			}
			p.mu.Lock()
			if len(p.lines) < 1000 {
				p.lines = append(p.lines, stampedLine{sc.Text(), at})
			}
			p.cond.Broadcast()
			p.mu.Unlock()
		}
		io.Copy(io.Discard, stdout)
		err := p.cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		close(p.done)
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	return p, nil
}

// WaitLine waits for a line of standard output starting with prefix and
// returns its remainder and when it arrived.
func (p *Proc) WaitLine(prefix string, timeout time.Duration) (string, time.Time, error) {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
	defer t.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for _, l := range p.lines {
			if rest, ok := strings.CutPrefix(l.text, prefix); ok {
				return rest, l.at, nil
			}
		}
		select {
		case <-p.done:
			return "", time.Time{}, fmt.Errorf("%s exited (%v) before printing %q; see %s%s", p.name, p.err, prefix, p.LogPath, tail(p.LogPath))
		default:
		}
		if time.Now().After(deadline) {
			return "", time.Time{}, fmt.Errorf("%s did not print %q within %v; see %s%s", p.name, prefix, timeout, p.LogPath, tail(p.LogPath))
		}
		p.cond.Wait()
	}
}

// tail returns the last lines of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	ls := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(ls) > 5 {
		ls = ls[len(ls)-5:]
	}
	return "\n  " + string(bytes.Join(ls, []byte("\n  ")))
}

// Stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (p *Proc) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", p.name, grace)
	}
}

// Pid is the child's process ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the child has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the child.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// StopAll stops every child still running.
func StopAll() {
	procsMu.Lock()
	ps := procs
	procs = nil
	procsMu.Unlock()
	for _, p := range ps {
		p.Stop(5 * time.Second)
	}
}
