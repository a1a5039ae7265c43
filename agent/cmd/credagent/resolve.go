package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/platform/paths"
)

// apiFlags are the flags resolve and check share.
type apiFlags struct {
	socket  string
	dev     string
	runID   string
	flowID  string
	asJSON  bool
	timeout time.Duration
}

func (f *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.socket, "socket", "", "the agent's socket path or pipe name (default: "+paths.Default().Socket+")")
	fs.StringVar(&f.dev, "dev", "", "dev mode: talk to the agent whose dev directory is `DIR` (socket DIR/agent.sock)")
	fs.StringVar(&f.runID, "run-id", "", "run ID, sent to CCP as the Reason (default: credagent-cli-<host>)")
	fs.StringVar(&f.flowID, "flow-id", "", "flow ID, for the audit log")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "give up after this long")
}

func (f *apiFlags) client() (*client.Client, error) {
	if f.socket != "" && f.dev != "" {
		return nil, &exitError{code: 2, err: errors.New("give --socket or --dev, not both")}
	}
	path := f.socket
	switch {
	case f.dev != "":
		p, err := devSocket(f.dev)
		if err != nil {
			return nil, err
		}
		path = p
	case path == "":
		path = paths.Default().Socket
	}
	return client.New(path), nil
}

// devSocket is the socket of the dev-mode agent of dir. The path is made
// absolute first, as `credagent run --dev` does: on Windows the pipe's name
// is derived from it, so "./dev" and its absolute form name different pipes.
func devSocket(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	return paths.Dev(abs).Socket, nil
}

// call checks that names were given, connects to the agent, and runs one
// API call bounded by --timeout. A failure of the call itself is also
// printed as JSON with --json, so a script always gets JSON.
func (f *apiFlags) call(stdout io.Writer, names []string, fn func(ctx context.Context, c *client.Client) error) error {
	if len(names) == 0 {
		return &exitError{code: 2, err: errors.New("name at least one credential")}
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	if err := fn(ctx, c); err != nil {
		if f.asJSON {
			json.NewEncoder(stdout).Encode(map[string]any{"error": toCLIError(err)})
		}
		return err
	}
	return nil
}

func (f *apiFlags) run() string {
	if f.runID != "" {
		return f.runID
	}
	host, _ := os.Hostname()
	return "credagent-cli-" + host
}

var resolveFlags struct {
	apiFlags
	show bool
}

func init() {
	register(&command{
		name:    "resolve",
		summary: "ask the running agent for credentials, as a flow runner would",
		usage: `credagent resolve [--socket PATH | --dev DIR] [--run-id ID] [--flow-id ID] [--json] [--show] NAME...

Prints each credential's username and, unless --show is given, only the
length of its password. Exits 1 if any name failed.

Example:
  credagent resolve --run-id test-42 sap-prod
  credagent resolve --dev ./dev --json --show sap-prod db-report`,
		flags: func(fs *flag.FlagSet) {
			resolveFlags.register(fs)
			fs.BoolVar(&resolveFlags.show, "show", false, "print passwords in clear")
		},
		run: runResolve,
	})
}

// cliCredential is one line of --json output.
type cliCredential struct {
	Name                    string            `json:"name"`
	Username                string            `json:"username,omitempty"`
	Password                string            `json:"password,omitempty"`
	PasswordLength          int               `json:"password_length,omitempty"`
	Properties              map[string]string `json:"properties,omitempty"`
	FromCache               bool              `json:"from_cache,omitempty"`
	Stale                   bool              `json:"stale,omitempty"`
	CacheAgeMS              int64             `json:"cache_age_ms,omitempty"`
	PasswordChangeInProcess bool              `json:"password_change_in_process,omitempty"`
	Error                   *cliError         `json:"error,omitempty"`
}

// cliError is an error line of --json output: the agent's own error
// object, or agent_unreachable when no answer came.
type cliError = apitype.Error

func toCLIError(err error) *cliError {
	var e *client.Error
	if errors.As(err, &e) {
		return &cliError{Class: e.Class, Code: e.Code, Message: e.Message, CorrelationID: e.CorrelationID, Rule: e.Rule}
	}
	return &cliError{Class: apitype.ClassAgentUnreachable, Message: err.Error()}
}

func runResolve(names []string, stdout, _ io.Writer) error {
	f := &resolveFlags
	var res *client.Resolution
	err := f.call(stdout, names, func(ctx context.Context, c *client.Client) (err error) {
		res, err = c.Resolve(ctx, f.run(), f.flowID, names...)
		return err
	})
	if err != nil {
		return err
	}
	defer res.Wipe()
	failed := 0
	out := make([]cliCredential, 0, len(res.Credentials))
	for _, cr := range res.Credentials {
		o := cliCredential{Name: cr.Name}
		if cr.Err != nil {
			failed++
			o.Error = toCLIError(cr.Err)
		} else {
			o.Username, o.PasswordLength, o.Properties = cr.Username, cr.Password.Len(), cr.Properties
			o.FromCache, o.Stale, o.CacheAgeMS = cr.FromCache, cr.Stale, cr.CacheAge.Milliseconds()
			o.PasswordChangeInProcess = cr.PasswordChangeInProcess
			if f.show {
				// The operator asked for it; a Go string cannot be wiped.
				o.Password = cr.Password.RevealString()
			}
		}
		out = append(out, o)
	}
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	} else {
		for _, o := range out {
			fmt.Fprintln(stdout, describe(o, f.show))
		}
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d credentials failed", failed, len(names))}
	}
	return nil
}

func describe(o cliCredential, show bool) string {
	if o.Error != nil {
		return o.Name + ": " + describeError(o.Error)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: username=%q", o.Name, o.Username)
	if show {
		fmt.Fprintf(&b, " password=%q", o.Password)
	} else {
		fmt.Fprintf(&b, " password=<hidden, %d bytes>", o.PasswordLength)
	}
	if o.FromCache {
		fmt.Fprintf(&b, " (from cache, %v old", (time.Duration(o.CacheAgeMS) * time.Millisecond).Round(time.Second))
		if o.Stale {
			b.WriteString(", stale: CCP unreachable")
		}
		b.WriteString(")")
	}
	if o.PasswordChangeInProcess {
		b.WriteString(" (password change in process)")
	}
	return b.String()
}

func describeError(e *cliError) string {
	s := "error " + string(e.Class)
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	s += ": " + e.Message
	if e.Rule != "" {
		s += " [rule " + e.Rule + "]"
	}
	if e.CorrelationID != "" {
		s += " [correlation " + e.CorrelationID + "]"
	}
	return s
}
