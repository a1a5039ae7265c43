package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestGoalAndFigure(t *testing.T) {
	tests := []struct {
		g    goal
		v    float64
		want bool
	}{
		{goal{"<", 300}, 299.9, true},
		{goal{"<", 300}, 300, false},
		{goal{"<=", 16}, 16, true},
		{goal{">=", 5000}, 4999, false},
		{goal{">", 1}, 2, true},
		{goal{"?", 1}, 2, false},
	}
	for _, tt := range tests {
		if got := tt.g.met(tt.v); got != tt.want {
			t.Errorf("%s met(%v) = %v, want %v", tt.g.String(), tt.v, got, tt.want)
		}
	}
	f := &figure{Key: "x", Value: 450.123, Baseline: 150, goal: &goal{"<", 300}}
	f.finish()
	if f.Ratio != 3 || f.Met == nil || *f.Met || f.Goal != "< 300" || f.Value != 450.1 {
		t.Errorf("finish: %+v", f)
	}
	g := &figure{Key: "y", Value: 1, Error: "broken", goal: &goal{"<", 2}}
	g.finish()
	if g.Met != nil {
		t.Errorf("a figure that failed has met = %v", *g.Met)
	}
}

func TestReportJSON(t *testing.T) {
	r := &report{Time: time.Unix(0, 0)}
	r.add(&figure{Key: "agent_rss_mb", Value: 20})
	r.add(&figure{Key: "keystore_unwrap_us.memory", Value: 90})
	r.add(&figure{Key: "keystore_unwrap_us.tpm", Value: 2000})
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		RSS struct{ Value float64 } `json:"agent_rss_mb"`
		KS  map[string]struct {
			Value float64
		} `json:"keystore_unwrap_us"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.RSS.Value != 20 || got.KS["memory"].Value != 90 || got.KS["tpm"].Value != 2000 {
		t.Errorf("results.json shape: %s", b)
	}
	var md bytes.Buffer
	writeMarkdown(&md, r)
	if !strings.Contains(md.String(), "| `keystore_unwrap_us.tpm` | 2000 ") {
		t.Errorf("README table:\n%s", md.String())
	}
}

func TestSpread(t *testing.T) {
	tests := []struct {
		rounds []float64
		want   []float64
		text   string
	}{
		{nil, nil, ""},
		{[]float64{5}, nil, ""},
		{[]float64{300, 120.5, 410, 250}, []float64{120.5, 410}, "120.5–410"},
		{[]float64{-20, 35}, []float64{-20, 35}, "-20–35"},
	}
	for _, tt := range tests {
		got := spread(tt.rounds)
		if len(got) != len(tt.want) || (len(got) == 2 && (got[0] != tt.want[0] || got[1] != tt.want[1])) {
			t.Errorf("spread(%v) = %v, want %v", tt.rounds, got, tt.want)
		}
		if s := spreadString(got); s != tt.text {
			t.Errorf("spreadString(%v) = %q, want %q", got, s, tt.text)
		}
	}
	f := &figure{Key: "resolve_agent_p50_us", Unit: "µs", Value: 300, Rounds: []float64{300, 120.5, 410}, Baseline: 100, BaselineRounds: []float64{90, 100}}
	f.finish()
	if len(f.Spread) != 2 || f.Spread[0] != 120.5 || f.Spread[1] != 410 || len(f.BaselineSpread) != 2 || f.BaselineSpread[1] != 100 {
		t.Errorf("finish: spread %v, baseline spread %v", f.Spread, f.BaselineSpread)
	}
	r := &report{Time: time.Unix(0, 0)}
	r.add(f)
	r.add(&figure{Key: "piece_localapi_p50_us", Unit: "µs", Value: 150, Rounds: []float64{140, 160}})
	r.Figures[1].finish()
	var md bytes.Buffer
	writeMarkdown(&md, r)
	for _, want := range []string{"| `resolve_agent_p50_us` | 300 µs | 120.5–410 | 100 | 90–100 |", "## Where the agent's time goes", "| 150 µs | 140–160 | 50 % |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("README lacks %q:\n%s", want, md.String())
		}
	}
}
