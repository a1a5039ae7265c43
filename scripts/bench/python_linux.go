package main

import (
	"bytes"
	"fmt"
	"github.com/credagent/credagent/scripts/internal/rig"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// pythonScript resolves the bench credential N times through the Python
// client, one caller, sequentially, each with its own run ID, after a
// warm-up, and prints the median latency in microseconds. Interpreter
// start-up is not counted.
const pythonScript = `
import sys, time, credagent
sock, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = credagent.Client(sock)
for i in range(100):
    c.resolve(name, run_id="bench-py-warm-%d" % i, flow_id="bench-flow").wipe()
lat = []
for i in range(n):
    t = time.perf_counter_ns()
    r = c.resolve(name, run_id="bench-py-%d" % i, flow_id="bench-flow")
    r[name]
    lat.append(time.perf_counter_ns() - t)
    r.wipe()
lat.sort()
print(lat[len(lat) // 2] / 1000.0)
`

// pythonClient compares the Python client's resolve p50 with the Go
// client's, against the same agent, in alternating legs.
func (h *harness) pythonClient() error {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		return fmt.Errorf("Debian's python3 is not installed (scripts/prereqs.sh installs it)")
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	lib := filepath.Join(wd, "agent", "localapi", "client", "python")
	if _, err := os.Stat(filepath.Join(lib, "credagent", "__init__.py")); err != nil {
		return fmt.Errorf("run make bench from the repository root: %w", err)
	}
	var pyP50, goP50, ratios []float64
	for r := range max(3, h.rounds-2) {
		if h.ctx.Err() != nil {
			return errBudget
		}
		lat, err := h.sequential(h.resolveAgent, 800*time.Millisecond, 2000)
		if err != nil {
			return fmt.Errorf("round %d go: %w", r+1, err)
		}
		g := rig.US(rig.Percentile(rig.SortedCopy(lat), 50))
		cmd := exec.CommandContext(h.ctx, py, "-B", "-c", pythonScript, h.socket, benchCred, "1000")
		cmd.Env = append(os.Environ(), "PYTHONPATH="+lib)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("round %d python: %v: %s", r+1, err, stderr.String())
		}
		p, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			return fmt.Errorf("round %d python printed %q", r+1, out)
		}
		pyP50, goP50, ratios = append(pyP50, p), append(goP50, g), append(ratios, p/g)
		fmt.Printf("   round %d: p50 us python %.0f go %.0f\n", r+1, p, g)
	}
	method := "p50 of POST /v1/resolve through the Python client (agent/localapi/client/python, Debian's python3, one kept-alive connection), " +
		"one caller, sequential, 1,000 requests after 100 of warm-up, each with its own run ID; alternating with the Go client " +
		"(agent/localapi/client, 0.8 s) against the same agent and fake CCP; median of %d rounds."
	h.rep.add(&figure{Key: "python_resolve_p50_us", Unit: "µs", Value: rig.Median(pyP50), Rounds: pyP50,
		BaselineName: "Go client p50 (same round)", Baseline: rig.Median(goP50), BaselineRounds: goP50,
		Method: fmt.Sprintf(method, len(pyP50))})
	h.rep.add(&figure{Key: "python_over_go_p50", Unit: "x", Value: rig.Median(ratios), Rounds: ratios,
		BaselineName: "Go client (ratio 1)", Baseline: 1,
		Method: "Python p50 divided by Go p50 within each round; the median of the rounds.", goal: &goal{"<=", 1.5}})
	return nil
}
