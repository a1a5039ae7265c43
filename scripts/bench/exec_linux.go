package main

import (
	"fmt"
	"github.com/credagent/credagent/scripts/internal/rig"
	"os/exec"
	"path/filepath"
	"time"
)

// execStart measures what `credagent exec` adds to a child's start: the
// wall time of `credagent exec --cred DB=NAME -- /bin/true` minus that of
// /bin/true started directly, against the wall time of `credagent resolve
// NAME` (a process that makes exactly one resolve). The goal is that exec
// adds at most one resolve plus 5 ms: exec minus true minus resolve < 5 ms.
func (h *harness) execStart() error {
	trueBin, err := exec.LookPath("true")
	if err != nil {
		return err
	}
	agent := filepath.Join(h.binDir, "credagent")
	legs := []struct {
		name string
		args []string
	}{
		{"true", []string{trueBin}},
		{"resolve", []string{agent, "resolve", "--socket", h.socket, "--run-id", "bench-exec", benchCred}},
		{"exec", []string{agent, "exec", "--socket", h.socket, "--run-id", "bench-exec", "--cred", "DB=" + benchCred, "--", trueBin}},
	}
	const perLeg = 40
	res := map[string][]float64{}
	var over []float64
	for r := range max(3, h.rounds) {
		med := map[string]float64{}
		for i := range legs {
			l := legs[(i+r)%len(legs)]
			var lat []time.Duration
			for range perLeg {
				if h.ctx.Err() != nil {
					return errBudget
				}
				t := time.Now()
				if out, err := exec.CommandContext(h.ctx, l.args[0], l.args[1:]...).CombinedOutput(); err != nil {
					return fmt.Errorf("%s: %v: %s", l.name, err, out)
				}
				lat = append(lat, time.Since(t))
			}
			med[l.name] = float64(rig.Percentile(rig.SortedCopy(lat), 50)) / 1e6
			res[l.name] = append(res[l.name], med[l.name])
		}
		over = append(over, med["exec"]-med["true"]-med["resolve"])
		fmt.Printf("   round %d: ms true %.2f resolve %.2f exec %.2f\n", r+1, med["true"], med["resolve"], med["exec"])
	}
	added := make([]float64, len(res["exec"]))
	for i := range added {
		added[i] = res["exec"][i] - res["true"][i]
	}
	h.rep.add(&figure{Key: "exec_added_ms", Unit: "ms", Value: rig.Median(added), Rounds: added,
		BaselineName: "credagent resolve (one resolve, process included)", Baseline: rig.Median(res["resolve"]), BaselineRounds: res["resolve"],
		Method: fmt.Sprintf("median wall time of `credagent exec --cred DB=%s -- true` minus that of `true` alone, %d runs per leg, %d rounds in rotating order; "+
			"the baseline is `credagent resolve` of the same name, a process making one resolve.", benchCred, perLeg, len(added))})
	h.rep.add(&figure{Key: "exec_beyond_resolve_ms", Unit: "ms", Value: rig.Median(over), Rounds: over,
		BaselineName: "none", Baseline: 0,
		Method: "exec_added_ms minus the resolve baseline within each round: what exec costs beyond one resolve (pipe, fork/exec, hand-over).",
		goal:   &goal{"<", 5}})
	return nil
}
