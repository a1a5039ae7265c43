package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const sampleV = "=== RUN   TestA\r\n--- PASS: TestA (0.01s)\r\n" +
	`=== RUN   TestB
=== RUN   TestB/one
    b_test.go:10: not here
=== RUN   TestB/two
    b_test.go:12: broken: got 1
--- FAIL: TestB (0.20s)
    --- SKIP: TestB/one (0.00s)
        b_test.go:10: Wine: no persisted CNG keys
    --- FAIL: TestB/two (0.10s)
=== RUN   TestC
    c_test.go:5: needs a second user
    c_test.go:6: second line
--- SKIP: TestC (0.00s)
=== RUN   TestD
=== RUN   TestD/x
=== RUN   TestD/x/deep
--- FAIL: TestD (1.50s)
    --- FAIL: TestD/x (1.00s)
        --- FAIL: TestD/x/deep (1.00s)
            d_test.go:9: sharing violation
FAIL
`

func TestParseTestV(t *testing.T) {
	rs, err := ParseTestV(strings.NewReader(sampleV))
	if err != nil {
		t.Fatal(err)
	}
	want := []Result{
		{"TestA", Pass, ""},
		{"TestB", Fail, ""},
		{"TestB/one", Skip, "b_test.go:10: not here"},
		{"TestB/two", Fail, "b_test.go:12: broken: got 1"},
		{"TestC", Skip, "c_test.go:5: needs a second user"},
		{"TestD", Fail, ""},
		{"TestD/x", Fail, ""},
		{"TestD/x/deep", Fail, "d_test.go:9: sharing violation"},
	}
	if !slices.Equal(rs, want) {
		t.Fatalf("ParseTestV:\n got %+v\nwant %+v", rs, want)
	}
}

func TestParseGaps(t *testing.T) {
	gaps, err := ParseGaps(strings.NewReader("# comment\n\npkg/a TestB/two Wine's ncrypt has no persisted keys\npkg/b * Wine cannot\n"), "list")
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 2 || gaps[0].Reason != "Wine's ncrypt has no persisted keys" || gaps[1].Line != 4 {
		t.Fatalf("ParseGaps = %+v", gaps)
	}
	for _, bad := range []string{"pkg/a TestB\n", "pkg/a\n"} {
		if _, err := ParseGaps(strings.NewReader(bad), "list"); err == nil || !strings.Contains(err.Error(), "list:1:") {
			t.Errorf("ParseGaps(%q) = %v, want an error naming list:1", bad, err)
		}
	}
}

func TestSummarize(t *testing.T) {
	rs, _ := ParseTestV(strings.NewReader(sampleV))
	tests := []struct {
		name        string
		gaps        Gaps
		exitErr     error
		pass, fail  int
		skip, known int
		nowPassing  []string
	}{
		{"no list", nil, errors.New("exit status 1"), 1, 2, 1, 0, nil},
		{"the failing leaf listed", Gaps{{Package: "p", Test: "TestB/two"}}, nil, 1, 1, 1, 1, nil},
		{"a sibling listed, not the failing leaf", Gaps{{Package: "p", Test: "TestB/one"}}, nil, 1, 2, 1, 0, nil},
		{"a parent listed covers the deep leaf", Gaps{{Package: "p", Test: "TestD/x"}}, nil, 1, 1, 1, 1, nil},
		{"another package's entry", Gaps{{Package: "q", Test: "TestB"}}, nil, 1, 2, 1, 0, nil},
		{"a listed test that passes is stale", Gaps{{Package: "p", Test: "TestA"}}, nil, 1, 2, 1, 0, []string{"TestA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize("p", rs, tt.gaps, tt.exitErr)
			if s.Pass != tt.pass || s.Fail != tt.fail || s.Skip != tt.skip || s.Known != tt.known {
				t.Errorf("pass/fail/skip/known = %d/%d/%d/%d, want %d/%d/%d/%d (failures %v)",
					s.Pass, s.Fail, s.Skip, s.Known, tt.pass, tt.fail, tt.skip, tt.known, s.Failures)
			}
			if !slices.Equal(s.NowPassing, tt.nowPassing) {
				t.Errorf("NowPassing = %v, want %v", s.NowPassing, tt.nowPassing)
			}
		})
	}
}

