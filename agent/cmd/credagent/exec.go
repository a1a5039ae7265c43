package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/credagent/credagent/platform/childproc"
	"github.com/credagent/credagent/platform/paths"
)

// Exit codes of credagent exec itself, chosen like env(1) and docker run's
// so that they are told apart from the command's own.
const (
	execFailed     = 125 // credagent could not resolve or hand over the credentials
	execCannotRun  = 126 // the command was found but could not be started
	execNotFound   = 127 // the command was not found
	execUsageError = 2
)

// credFlag is one --cred VAR=NAME.
type credFlag struct{ prefix, name string }

type credFlags []credFlag

var envPrefix = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (c *credFlags) String() string { return "" }

func (c *credFlags) Set(v string) error {
	prefix, name, ok := strings.Cut(v, "=")
	if !ok || name == "" || !envPrefix.MatchString(prefix) {
		return fmt.Errorf("want VAR=NAME, VAR a variable name prefix, got %q", v)
	}
	for _, o := range *c {
		if strings.EqualFold(o.prefix, prefix) {
			return fmt.Errorf("variable prefix %q given twice", prefix)
		}
	}
	*c = append(*c, credFlag{prefix, name})
	return nil
}

var execFlags struct {
	apiFlags
	creds  credFlags
	useEnv bool
}

func init() {
	register(&command{
		name:    "exec",
		summary: "run a command with credentials handed over on inherited pipes, then wipe them",
		usage: `credagent exec [--socket PATH | --dev DIR] [--run-id ID] [--flow-id ID] [--env] --cred VAR=NAME... -- COMMAND [ARGS...]

Resolves every --cred NAME in one request, then runs COMMAND directly (no
shell) with, for each VAR=NAME:

  VAR_USERNAME     the account's username
  VAR_PASSWORD_FD  a file descriptor (Windows: an inherited handle value)
                   from which the child reads the password, to end of file,
                   without a trailing newline
  VAR_PASSWORD     the password itself, only with --env: any process of the
                   same user can read it from /proc/PID/environ (on Windows
                   from the process's PEB) for as long as the child runs

Nothing is written to disk. credagent zeroes its copy of each password as
soon as it is written into the pipe, forwards signals to the command, and
exits with the command's exit code (or, when a signal ended the command,
by the same signal). Its own failures exit 125 (credentials not resolved),
126 (command not startable) or 127 (command not found).

Example:
  credagent exec --run-id "$RUN" --cred DB=legacy-db -- /opt/etl/load --password-fd-env DB_PASSWORD_FD
  credagent exec --dev ./dev --env --cred SAP=sap-prod-admin -- python3 flow.py`,
		flags: func(fs *flag.FlagSet) {
			f := &execFlags
			fs.StringVar(&f.socket, "socket", "", "the agent's socket path or pipe name (default: "+paths.Default().Socket+")")
			fs.StringVar(&f.dev, "dev", "", "dev mode: talk to the agent whose dev directory is `DIR` (socket DIR/agent.sock)")
			fs.StringVar(&f.runID, "run-id", "", "run ID, sent to CCP as the Reason (default: credagent-cli-<host>)")
			fs.StringVar(&f.flowID, "flow-id", "", "flow ID, for the audit log")
			fs.DurationVar(&f.timeout, "timeout", time.Minute, "give up resolving after this long (the command itself is not bounded)")
			fs.Var(&f.creds, "cred", "`VAR=NAME`: hand credential NAME over as VAR_USERNAME and VAR_PASSWORD_FD (repeatable)")
			fs.BoolVar(&f.useEnv, "env", false, "also put each password in VAR_PASSWORD (readable in /proc/PID/environ)")
		},
		run: runExec,
	})
}

