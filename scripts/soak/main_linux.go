package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/credagent/credagent/agent/agenttest"
	"github.com/credagent/credagent/agent/ccp"
	"github.com/credagent/credagent/agent/ccp/fakeccp"
	"github.com/credagent/credagent/agent/localapi/client"
	"github.com/credagent/credagent/scripts/internal/rig"
)

// soak is one run.
type soak struct {
	ctx    context.Context
	p      params
	root   string
	binDir string
	self   string // this executable, copied where the callers' users can run it
	epoch  time.Time

	pki         *fakeccp.DevPKI
	caPEM       []byte
	fixture     *fakeccp.Fixture
	fixtureFile string
	replicas    [2]*replica
	ccpPorts    []string
	// ccpMu orders replica starts and password rotations, so that a
	// replica never starts with a password older than the others'.
	ccpMu    sync.Mutex
	password string
	// passwords is every password the fakes were given, in order (under
	// ccpMu), for the count of their copies in the agent's memory.
	passwords []string

	agent          *rig.Proc
	agentLog       string
	cfgPath        string
	cfgMu          sync.Mutex // config writes and reloads
	reloadSeq      int
	signingKeyFile string
	signingPub     string
	socket         string
	stateDir       string
	inboxDir       string
	group          string
	createdUsers   []string
	createdGroup   bool
	api            *client.Client
	portal         *agenttest.Portal
	regBytes       int64

	mu           sync.Mutex
	records      []record
	windows      []window
	events       map[string]int
	notes        []string
	recordBytes  map[string]int64 // kind/target -> size of the record the state must hold
	maxRejected  int64            // the largest file dropped to be rejected
	oldDelivery  []byte           // an early credential delivery, replayed later
	currentStore []byte
	samples      []sample
	callers      []*rig.Proc
	feed         *soakFeed
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == childCaller {
		if err := runCaller(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "soak caller: %v\n", err)
			os.Exit(1)
		}
		return
	}
	dur := flag.Duration("duration", 10*time.Minute, "how long to run")
	speed := flag.Float64("speed", 1, "divide every period (events, warm-up, sampling) by this; the growth limits are per 10 simulated minutes")
	rate := flag.Float64("rate", 1000, "resolutions per second, all callers together")
	out := flag.String("out", "bench", "directory for soak.json and soak.png")
	readme := flag.String("readme", "", "write the summary between the soak markers of this file (bench/README.md)")
	binDir := flag.String("bin", "bin", "directory holding credagent and fakeccp (make build)")
	keep := flag.Bool("keep", false, "keep the temporary directory (logs, state) for inspection")
	flag.Parse()
	if *speed < 1 || *speed > 20 || *dur < 30*time.Second {
		fmt.Fprintln(os.Stderr, "soak: -speed must be 1 to 20 and -duration at least 30s")
		os.Exit(2)
	}
	ok, err := run(*dur, *speed, *rate, *out, *readme, *binDir, *keep)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		os.Exit(1)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "soak: FAILED (see the checks above)")
		os.Exit(1)
	}
}

// scaled divides a period of the simulated month by the speed.
func (s *soak) scaled(d time.Duration) time.Duration { return time.Duration(float64(d) / s.p.Speed) }