// A binary that dies without a failed test (a panic, a timeout) fails its
// package, unless the whole package is listed.
func TestSummarizeBinaryFailure(t *testing.T) {
	rs := []Result{{Name: "TestA", Outcome: Pass}}
	died := errors.New("exit status 2")
	if s := Summarize("p", rs, nil, died); s.Fail != 1 || len(s.Failures) != 1 || !strings.Contains(s.Failures[0], "exit status 2") {
		t.Errorf("a dead binary: %+v", s)
	}
	if s := Summarize("p", rs, Gaps{{Package: "p", Test: "*"}}, died); s.Fail != 0 || s.Known != 1 {
		t.Errorf("a dead binary of a listed package: %+v", s)
	}
	if s := Summarize("p", rs, nil, nil); s.Fail != 0 || s.Pass != 1 {
		t.Errorf("a clean run: %+v", s)
	}
}

func TestUnlistedSkips(t *testing.T) {
	rs, _ := ParseTestV(strings.NewReader(sampleV))
	s := Summarize("p", rs, nil, nil)
	if got := UnlistedSkips(s, nil); len(got) != 1 || got[0].Name != "TestC" {
		t.Errorf("UnlistedSkips = %+v, want TestC", got)
	}
	if got := UnlistedSkips(s, Gaps{{Package: "p", Test: "TestC"}}); len(got) != 0 {
		t.Errorf("UnlistedSkips with TestC listed = %+v", got)
	}
}

// TestLookupMostSpecific: a test listed by name keeps its own reason when
// its package (or a parent test) is listed too, whatever the lines' order.
func TestLookupMostSpecific(t *testing.T) {
	g := Gaps{
		{Package: "p", Test: "*", Reason: "whole package"},
		{Package: "p", Test: "TestX", Reason: "x"},
		{Package: "p", Test: "TestX/sub", Reason: "x sub"},
		{Package: "q", Test: "TestY", Reason: "y"},
	}
	tests := []struct {
		pkg, test string
		want      string // "" for no entry
	}{
		{"p", "TestX", "x"},
		{"p", "TestX/sub", "x sub"},
		{"p", "TestX/sub/deep", "x sub"},
		{"p", "TestX/other", "x"},
		{"p", "TestZ", "whole package"},
		{"q", "TestY", "y"},
		{"q", "TestZ", ""},
		{"r", "TestX", ""},
	}
	for _, order := range []Gaps{g, {g[3], g[2], g[1], g[0]}} {
		for _, tt := range tests {
			e, ok := order.Lookup(tt.pkg, tt.test)
			if got := map[bool]string{true: e.Reason}[ok]; got != tt.want {
				t.Errorf("Lookup(%s, %s) = %q, want %q", tt.pkg, tt.test, got, tt.want)
			}
		}
	}
}

func TestHung(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []string
		hung bool
	}{
		{"passed", sampleV, nil, false},
		{"one test", "=== RUN   TestA\r\npanic: test timed out after 2m30s\r\n\trunning tests:\r\n\t\tTestA (4s)\r\n\r\ngoroutine 64 [running]:\r\n", []string{"TestA"}, true},
		{"subtests and parallel", "panic: test timed out after 3m0s\n\trunning tests:\n\t\tTestB/two (1s)\n\t\tTestB (2s)\n\t\tTestC (3s)\n\ngoroutine 1 [chan receive]:\n", []string{"TestB", "TestC"}, true},
		{"no list", "panic: test timed out after 1s\n\ngoroutine 1 [running]:\n", nil, true},
		{"another panic", "panic: runtime error: index out of range\n\ngoroutine 1 [running]:\n", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, hung := Hung([]byte(tt.out))
			if hung != tt.hung || !slices.Equal(got, tt.want) {
				t.Fatalf("Hung = %q, %v; want %q, %v", got, hung, tt.want, tt.hung)
			}
		})
	}
}
