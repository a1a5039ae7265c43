package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/credagent/credagent/agent/service/doctor"
	"github.com/credagent/credagent/platform/harden"
)

// doctorEnv completes the environment with what other packages provide (the
// key store backends, the agent's own reports over the local API) as they
// land; unset functions make their checks WARN "skipped".
var doctorEnv = func(env *doctor.Env) {
	env.Hardening = func(context.Context) (harden.Report, error) {
		// Until the agent reports its own, check that the measures can be
		// applied in this environment.
		return harden.Apply(), nil
	}
}

func init() {
	var sf serviceFlags
	var asJSON bool
	var timeout time.Duration
	register(&command{
		name:    "doctor",
		summary: "check the config, key, permissions, hardening, certificates and stores",
		usage: `credagent doctor [--json] [--config FILE] [--timeout D]

Runs every check and prints one line each, PASS, WARN or FAIL, with the fix
under each failure. Exits 1 if any check failed.

Example:
  sudo credagent doctor`,
		flags: func(fs *flag.FlagSet) {
			sf.register(fs)
			fs.BoolVar(&asJSON, "json", false, "print JSON")
			fs.DurationVar(&timeout, "timeout", 15*time.Second, "time allowed for each check")
		},
		run: func(args []string) error {
			env := &doctor.Env{ConfigPath: sf.config}
			doctorEnv(env)
			rs := doctor.Run(context.Background(), doctor.Checks(env), timeout)
			if asJSON {
				doctor.RenderJSON(os.Stdout, rs)
			} else {
				doctor.Render(os.Stdout, rs)
			}
			if doctor.Worst(rs) == doctor.Fail {
				return &exitError{code: 1, err: errDoctorFailed}
			}
			return nil
		},
	})
}
