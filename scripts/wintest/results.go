package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Outcome is what became of one test or step.
type Outcome string

const (
	Pass Outcome = "PASS"
	Fail Outcome = "FAIL"
	Skip Outcome = "SKIP"
)

// Result is one test (top-level or subtest, "TestX/sub") or one step of a
// scripted phase.
type Result struct {
	Name    string
	Outcome Outcome
	// Reason is the first line logged by a skipped or failed test.
	Reason string
}

// testLine matches go test -test.v's verdict lines; subtests are indented
// four spaces per level.
var testLine = regexp.MustCompile(`^(\s*)--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)`)

// header matches the lines by which -test.v says whose output follows.
var header = regexp.MustCompile(`^=== (RUN|CONT|NAME|PAUSE)\s+(\S+)`)

// ParseTestV reads the output of a test binary run with -test.v and returns
// every verdict, top-level tests and subtests alike, in the order of the
// verdicts. A skipped or failed test's Reason is the first line it logged
// (-test.v streams a test's log lines after its "=== RUN" or "=== NAME"
// header, before its verdict).
func ParseTestV(r io.Reader) ([]Result, error) {
	var out []Result
	first := map[string]string{} // test -> its first log line
	cur := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if m := testLine.FindStringSubmatch(line); m != nil {
			r := Result{Name: m[3], Outcome: Outcome(m[2])}
			if r.Outcome != Pass {
				r.Reason = first[r.Name]
			}
			out = append(out, r)
			cur = r.Name // a failed test's late lines follow its verdict
			continue
		}
		if m := header.FindStringSubmatch(line); m != nil {
			cur = m[2]
			continue
		}
		if line == "PASS" || line == "FAIL" || strings.HasPrefix(line, "ok ") {
			cur = ""
			continue
		}
		if t := strings.TrimSpace(line); t != "" && cur != "" {
			if _, ok := first[cur]; !ok {
				first[cur] = t
			}
		}
	}
	// A reason logged after the verdict (the output of a failed subtest is
	// printed under it) fills in what was not known before.
	for i := range out {
		if out[i].Outcome != Pass && out[i].Reason == "" {
			out[i].Reason = first[out[i].Name]
		}
	}
	return out, sc.Err()
}

// TopLevel reports whether name is a top-level test (no subtest path).
func TopLevel(name string) bool { return !strings.Contains(name, "/") }

// GapEntry is one line of the skip list: a test (or subtest, or "*" for the
// whole package) that Wine cannot pass, and the Wine limitation it waits for.
type GapEntry struct {
	Package string
	Test    string
	Reason  string
	Line    int
}

// ParseGaps reads the skip list: one entry a line, "PACKAGE TEST REASON...",
// blank lines and # comments ignored. Every entry must give a reason.
func ParseGaps(r io.Reader, file string) ([]GapEntry, error) {
	var out []GapEntry
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("%s:%d: want PACKAGE TEST REASON (the Wine limitation it waits for), got %q", file, n, line)
		}
		out = append(out, GapEntry{Package: f[0], Test: f[1], Reason: strings.Join(f[2:], " "), Line: n})
	}
	return out, sc.Err()
}

// Gaps answers whether a test of a package is a listed Wine gap.
type Gaps []GapEntry

// Lookup returns the most specific entry covering test in pkg: an entry
// for the test itself, else its nearest listed parent, else "*". A test
// listed by name keeps its own reason even when its whole package is also
// listed.
func (g Gaps) Lookup(pkg, test string) (GapEntry, bool) {
	var best GapEntry
	found := false
	rank := func(e GapEntry) int {
		if e.Test == "*" {
			return 0
		}
		return 1 + strings.Count(e.Test, "/")
	}
	for _, e := range g {
		if e.Package != pkg {
			continue
		}
		if e.Test == "*" || e.Test == test || strings.HasPrefix(test, e.Test+"/") {
			if !found || rank(e) > rank(best) {
				best, found = e, true
			}
		}
	}
	return best, found
}