func run(dur time.Duration, speed, rate float64, outDir, readme, binDir string, keep bool) (passed bool, err error) {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	s := &soak{ctx: ctx, events: map[string]int{}, recordBytes: map[string]int64{}}
	s.p = params{Duration: dur, Speed: speed}
	s.p.Warmup = s.scaled(2 * time.Minute)
	s.p.Every = max(s.scaled(10*time.Second), 2*time.Second)
	s.p.LatWindow = max(s.p.Every, 10*time.Second)
	s.p.Grace = 2 * time.Second
	s.p.CCPConnCap = ccp.DefaultPoolSize * len(s.replicas)
	if s.binDir, err = filepath.Abs(binDir); err != nil {
		return false, err
	}
	for _, b := range []string{"credagent", "fakeccp"} {
		if _, err := os.Stat(filepath.Join(s.binDir, b)); err != nil {
			return false, fmt.Errorf("%s/%s is missing: run `make build` (make soak does)", binDir, b)
		}
	}
	// Unix socket paths are short: keep the root short. Other users must
	// reach the socket's directory and run the copy of this program.
	if s.root, err = os.MkdirTemp("", "casoak"); err != nil {
		return false, err
	}
	if err := os.Chmod(s.root, 0o711); err != nil {
		return false, err
	}
	defer func() {
		for _, c := range s.callers {
			c.Stop(5 * time.Second)
		}
		rig.StopAll()
		s.feed.stop()
		s.removeUsers()
		if keep || err != nil {
			fmt.Printf("kept %s\n", s.root)
		} else {
			os.RemoveAll(s.root)
		}
	}()
	if s.self, err = copySelf(s.root); err != nil {
		return false, err
	}
	machine := map[string]string{"cpu": rig.CPUModel(), "cores": strconv.Itoa(runtime.NumCPU()), "go": runtime.Version(), "load_start": rig.LoadAverage(),
		"cpu_idle": rig.CPUIdle(), "cpu_steal_percent": "unknown"}
	stolen := rig.StealMeter()
	fmt.Printf("soak: %v at speed %g (%g simulated minutes), %g resolutions/s; warm-up %v, sample every %v; load average %s\n",
		dur, speed, dur.Minutes()*speed, rate, s.p.Warmup, s.p.Every, machine["load_start"])

	if err := s.setupWorld(); err != nil {
		return false, fmt.Errorf("setup: %w", err)
	}
	s.epoch = time.Now()
	runCtx, stopRun := context.WithDeadline(ctx, s.epoch.Add(dur))
	defer stopRun()
	if err := s.startCallers(rate); err != nil {
		return false, fmt.Errorf("callers: %w", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.direct(runCtx) })
	s.startEvents(runCtx, &wg)
	s.sampleLoop(runCtx)
	stopRun()
	wg.Wait()
	for _, c := range s.callers {
		if err := c.Stop(10 * time.Second); err != nil {
			s.note(err.Error())
		}
	}
	if ctx.Err() != nil {
		return false, fmt.Errorf("interrupted")
	}
	s.countAgentLog()
	machine["load_end"] = rig.LoadAverage()
	if p := stolen(); p >= 0 {
		machine["cpu_steal_percent"] = strconv.FormatFloat(p, 'f', 1, 64)
	}

	copies := s.passwordCopies()
	s.mu.Lock()
	res := analyze(s.p, s.samples, s.records, s.windows, s.feed.results())
	res.Events, res.Notes, res.Machine = s.events, s.notes, machine
	s.mu.Unlock()
	res.addCheck(copies)
	if err := s.write(res, outDir, readme); err != nil {
		return false, err
	}
	return res.Passed, nil
}

// copySelf copies this executable into dir, readable and executable by
// all, for the callers that run as other users.
func copySelf(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	in, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer in.Close()
	path := filepath.Join(dir, "soak")
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	return path, out.Close()
}

func (s *soak) note(n string) {
	s.mu.Lock()
	s.notes = append(s.notes, n)
	s.mu.Unlock()
	fmt.Println("note:", n)
}

func (s *soak) count(event string) {
	s.mu.Lock()
	s.events[event]++
	s.mu.Unlock()
}

// since is the time since the epoch in seconds.
func (s *soak) since() float64 { return time.Since(s.epoch).Seconds() }

func (s *soak) addRecord(r record) {
	s.mu.Lock()
	s.records = append(s.records, r)
	s.mu.Unlock()
}

// callerSpec is one caller process: its user, its share of the load and
// what it asks for.
type callerSpec struct {
	user    string // "" for the harness's own user (root)
	share   float64
	names   string
	refused bool
}

