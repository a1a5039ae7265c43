// Command wintest runs the Windows build under Wine (make test-windows): every
// package's Windows test binary, the dev-mode agent end to end, the service
// under Wine's services.exe, and the MSI under Wine's msiexec. It prints one
// table and fails on any failure that the skip list (scripts/test-windows.skip)
// does not name as a Wine gap.
//
// scripts/test-windows.sh prepares the root (Wine 10 in a Debian trixie
// chroot, under an overlay so that each run starts from the same prefix),
// mounts it, and calls:
//
//	wintest -root DIR -upper DIR -work DIR -skip FILE [-phases tests,e2e,service,msi] [-pkg REGEXP] [-jobs N]
//
// -work is bind-mounted at the same path inside the root; everything built
// and written by the run lives there. Windows programs see it as Z:\...
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

type env struct {
	root, upper, work, repo string
	gaps                    Gaps
	jobs                    int
	verbose                 bool
}

func main() {
	var (
		e      env
		skip   string
		phases string
		pkgRE  string
	)
	flag.StringVar(&e.root, "root", "", "the mounted Wine root (chroot)")
	flag.StringVar(&e.upper, "upper", "", "the overlay's upper directory: every file written inside the root")
	flag.StringVar(&e.work, "work", "", "the work directory, bind-mounted at the same path inside the root")
	flag.StringVar(&skip, "skip", "scripts/test-windows.skip", "the skip list of Wine gaps")
	flag.StringVar(&phases, "phases", "tests,e2e,service,msi", "what to run")
	flag.StringVar(&pkgRE, "pkg", "", "run only the test packages matching this regular expression")
	flag.IntVar(&e.jobs, "jobs", 2, "test binaries built and run at once")
	flag.BoolVar(&e.verbose, "v", false, "print every test binary's output")
	flag.Parse()
	if e.root == "" || e.work == "" {
		fmt.Fprintln(os.Stderr, "wintest: -root and -work are required (scripts/test-windows.sh sets them)")
		os.Exit(2)
	}
	var err error
	if e.repo, err = os.Getwd(); err != nil {
		fatal(err)
	}
	f, err := os.Open(skip)
	if err != nil {
		fatal(err)
	}
	e.gaps, err = ParseGaps(f, skip)
	f.Close()
	if err != nil {
		fatal(err)
	}
	var only *regexp.Regexp
	if pkgRE != "" {
		only = regexp.MustCompile(pkgRE)
	}

	start := time.Now()
	var rows []Summary
	want := strings.Split(phases, ",")
	if err := e.buildCommands(); err != nil {
		fatal(err)
	}
	if slices.Contains(want, "tests") {
		rs, err := e.runTests(only)
		if err != nil {
			fatal(err)
		}
		rows = append(rows, rs...)
	}
	for _, p := range []struct {
		name string
		run  func(*steps)
	}{
		{"e2e", e.devEndToEnd},
		{"service", e.serviceLifecycle},
		{"msi", e.msi},
	} {
		if !slices.Contains(want, p.name) {
			continue
		}
		st := &steps{pkg: "(" + p.name + ")", start: time.Now()}
		fmt.Printf("== %s under Wine\n", p.name)
		p.run(st)
		e.wineserverKill()
		rows = append(rows, st.summary(e.gaps))
	}
	if !e.report(rows, time.Since(start)) {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "wintest:", err)
	os.Exit(1)
}

