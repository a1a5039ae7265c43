// Package doctor is the checks behind `credagent doctor`: a table of named
// checks, each returning PASS, WARN or FAIL with the fix for a failure, and a
// renderer that prints one line per check.
//
// Checks that need what only the running agent holds (the application
// certificates' private keys, the stores' CA bundles) are in package
// storeprobe, which the agent runs in its own process and reports over the
// local API.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/service/storeprobe"
)

// Level is a check's outcome.
type Level string

// The outcomes, worst last.
const (
	Pass Level = storeprobe.Pass
	Warn Level = storeprobe.Warn
	Fail Level = storeprobe.Fail
)

// Result is one check's outcome. Fix says what to do when it is not PASS.
type Result struct {
	Name   string `json:"name"`
	Level  Level  `json:"level"`
	Detail string `json:"detail,omitempty"`
	Fix    string `json:"fix,omitempty"`
}

// Check is one row of the table. Run may return several results (one per
// store or server).
type Check struct {
	Name string
	Run  func(ctx context.Context) []Result
}

// Run runs the checks in order, each within timeout, and returns every
// result.
func Run(ctx context.Context, checks []Check, timeout time.Duration) []Result {
	var out []Result
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		rs := c.Run(cctx)
		cancel()
		for i := range rs {
			if rs[i].Name == "" {
				rs[i].Name = c.Name
			}
		}
		out = append(out, rs...)
	}
	return out
}

// Worst returns the worst level in rs (Pass for none).
func Worst(rs []Result) Level {
	w := Pass
	for _, r := range rs {
		if r.Level == Fail {
			return Fail
		}
		if r.Level == Warn {
			w = Warn
		}
	}
	return w
}

// Render writes one line per result, "PASS name: detail", with the fix
// indented on the next line for a WARN or FAIL.
func Render(w io.Writer, rs []Result) {
	width := 0
	for _, r := range rs {
		width = max(width, len(r.Name))
	}
	for _, r := range rs {
		line := fmt.Sprintf("%-4s  %-*s", r.Level, width, r.Name)
		if r.Detail != "" {
			line += "  " + r.Detail
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
		if r.Level != Pass && r.Fix != "" {
			fmt.Fprintf(w, "      %*s  fix: %s\n", width, "", r.Fix)
		}
	}
}

// RenderJSON writes rs as a JSON array.
func RenderJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rs)
}

func pass(detail string) []Result { return []Result{{Level: Pass, Detail: detail}} }
func warn(detail, fix string) []Result {
	return []Result{{Level: Warn, Detail: detail, Fix: fix}}
}
func fail(detail, fix string) []Result {
	return []Result{{Level: Fail, Detail: detail, Fix: fix}}
}
