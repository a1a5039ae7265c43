package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/credagent/credagent/agent/localapi/client"
)

var checkFlags apiFlags

func init() {
	register(&command{
		name:    "check",
		summary: "check that credentials resolve, without printing them",
		usage: `credagent check [--socket PATH | --dev DIR] [--run-id ID] [--flow-id ID] [--json] NAME...

Asks the agent to fetch each credential from CCP (never from its cache) and
prints only "ok" or the typed error. Exits 1 if any name failed.

Example:
  credagent check sap-prod db-report`,
		flags: checkFlags.register,
		run:   runCheck,
	})
}

func runCheck(names []string, stdout, _ io.Writer) error {
	f := &checkFlags
	var results map[string]error
	err := f.call(stdout, names, func(ctx context.Context, c *client.Client) (err error) {
		results, err = c.Check(ctx, f.run(), f.flowID, names...)
		return err
	})
	if err != nil {
		return err
	}
	failed := 0
	type line struct {
		Name  string    `json:"name"`
		OK    bool      `json:"ok"`
		Error *cliError `json:"error,omitempty"`
	}
	out := make([]line, 0, len(names))
	for _, n := range names {
		l := line{Name: n, OK: results[n] == nil}
		if !l.OK {
			failed++
			l.Error = toCLIError(results[n])
		}
		out = append(out, l)
	}
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	} else {
		for _, l := range out {
			if l.OK {
				fmt.Fprintf(stdout, "%s: ok\n", l.Name)
			} else {
				fmt.Fprintf(stdout, "%s: %s\n", l.Name, describeError(l.Error))
			}
		}
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d credentials failed", failed, len(names))}
	}
	return nil
}