// winPath is path as a Windows program under Wine sees it (drive Z: is /).
func winPath(path string) string { return `Z:` + strings.ReplaceAll(path, "/", `\`) }

// wineEnv is the environment of every Windows process: no Mono or Gecko
// prompts, no debug channels, and the marker the tests compare IsWine with.
func wineEnv(extra ...string) []string {
	return append([]string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=/root",
		"WINEPREFIX=/root/.wine",
		"WINEDEBUG=-all",
		"XDG_RUNTIME_DIR=/tmp",
		"WINEDLLOVERRIDES=mscoree,mshtml=",
		"LANG=C.UTF-8",
		"CREDAGENT_TEST_UNDER_WINE=1",
	}, extra...)
}

// wine returns a command running a Windows program (a path on the host,
// visible at the same path in the root, or a program of Wine's own such as
// msiexec) inside the root, from dir, with wineEnv and extraEnv.
func (e *env) wine(ctx context.Context, dir string, extraEnv []string, exe string, args ...string) *exec.Cmd {
	full := append([]string{e.root, "env", "-C", dir}, wineEnv(extraEnv...)...)
	full = append(full, "wine", exe)
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, "chroot", full...)
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// combined runs a Windows program and returns its output. The output goes
// through a file, not a pipe: Wine's helper processes (services.exe,
// explorer.exe), started by the first program of a session, inherit its
// standard handles and outlive it, so a pipe would never reach EOF.
func combined(cmd *exec.Cmd) ([]byte, error) { return runToFile(cmd, true) }

// stdout is combined for standard output only; standard error is dropped.
func stdout(cmd *exec.Cmd) ([]byte, error) { return runToFile(cmd, false) }

func runToFile(cmd *exec.Cmd, withStderr bool) ([]byte, error) {
	f, err := os.CreateTemp("", "wintest-out-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd.Stdout = f
	if withStderr {
		cmd.Stderr = f
	}
	err = cmd.Run()
	b, rerr := os.ReadFile(f.Name())
	if err == nil {
		err = rerr
	}
	return b, err
}

// wineserverKill ends every Windows process of the prefix, so that each
// phase starts clean and files are complete before they are scanned.
func (e *env) wineserverKill() {
	cmd := exec.Command("chroot", append(append([]string{e.root, "env"}, wineEnv()...), "wineserver", "-k")...)
	cmd.Run()
	cmd = exec.Command("chroot", append(append([]string{e.root, "env"}, wineEnv()...), "wineserver", "-w")...)
	cmd.Run()
}

func (e *env) bin(parts ...string) string {
	return filepath.Join(append([]string{e.work, "bin"}, parts...)...)
}

// buildCommands builds the Windows programs (credagent, credseal, and the
// elevation helper) and the native fake CCP.
func (e *env) buildCommands() error {
	t0 := time.Now()
	win := exec.Command("go", "build", "-trimpath", "-o", e.bin("windows")+"/", "./agent/cmd/credagent", "./agent/cmd/credseal", "./scripts/wintest/elevate")
	win.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := win.CombinedOutput(); err != nil {
		return fmt.Errorf("building the Windows programs: %v\n%s", err, out)
	}
	lin := exec.Command("go", "build", "-o", e.bin("linux")+"/", "./agent/cmd/fakeccp")
	lin.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := lin.CombinedOutput(); err != nil {
		return fmt.Errorf("building fakeccp: %v\n%s", err, out)
	}
	fmt.Printf("== built credagent.exe, credseal.exe, elevate.exe and fakeccp in %.1fs\n", time.Since(t0).Seconds())
	return nil
}

// report prints the table and what needs a look; it says whether the run
// passed.
func (e *env) report(rows []Summary, took time.Duration) bool {
	ok := true
	var tp, tf, ts, tk int
	fmt.Println()
	fmt.Printf("%-36s %5s %5s %5s %5s\n", "package (top-level tests; steps)", "pass", "fail", "skip", "known")
	for _, r := range rows {
		fmt.Printf("%-36s %5d %5d %5d %5d\n", r.Package, r.Pass, r.Fail, r.Skip, r.Known)
		tp, tf, ts, tk = tp+r.Pass, tf+r.Fail, ts+r.Skip, tk+r.Known
	}
	fmt.Printf("%-36s %5d %5d %5d %5d   in %.0fs\n", "total", tp, tf, ts, tk, took.Seconds())
	fmt.Println("(known: failures the skip list names as Wine gaps)")
	for _, r := range rows {
		for _, f := range r.Failures {
			fmt.Printf("FAIL %s %s\n", r.Package, f)
			ok = false
		}
		for _, k := range r.KnownFailures {
			g, _ := e.gaps.Lookup(r.Package, k)
			fmt.Printf("known (skip list) %s %s: %s\n", r.Package, k, g.Reason)
		}
		for _, s := range r.Skips {
			if g, listed := e.gaps.Lookup(r.Package, s.Name); listed {
				fmt.Printf("skip (listed) %s %s: %s\n", r.Package, s.Name, g.Reason)
			} else {
				fmt.Printf("skip (NOT on the skip list) %s %s: %s\n", r.Package, s.Name, s.Reason)
			}
		}
		for _, f := range r.Flaky {
			fmt.Printf("flaky %s %s: failed or hung in the full run, passed when run again\n", r.Package, f)
		}
		for _, n := range r.NowPassing {
			fmt.Printf("note: %s %s passes under Wine now: remove it from the skip list\n", r.Package, n)
		}
	}
	if tf > 0 {
		ok = false
	}
	return ok
}

// pkgInfo is one package with tests.
type pkgInfo struct {
	importPath, dir, rel string
}

func (e *env) testPackages(only *regexp.Regexp) ([]pkgInfo, error) {
	cmd := exec.Command("go", "list", "-f", "{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}\t{{.Dir}}{{end}}", "./...")
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	var ps []pkgInfo
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 2 {
			continue
		}
		rel, _ := filepath.Rel(e.repo, f[1])
		if only != nil && !only.MatchString(rel) {
			continue
		}
		ps = append(ps, pkgInfo{f[0], f[1], filepath.ToSlash(rel)})
	}
	return ps, nil
}

// runTests builds every package's Windows test binary and runs each from its
// package directory (so that testdata/ resolves), with -test.v.
func (e *env) runTests(only *regexp.Regexp) ([]Summary, error) {
	pkgs, err := e.testPackages(only)
	if err != nil {
		return nil, err
	}
	tests := filepath.Join(e.work, "tests")
	logs := filepath.Join(e.work, "logs")
	os.MkdirAll(tests, 0o755)
	os.MkdirAll(logs, 0o755)
	exeOf := func(p pkgInfo) string {
		return filepath.Join(tests, strings.ReplaceAll(p.rel, "/", "_")+".test.exe")
	}

	t0 := time.Now()
	buildErr := make([]error, len(pkgs))
	parallel(len(pkgs), e.jobs, func(i int) {
		cmd := exec.Command("go", "test", "-c", "-o", exeOf(pkgs[i]), pkgs[i].importPath)
		cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr[i] = fmt.Errorf("%v: %s", err, out)
		}
	})
	fmt.Printf("== built %d Windows test binaries in %.1fs\n", len(pkgs), time.Since(t0).Seconds())

	t0 = time.Now()
	rows := make([]Summary, len(pkgs))
	parallel(len(pkgs), e.jobs, func(i int) {
		p := pkgs[i]
		if buildErr[i] != nil {
			rows[i] = Summary{Package: p.rel, Fail: 1, Failures: []string{"(build: " + buildErr[i].Error() + ")"}}
			return
		}
		started := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		cmd := e.wine(ctx, p.dir, nil, exeOf(p), "-test.v", "-test.timeout=3m")
		b, runErr := combined(cmd)
		out := bytes.NewBuffer(b)
		os.WriteFile(filepath.Join(logs, strings.ReplaceAll(p.rel, "/", "_")+".log"), out.Bytes(), 0o644)
		rs, _ := ParseTestV(bytes.NewReader(out.Bytes()))
		rows[i] = Summarize(p.rel, rs, e.gaps, runErr)
		r := rows[i]
		fmt.Printf("   %-36s %3d pass %2d fail %2d skip %2d known  %5.1fs\n", p.rel, r.Pass, r.Fail, r.Skip, r.Known, time.Since(started).Seconds())
		if e.verbose || r.Fail > 0 {
			fmt.Printf("---- output of %s (also in %s)\n%s\n----\n", p.rel, logs, tail(out.Bytes(), 60))
		}
	})
	fmt.Printf("== ran them under Wine in %.1fs\n", time.Since(t0).Seconds())

	// A test that failed among others is run once more on its own, with
	// nothing else running: timing checks (latencies, time budgets) can
	// miss on a loaded machine. One that passes then is reported as flaky,
	// by name, and does not fail the run; one that fails again does.
	//
	// A binary that hung (-test.timeout) never ran the tests after the one
	// that hung, so it is run again whole. If every test passes then, the
	// hung test is reported as flaky, by name, with where its log is.
	for i, p := range pkgs {
		if buildErr[i] != nil {
			continue
		}
		log := filepath.Join(logs, strings.ReplaceAll(p.rel, "/", "_")+".log")
		b, _ := os.ReadFile(log)
		hung, ok := Hung(b)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		cmd := e.wine(ctx, p.dir, nil, exeOf(p), "-test.v", "-test.timeout=3m")
		b, runErr := combined(cmd)
		cancel()
		os.WriteFile(strings.TrimSuffix(log, ".log")+".rerun.log", b, 0o644)
		rs, _ := ParseTestV(bytes.NewReader(b))
		again := Summarize(p.rel, rs, e.gaps, runErr)
		fmt.Printf("   rerun whole after a hang in %v (stacks in %s): %s %d pass, %d fail\n", hung, log, p.rel, again.Pass, again.Fail)
		if again.Fail == 0 {
			for _, h := range hung {
				again.Flaky = append(again.Flaky, h+" (hung; stacks in "+log+")")
			}
			rows[i] = again
		}
	}
	for i, p := range pkgs {
		r := rows[i]
		if _, hung := Hung(mustRead(filepath.Join(logs, strings.ReplaceAll(p.rel, "/", "_")+".log"))); hung {
			continue // handled above
		}
		if r.Fail == 0 || buildErr[i] != nil || slices.ContainsFunc(r.Failures, func(f string) bool { return strings.HasPrefix(f, "(") }) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		cmd := e.wine(ctx, p.dir, nil, exeOf(p), "-test.v", "-test.timeout=3m", "-test.run=^("+strings.Join(r.Failures, "|")+")$")
		b, runErr := combined(cmd)
		cancel()
		os.WriteFile(filepath.Join(logs, strings.ReplaceAll(p.rel, "/", "_")+".rerun.log"), b, 0o644)
		rs, _ := ParseTestV(bytes.NewReader(b))
		again := Summarize(p.rel, rs, e.gaps, runErr)
		if again.Fail == 0 && again.Pass == len(r.Failures) {
			rows[i].Flaky = r.Failures
			rows[i].Pass += len(r.Failures)
			rows[i].Fail, rows[i].Failures = 0, nil
		}
		fmt.Printf("   rerun alone: %s %v: %d pass, %d fail\n", p.rel, r.Failures, again.Pass, again.Fail)
	}
	return rows, nil
}

// mustRead is the content of a log, nil if it cannot be read.
func mustRead(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// parallel calls f(0..n-1), at most jobs at once.
func parallel(n, jobs int, f func(int)) {
	if jobs < 1 {
		jobs = 1
	}
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

// steps records the named checks of a scripted phase as if they were tests,
// so that the table and the skip list treat them alike.
type steps struct {
	pkg     string
	start   time.Time
	results []Result
	stopped bool
	// keepGoing runs every step even after a failure.
	keepGoing bool
}

// do runs one step, unless an earlier step of the phase failed (the rest are
// then skipped: they depend on it) and the phase does not keepGoing. Step
// names have no spaces or slashes, so that the skip list can name them.
func (s *steps) do(name string, f func() error) bool {
	if s.stopped {
		s.results = append(s.results, Result{Name: name, Outcome: Skip, Reason: "an earlier step failed"})
		return false
	}
	t0 := time.Now()
	err := f()
	var skip skipError
	switch {
	case errors.As(err, &skip):
		s.results = append(s.results, Result{Name: name, Outcome: Skip, Reason: skip.reason})
		fmt.Printf("   skip %-28s %s\n", name, skip.reason)
		return false
	case err != nil:
		s.results = append(s.results, Result{Name: name, Outcome: Fail, Reason: err.Error()})
		fmt.Printf("   FAIL %-28s %v (%.1fs)\n", name, err, time.Since(t0).Seconds())
		s.stopped = !s.keepGoing
		return false
	}
	s.results = append(s.results, Result{Name: name, Outcome: Pass})
	fmt.Printf("   ok   %-28s (%.1fs)\n", name, time.Since(t0).Seconds())
	return true
}

type skipError struct{ reason string }

func (s skipError) Error() string { return s.reason }

func (s *steps) summary(gaps Gaps) Summary {
	return Summarize(s.pkg, s.results, gaps, nil)
}