// startCallers starts the caller processes. The shares are of the
// resolutions; checks, statuses and hang-ups come on top.
func (s *soak) startCallers(rate float64) error {
	specs := []callerSpec{{"", 0.4, "sap,rpa01", false}}
	if os.Geteuid() == 0 {
		specs = append(specs, callerSpec{"credsoak1", 0.3, "sap,rpa01", false}, callerSpec{"credsoak2", 0.3, "sap,rpa01", false},
			callerSpec{"credsoak3", 0.03, "sap", true})
	} else {
		specs[0].share = 1
	}
	quiet := 400 * time.Millisecond
	if s.p.Every < 5*time.Second {
		quiet = 300 * time.Millisecond
	}
	for i, sp := range specs {
		// Resolutions are 85% of a caller's requests.
		r := rate * sp.share / 0.85
		args := []string{s.self, childCaller, "-socket", s.socket, "-rate", strconv.FormatFloat(r, 'f', 1, 64), "-workers", "6",
			"-names", sp.names, "-epoch", strconv.FormatInt(s.epoch.UnixNano(), 10), "-every", s.p.Every.String(), "-quiet", quiet.String()}
		if sp.refused {
			args = append(args, "-refused")
		}
		var o rig.ProcOptions
		name := "caller-root"
		if sp.user != "" {
			name = "caller-" + sp.user
			cred, err := credential(sp.user)
			if err != nil {
				return err
			}
			o.Credential = cred
		}
		o.OnLine = s.onCallerLine
		p, err := rig.StartProcWith(name, filepath.Join(s.root, fmt.Sprintf("caller%d.log", i)), o, args...)
		if err != nil {
			return err
		}
		if _, _, err := p.WaitLine("ready", 10*time.Second); err != nil {
			return err
		}
		s.callers = append(s.callers, p)
	}
	fmt.Printf("%d caller processes started\n", len(specs))
	return nil
}

// onCallerLine parses one record line of a caller: "R kind start dur class".
func (s *soak) onCallerLine(text string, _ time.Time) {
	f := strings.Fields(text)
	if len(f) != 5 || f[0] != "R" || len(f[1]) != 1 {
		return
	}
	start, err1 := strconv.ParseInt(f[2], 10, 64)
	dur, err2 := strconv.ParseInt(f[3], 10, 32)
	if err1 != nil || err2 != nil {
		return
	}
	class := f[4]
	if class == "-" {
		class = ""
	}
	s.addRecord(record{start: start, dur: int32(dur), kind: f[1][0], class: class})
}

// sampleLoop samples the agent just before each interval's end (while the
// callers hold back) until ctx ends.
func (s *soak) sampleLoop(ctx context.Context) {
	for k := 1; ; k++ {
		at := s.epoch.Add(time.Duration(k)*s.p.Every - 100*time.Millisecond)
		if at.After(s.epoch.Add(s.p.Duration)) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		smp := s.sample(ctx)
		s.mu.Lock()
		s.samples = append(s.samples, smp)
		n := len(s.records)
		s.mu.Unlock()
		fmt.Printf("t=%4.0fs rss %.1f MB heap %.1f/%.1f MB goroutines %d fds %d ccp %d feed %d state %d B (bound %d) records %d load %s\n",
			smp.T, smp.RSSMB, smp.HeapLiveMB, smp.HeapInuseMB, smp.Goroutines, smp.FDs, smp.CCPConns, smp.FeedConns, smp.StateBytes, smp.StateBound, n, rig.LoadAverage())
	}
}

// countAgentLog counts the reloads the agent applied and refused, and the
// deliveries it rejected, from its log (and the rotated files).
func (s *soak) countAgentLog() {
	files, _ := filepath.Glob(s.agentLog + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for what, marker := range map[string]string{
			"agent: reloads applied":         "configuration reloaded",
			"agent: reloads refused":         "reload rejected",
			"agent: deliveries rejected":     "inbox: delivery rejected",
			"agent: panics or fatal lines":   `"level":"fatal"`,
			"agent: feed polls refused":      "feed: no manifest accepted",
			"agent: feed manifests accepted": "feed: manifest accepted",
		} {
			s.events[what] += strings.Count(string(b), marker)
		}
	}
}
