package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/credagent/credagent/scripts/internal/rig"
	"image/color"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/localapi/client"
)

// harness holds what a run started and measured.
type harness struct {
	ctx    context.Context
	root   string // temporary directory for everything started
	binDir string
	outDir string
	outRel string // outDir as given, for links from the README
	readme string // the project README whose bench section is rewritten; "" for none
	self   string // this executable, for the child processes
	rounds int

	pki       *fakeccp.DevPKI
	fake      *rig.Proc
	fakeURL   string
	fakeAdmin string
	fakeHS    string // the handshake counts of the fake's listener
	bare      *rig.Proc
	bareURL   string

	agent    *rig.Proc
	agentDir string
	socket   string
	api      *client.Client

	// localAPI is child-localapi: the local API alone (see pieces_linux.go).
	localAPI       *rig.Proc
	localAPIClient *client.Client

	direct *ccp.Client // the Go CCP client, as the agent builds it
	// directAttempts times direct's CCP attempts as the agent's metrics
	// time its own (ccp.Options.Observe).
	directAttempts attemptTimes
	// agentMetrics is the loopback address of the agent's /metrics.
	agentMetrics string
	plain        *http.Client // net/http with the same mTLS, the direct path's baseline

	rep    *report
	runSeq atomic.Uint64

	// All sequential latency samples, for the chart.
	latAgent, latDirect []time.Duration
	hs                  handshakes
	// idle is the RSS baseline process.
	idle *rig.Proc
	// profileReasons lists the missed goals to profile for.
	profileReasons []string
}