// Summary is one row of the table.
type Summary struct {
	Package string
	// Top-level tests (or steps) by outcome. Known counts the failures that
	// are listed Wine gaps; they are not in Fail.
	Pass, Fail, Skip, Known int
	// Failures are the names of the unlisted failures; KnownFailures and
	// Skips the listed ones, with their reasons.
	Failures      []string
	KnownFailures []string
	Skips         []Result
	// NowPassing are listed entries whose tests passed: the list is stale.
	NowPassing []string
	// Flaky are tests that failed in the full run and passed when run
	// again alone; they are counted in Pass.
	Flaky []string
}

// Summarize counts the top-level verdicts of one package and decides which
// failures are listed gaps. A failed test counts as a known gap when every
// failing leaf under it (the failed subtests that have no failed subtests of
// their own, or the test itself) is covered by the list. exitErr is how the
// test binary ended; a binary that failed without a failed test (a panic, a
// timeout, a build error) is a failure unless the package is listed as "*".
func Summarize(pkg string, rs []Result, gaps Gaps, exitErr error) Summary {
	s := Summary{Package: pkg}
	failed := map[string]bool{}
	for _, r := range rs {
		if r.Outcome == Fail {
			failed[r.Name] = true
		}
	}
	leafKnown := func(name string) bool {
		leaves := 0
		for f := range failed {
			if f != name && !strings.HasPrefix(f, name+"/") {
				continue
			}
			isLeaf := true
			for g := range failed {
				if strings.HasPrefix(g, f+"/") {
					isLeaf = false
					break
				}
			}
			if !isLeaf {
				continue
			}
			leaves++
			if _, ok := gaps.Lookup(pkg, f); !ok {
				return false
			}
		}
		return leaves > 0
	}
	anyFail := false
	for _, r := range rs {
		if !TopLevel(r.Name) {
			if e, ok := gaps.Lookup(pkg, r.Name); ok && r.Outcome == Pass && e.Test == r.Name {
				s.NowPassing = append(s.NowPassing, r.Name)
			}
			continue
		}
		switch r.Outcome {
		case Pass:
			s.Pass++
			if e, ok := gaps.Lookup(pkg, r.Name); ok && e.Test != "*" {
				s.NowPassing = append(s.NowPassing, r.Name)
			}
		case Skip:
			s.Skip++
			s.Skips = append(s.Skips, r)
		case Fail:
			anyFail = true
			if leafKnown(r.Name) {
				s.Known++
				s.KnownFailures = append(s.KnownFailures, r.Name)
			} else {
				s.Fail++
				s.Failures = append(s.Failures, r.Name)
			}
		}
	}
	if exitErr != nil && !anyFail {
		if _, ok := gaps.Lookup(pkg, "*"); ok {
			s.Known++
			s.KnownFailures = append(s.KnownFailures, "(binary: "+exitErr.Error()+")")
		} else {
			s.Fail++
			s.Failures = append(s.Failures, "(binary: "+exitErr.Error()+")")
		}
	}
	slices.Sort(s.NowPassing)
	s.NowPassing = slices.Compact(s.NowPassing)
	return s
}

// UnlistedSkips returns the skipped top-level tests of s that the list does
// not name: tests that do not run under Wine for no recorded reason.
func UnlistedSkips(s Summary, gaps Gaps) []Result {
	var out []Result
	for _, r := range s.Skips {
		if _, ok := gaps.Lookup(s.Package, r.Name); !ok {
			out = append(out, r)
		}
	}
	return out
}

// Hung returns the top-level tests that were running when the test binary
// gave up with "panic: test timed out" (-test.timeout), and false when it
// did not. Tests after them never ran, so a hang is not a failure of those
// tests alone: the caller runs the whole binary again.
func Hung(out []byte) ([]string, bool) {
	lines := strings.Split(strings.ReplaceAll(string(out), "\r", ""), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "panic: test timed out after ") {
			continue
		}
		var names []string
		if i+1 < len(lines) && strings.TrimSpace(lines[i+1]) == "running tests:" {
			for _, t := range lines[i+2:] {
				f := strings.Fields(t)
				if len(f) == 0 || !strings.HasPrefix(f[0], "Test") {
					break
				}
				top, _, _ := strings.Cut(f[0], "/")
				names = append(names, top)
			}
		}
		slices.Sort(names)
		return slices.Compact(names), true
	}
	return nil, false
}
