package main

import (
	"math"
	"strings"
	"testing"
)

func TestParseInAgent(t *testing.T) {
	page := `# HELP credagent_resolve_duration_seconds Time to resolve one credential name, refusals included.
# TYPE credagent_resolve_duration_seconds histogram
credagent_resolve_duration_seconds_bucket{le="0.0005"} 10
credagent_resolve_duration_seconds_bucket{le="+Inf"} 12
credagent_resolve_duration_seconds_sum 0.0036
credagent_resolve_duration_seconds_count 12
credagent_ccp_request_duration_seconds_bucket{le="+Inf"} 11
credagent_ccp_request_duration_seconds_sum 2.2e-03
credagent_ccp_request_duration_seconds_count 11
`
	a, err := parseInAgent(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if a != (inAgent{resolveSum: 0.0036, resolveN: 12, ccpSum: 0.0022, ccpN: 11}) {
		t.Errorf("parsed %+v", a)
	}
	b := inAgent{resolveSum: 0.0066, resolveN: 22, ccpSum: 0.0042, ccpN: 21}
	res, ccp, err := a.means(b)
	if err != nil || math.Abs(res-300) > 1e-6 || math.Abs(ccp-200) > 1e-6 {
		t.Errorf("means %v %v %v, want 300 200", res, ccp, err)
	}
	if _, _, err := a.means(a); err == nil {
		t.Error("no observations between two readings is not an error")
	}
	for _, bad := range []string{
		"credagent_resolve_duration_seconds_sum 1\n",
		strings.Replace(page, "_count 12", "_count twelve", 1),
	} {
		if _, err := parseInAgent(strings.NewReader(bad)); err == nil {
			t.Errorf("page %q accepted", bad)
		}
	}
}
