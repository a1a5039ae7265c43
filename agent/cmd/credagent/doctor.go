package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/credagent/credagent/agent/daemon"
	"github.com/credagent/credagent/agent/localapi/apitype"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/agent/service"
	"github.com/credagent/credagent/agent/service/doctor"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/harden"
	"github.com/credagent/credagent/platform/keystore"
)

// errDoctorFailed is doctor's error when a check failed; the lines above it
// say which.
var errDoctorFailed = errors.New("some checks failed")

// doctorEnv completes the environment with what other packages provide: the
// key store backends, and the agent's own reports over the local API.
func doctorEnv(env *doctor.Env) {
	// The config check runs first and fills env.Config when it loads.
	socket := func() string {
		if env.Config != nil {
			return env.Config.Paths.Socket
		}
		return config.Default().Paths.Socket
	}
	// The agent's own view, fetched once, for the checks that need it.
	var st *apitype.Status
	var stErr error
	agent := func() (*apitype.Status, error) {
		if st == nil && stErr == nil {
			st, stErr = fetchStatus(socket())
		}
		return st, stErr
	}
	env.Hardening = func(context.Context) (harden.Report, error) {
		s, err := agent()
		if err != nil {
			return harden.Report{}, fmt.Errorf("the agent is not reachable: %w", err)
		}
		return s.Hardening, nil
	}
	env.Certificates = func(context.Context) ([]doctor.Certificate, error) {
		s, err := agent()
		if err != nil {
			return nil, err
		}
		var out []doctor.Certificate
		for _, a := range s.Applications {
			id := a.AppID
			if a.Owner != "" {
				id += " [owner " + a.Owner + "]" // two owners may share an AppID
			}
			out = append(out, doctor.Certificate{AppID: id, NotAfter: a.NotAfter})
		}
		return out, nil
	}
	env.Stores = func(ctx context.Context) ([]doctor.Result, error) {
		c := client.New(socket())
		defer c.Close()
		prs, err := c.ProbeStores(ctx)
		if err != nil {
			return nil, fmt.Errorf("the agent is not reachable: %w", err)
		}
		out := make([]doctor.Result, 0, len(prs))
		for _, p := range prs {
			out = append(out, doctor.Result{Name: p.Name, Level: doctor.Level(p.Level), Detail: p.Detail, Fix: p.Fix})
		}
		return out, nil
	}
	env.Feed = func(context.Context) ([]doctor.FeedAddress, error) {
		s, err := agent()
		if err != nil {
			return nil, fmt.Errorf("the agent is not reachable: %w", err)
		}
		var out []doctor.FeedAddress
		for _, f := range s.Feed {
			out = append(out, doctor.FeedAddress{Address: f.Address, Seq: f.Seq, Expires: f.Expires, Expired: f.Expired, LastError: f.LastError})
		}
		return out, nil
	}
	env.OpenKeyStore = openKeyStore
	env.Service = func(context.Context) []doctor.Result {
		var out []doctor.Result
		for _, f := range (service.Manager{ConfigPath: env.ConfigPath}).Inspect() {
			out = append(out, doctor.Result{Name: f.Name, Level: doctor.Level(f.Level), Detail: f.Detail, Fix: f.Fix})
		}
		return out
	}
}

func init() {
	var sf serviceFlags
	var asJSON bool
	var timeout time.Duration
	var devDir string
	register(&command{
		name:    "doctor",
		summary: "check the config, key, permissions, hardening, certificates and stores",
		usage: `credagent doctor [--json] [--config FILE | --dev DIR] [--timeout D]

Runs every check and prints one line each, PASS, WARN or FAIL, with the fix
under each failure. Exits 1 if any check failed.

Example:
  sudo credagent doctor`,
		flags: func(fs *flag.FlagSet) {
			sf.register(fs)
			fs.BoolVar(&asJSON, "json", false, "print JSON")
			fs.DurationVar(&timeout, "timeout", 15*time.Second, "time allowed for each check")
			fs.StringVar(&devDir, "dev", "", "check the dev-mode agent of `DIR` (credagent run --dev)")
		},
		run: func(args []string, stdout, stderr io.Writer) error {
			env := &doctor.Env{ConfigPath: sf.config}
			if devDir != "" {
				c, err := daemon.DevConfig(devDir)
				if err != nil {
					return err
				}
				env.ConfigPath, env.Config = "", &c
			}
			doctorEnv(env)
			rs := doctor.Run(context.Background(), doctor.Checks(env), timeout)
			if asJSON {
				doctor.RenderJSON(stdout, rs)
			} else {
				doctor.Render(stdout, rs)
			}
			if doctor.Worst(rs) == doctor.Fail {
				return &exitError{code: 1, err: errDoctorFailed}
			}
			return nil
		},
	})
}

// openKeyStore opens the key store the config names, for doctor and enroll.
func openKeyStore(c config.KeyStore) (keystore.Store, error) {
	return keystore.Open(keystore.Options{Backend: c.Backend, Dir: c.Dir, TPMDevice: c.TPMDevice})
}