func runExec(args []string, stdout, stderr io.Writer) error {
	f := &execFlags
	defer func() { f.creds, f.useEnv = nil, false }()
	if len(args) == 0 {
		return &exitError{code: execUsageError, err: errors.New("name the command to run after --")}
	}
	if len(f.creds) == 0 {
		return &exitError{code: execUsageError, err: errors.New("give at least one --cred VAR=NAME")}
	}
	childproc.Protect()

	names := make([]string, len(f.creds))
	for i, c := range f.creds {
		names[i] = c.name
	}
	c, err := f.client()
	if err != nil {
		return &exitError{code: execFailed, err: err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	res, err := c.Resolve(ctx, f.run(), f.flowID, names...)
	cancel()
	c.Close()
	if err != nil {
		return &exitError{code: execFailed, err: err}
	}
	defer res.Wipe()
	if err := res.Err(); err != nil {
		return &exitError{code: execFailed, err: err}
	}

	path, err := exec.LookPath(args[0])
	if err != nil {
		return &exitError{code: execNotFound, err: err}
	}
	cmd := exec.Command(path, args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr

	ours := map[string]bool{}
	for _, cf := range f.creds {
		for _, s := range []string{"_USERNAME", "_PASSWORD_FD", "_PASSWORD"} {
			ours[strings.ToUpper(cf.prefix+s)] = true
		}
	}
	for _, kv := range os.Environ() {
		// Never pass on a stale value of a variable this run sets.
		if k, _, _ := strings.Cut(kv, "="); !ours[strings.ToUpper(k)] {
			cmd.Env = append(cmd.Env, kv)
		}
	}

	type handover struct {
		r, w *os.File
		pw   []byte
	}
	var hs []handover
	var envBufs [][]byte
	var wg sync.WaitGroup
	defer func() {
		for _, h := range hs {
			h.r.Close()
			h.w.Close() // unblocks a write that nobody reads
		}
		// The writers are done long before in practice; a write that a
		// grandchild holds unread must not keep credagent from exiting.
		writersDone := make(chan struct{})
		go func() { wg.Wait(); close(writersDone) }()
		select {
		case <-writersDone:
		case <-time.After(time.Second):
		}
		for _, b := range envBufs {
			clear(b)
		}
	}()
	for i, cf := range f.creds {
		cr := res.Get(names[i])
		r, w, err := os.Pipe()
		if err != nil {
			return &exitError{code: execFailed, err: fmt.Errorf("pipe: %w", err)}
		}
		hs = append(hs, handover{r: r, w: w, pw: cr.Password.Reveal()})
		ref, err := childproc.Inherit(cmd, r)
		if err != nil {
			return &exitError{code: execFailed, err: err}
		}
		cmd.Env = append(cmd.Env, cf.prefix+"_USERNAME="+cr.Username, cf.prefix+"_PASSWORD_FD="+ref)
		if f.useEnv {
			// Built in a buffer of our own, so that it can be zeroed once
			// the runtime has copied it for the system call.
			b := make([]byte, 0, len(cf.prefix)+len("_PASSWORD=")+cr.Password.Len())
			b = append(append(b, cf.prefix+"_PASSWORD="...), cr.Password.Reveal()...)
			envBufs = append(envBufs, b)
			cmd.Env = append(cmd.Env, unsafe.String(unsafe.SliceData(b), len(b)))
		}
	}

	// The passwords go into the pipes before the child starts; a pipe's
	// buffer holds far more than a password, so the writes return at once
	// and each copy is zeroed before the command runs. A write that would
	// block (a password larger than the buffer) finishes once the child
	// reads, or fails when it exits.
	for _, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.w.Write(h.pw)
			clear(h.pw)
			h.w.Close()
		}()
	}
	if err := cmd.Start(); err != nil {
		code := execCannotRun
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = execNotFound
		}
		return &exitError{code: code, err: err}
	}
	stop := childproc.Forward(cmd.Process)
	for _, h := range hs {
		h.r.Close() // the child holds its own copy
	}
	for _, b := range envBufs {
		clear(b)
	}
	werr := cmd.Wait()
	stop()
	if cmd.ProcessState == nil {
		return &exitError{code: execCannotRun, err: werr}
	}
	o := childproc.OutcomeOf(cmd.ProcessState)
	if o.Signal != nil {
		childproc.Reraise(o)
	}
	if o.Code != 0 {
		return &exitError{code: o.Code, err: &childExit{o}, quiet: true}
	}
	return nil
}

// childExit is the command's own failure, which credagent does not print.
type childExit struct{ o childproc.Outcome }

func (e *childExit) Error() string {
	if e.o.Signal != nil {
		return "the command was ended by " + e.o.Signal.String()
	}
	return fmt.Sprintf("the command exited %d", e.o.Code)
}