func main() {
	if runChild(os.Args[1:]) {
		return
	}
	out := flag.String("out", "bench", "directory for results.json, README.md and latency.png")
	readme := flag.String("readme", "", "also rewrite the summary between the bench markers of this README")
	binDir := flag.String("bin", "bin", "directory holding credagent (from make build)")
	budget := flag.Duration("budget", 170*time.Second, "stop measuring after this long; the run is cut short, not failed")
	rounds := flag.Int("rounds", 5, "rounds of each A/B measurement (1 to 9)")
	profile := flag.String("profile", "auto", "CPU-profile the agent under load: auto (when a goal is missed), always or never")
	keep := flag.Bool("keep", false, "keep the temporary directory (logs, dev dirs) for inspection")
	flag.DurationVar(&holdFor, "hold", 0, "after setup, only drive callers along one path (-hold-path, -hold-callers) for this long, printing the pids and each second's figures (for perf, strace or go tool trace by hand); nothing is written")
	flag.IntVar(&holdCallers, "hold-callers", 1, "with -hold: concurrent callers (sharing one client, as the throughput rounds do)")
	flag.StringVar(&holdProfile, "hold-profile", "", "with -hold: write a CPU profile of the harness's own process (the callers' side) to this file")
	flag.StringVar(&holdPath, "hold-path", "agent", "with -hold: the path driven: agent (through bin/credagent), direct (the Go CCP client straight to the fake, the baseline) or localapi (the local-API child)")
	flag.StringVar(&onlyPhases, "only", "", "run only the phases whose name contains one of these comma-separated words (a partial run, for development)")
	flag.Parse()
	if *rounds < 1 || *rounds > 9 {
		fmt.Fprintln(os.Stderr, "bench: -rounds must be 1 to 9")
		os.Exit(2)
	}
	if err := run(*out, *readme, *binDir, *budget, *rounds, *profile, *keep); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(outDir, readme, binDir string, budget time.Duration, rounds int, profile string, keep bool) (err error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	ctx, stopSig := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSig()

	h := &harness{ctx: ctx, rounds: rounds, rep: &report{Time: start}}
	if h.binDir, err = filepath.Abs(binDir); err != nil {
		return err
	}
	if h.outDir, err = filepath.Abs(outDir); err != nil {
		return err
	}
	h.outRel = filepath.ToSlash(outDir)
	if readme != "" {
		if h.readme, err = filepath.Abs(readme); err != nil {
			return err
		}
	}
	if h.self, err = os.Executable(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(h.binDir, "credagent")); err != nil {
		return fmt.Errorf("%s/credagent is missing: run `make build` (make bench does)", binDir)
	}
	// Unix socket paths are short: keep the root short.
	if h.root, err = os.MkdirTemp("", "cabench"); err != nil {
		return err
	}
	defer func() {
		rig.StopAll()
		if keep || err != nil {
			fmt.Printf("kept %s\n", h.root)
		} else {
			os.RemoveAll(h.root)
		}
	}()
	if err := os.MkdirAll(h.outDir, 0o755); err != nil {
		return err
	}
	// Profiles are written only when a goal is missed: drop the last run's.
	for _, f := range []string{"profile-agent.txt", "profile-fakeccp.txt"} {
		os.Remove(filepath.Join(h.outDir, f))
	}

	h.rep.Machine = describeMachine(h.root)
	stolen := rig.StealMeter()
	fmt.Printf("machine: %s, %d cores, Linux %s, %s; load average %s\n",
		h.rep.Machine.CPU, h.rep.Machine.Cores, h.rep.Machine.Kernel, h.rep.Machine.GoVersion, h.rep.Machine.LoadStart)

	if err := h.setup(); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if holdFor > 0 {
		return h.hold(holdFor)
	}
	phases := []struct {
		name string
		fn   func() error
	}{
		{"latency (agent / direct / net/http, sequential)", h.latency},
		{"throughput (agent / direct, 64 callers) and RSS", h.throughput},
		{"password copies in the agent's memory", h.passwordCopies},
		{"fakeccp throughput (fake / bare net/http)", h.fakeThroughput},
		{"delivery apply (agent / bare fsnotify)", h.deliveryApply},
		{"cold start (100 applications / none)", h.coldStart},
		{"keystore unwrap (memory / file / tpm)", h.keystoreUnwrap},
		{"python client (python / go p50)", h.pythonClient},
		{"credagent exec start (exec / resolve / true)", h.execStart},
		{"metrics cost (1,000 resolutions/s, textfile every 10 s)", h.metricsCost},
	}
	for _, p := range phases {
		if !selected(p.name) {
			continue
		}
		if ctx.Err() != nil {
			h.rep.Notes = append(h.rep.Notes, fmt.Sprintf("phase %q not run: %v (budget %v)", p.name, context.Cause(ctx), budget))
			continue
		}
		t := time.Now()
		fmt.Printf("== %s\n", p.name)
		if err := p.fn(); err != nil {
			fmt.Printf("   failed: %v\n", err)
			h.rep.Notes = append(h.rep.Notes, fmt.Sprintf("phase %q failed: %v", p.name, err))
		}
		fmt.Printf("   %.1fs\n", time.Since(t).Seconds())
	}
	for _, f := range h.rep.Figures {
		f.finish()
		if f.Met != nil && !*f.Met {
			h.profileReasons = append(h.profileReasons, f.Key)
		}
	}
	agentMissed, fakeMissed := false, false
	for _, k := range h.profileReasons {
		if k == "fakeccp_throughput_rps" {
			fakeMissed = true
		} else {
			agentMissed = true
		}
	}
	for _, pr := range []struct {
		name string
		want bool
		fn   func() error
	}{
		{"fake", fakeMissed, h.profileFake},
		{"agent", agentMissed, h.profileAgent},
	} {
		if profile != "always" && (profile != "auto" || !pr.want) {
			continue
		}
		if ctx.Err() != nil {
			h.rep.Notes = append(h.rep.Notes, "profile of the "+pr.name+" skipped: out of time")
			continue
		}
		fmt.Printf("== profile of the %s under load\n", pr.name)
		if err := pr.fn(); err != nil {
			h.rep.Notes = append(h.rep.Notes, fmt.Sprintf("profile of the %s failed: %v", pr.name, err))
		}
	}
	if h.agent != nil {
		h.agent.Stop(10 * time.Second)
	}

	h.rep.Machine.LoadEnd = rig.LoadAverage()
	h.rep.Machine.StealPercent = rig.Round3(stolen())
	h.rep.Machine.Duration = rig.Round3(time.Since(start).Seconds())
	return h.write()
}

// write prints the table and writes the outputs.
func (h *harness) write() error {
	fmt.Println()
	writeTable(os.Stdout, h.rep)
	fmt.Printf("\nmachine: %s\n", h.rep.Machine)
	for _, n := range h.rep.Notes {
		fmt.Printf("note: %s\n", n)
	}
	js, err := json.Marshal(h.rep)
	if err != nil {
		return err
	}
	// make fleet merges its figures (fleet_*, feed_*) into the same file:
	// keep them.
	if old, err := os.ReadFile(filepath.Join(h.outDir, "results.json")); err == nil {
		var prev, next map[string]json.RawMessage
		if json.Unmarshal(old, &prev) == nil && json.Unmarshal(js, &next) == nil {
			for k, v := range prev {
				if _, ok := next[k]; !ok && (strings.HasPrefix(k, "fleet_") || strings.HasPrefix(k, "feed_")) {
					next[k] = v
				}
			}
			if b, err := json.Marshal(next); err == nil {
				js = b
			}
		}
	}
	if err := os.WriteFile(filepath.Join(h.outDir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var md bytes.Buffer
	writeMarkdown(&md, h.rep)
	// The soak (scripts/soak) keeps its section in the same file: carry it
	// over.
	mdPath := filepath.Join(h.outDir, "README.md")
	if old, err := os.ReadFile(mdPath); err == nil {
		if sec, ok := rig.Between(old, soakBegin, soakEnd); ok {
			fmt.Fprintf(&md, "\n%s%s%s\n", soakBegin, sec, soakEnd)
		}
	}
	if err := os.WriteFile(mdPath, md.Bytes(), 0o644); err != nil {
		return err
	}
	if h.readme != "" {
		doc, err := os.ReadFile(h.readme)
		if err != nil {
			return err
		}
		var sum bytes.Buffer
		writeSummary(&sum, h.rep, h.outRel)
		doc, err = rig.ReplaceBetween(doc, readmeBegin, readmeEnd, sum.Bytes())
		if err != nil {
			return fmt.Errorf("%s: %w", h.readme, err)
		}
		if err := os.WriteFile(h.readme, doc, 0o644); err != nil {
			return err
		}
	}
	if len(h.latAgent) > 0 && len(h.latDirect) > 0 {
		var img bytes.Buffer
		title := "RESOLVE LATENCY, ONE CALLER: AGENT VS DIRECT"
		err := rig.RenderLatencyPNG(&img, title, []rig.Series{
			{Name: "AGENT (SOCKET)", Samples: rig.SortedCopy(h.latAgent), Color: color.RGBA{220, 90, 20, 255}},
			{Name: "DIRECT (GO CCP CLIENT)", Samples: rig.SortedCopy(h.latDirect), Color: color.RGBA{30, 90, 200, 255}},
		})
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(h.outDir, "latency.png"), img.Bytes(), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("\nwrote %s/{results.json,README.md,latency.png}\n", h.outDir)
	return nil
}

// describeMachine reads the CPU model, kernel and load.
func describeMachine(tmp string) machine {
	m := machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: rig.LoadAverage(), CPU: rig.CPUModel(), CPUIdle: rig.CPUIdle()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	var st syscall.Statfs_t
	if syscall.Statfs(tmp, &st) == nil {
		m.TempFS = fsName(st.Type)
	}
	return m
}

func fsName(t int64) string {
	switch t {
	case 0xef53:
		return "ext4"
	case 0x01021994:
		return "tmpfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683e:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("0x%x", t)
}

// The markers of the soak's section of bench/README.md (scripts/soak).
const (
	soakBegin = "<!-- soak:begin -->"
	soakEnd   = "<!-- soak:end -->"
)

// errBudget is returned by loops cut short by the run's budget.
var errBudget = errors.New("out of time")

// holdFor is -hold, holdCallers -hold-callers, holdPath -hold-path.
var (
	holdFor     time.Duration
	holdCallers int
	holdPath    string
	holdProfile string
)

// hold drives callers along one path for d, printing each second's figures,
// so that the agent (or the baseline, to compare) can be traced by hand.
func (h *harness) hold(d time.Duration) error {
	paths := map[string]func(context.Context) error{"agent": h.resolveAgent, "direct": h.resolveDirect, "localapi": h.resolveLocalAPI}
	resolve, ok := paths[holdPath]
	if !ok {
		return fmt.Errorf("-hold-path %q: want agent, direct or localapi", holdPath)
	}
	fmt.Printf("agent pid %d, harness pid %d: %d caller(s) on the %s path for %v\n", h.agent.Pid(), os.Getpid(), holdCallers, holdPath, d)
	if holdProfile != "" {
		f, err := os.Create(holdProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for end := time.Now().Add(d); time.Now().Before(end); {
		if holdCallers > 1 {
			rps, n, err := h.concurrent(resolve, holdCallers, time.Second, 1<<40)
			if err != nil {
				return err
			}
			fmt.Printf("   %d resolutions, %.0f/s from %d callers\n", n, rps, holdCallers)
			continue
		}
		lat, err := h.sequential(resolve, time.Second, 100000)
		if err != nil {
			return err
		}
		s := rig.SortedCopy(lat)
		fmt.Printf("   %d resolutions, p50 %.0f µs, p99 %.0f µs\n", len(s), rig.US(rig.Percentile(s, 50)), rig.US(rig.Percentile(s, 99)))
	}
	return nil
}

// onlyPhases is -only: empty runs every phase.
var onlyPhases string

func selected(phase string) bool {
	if onlyPhases == "" {
		return true
	}
	for _, w := range strings.Split(onlyPhases, ",") {
		if w = strings.TrimSpace(w); w != "" && strings.Contains(phase, w) {
			return true
		}
	}
	return false
}
