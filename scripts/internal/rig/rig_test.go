package rig

import (
	"bytes"
	"image/color"
	"image/png"
	"slices"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ten := make([]time.Duration, 10)
	for i := range ten {
		ten[i] = time.Duration(i+1) * time.Microsecond
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Microsecond
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", []time.Duration{7}, 99, 7},
		{"p50 of 10", ten, 50, 5 * time.Microsecond},
		{"p99 of 10 is the max", ten, 99, 10 * time.Microsecond},
		{"p100", ten, 100, 10 * time.Microsecond},
		{"tiny p is the min", ten, 0.1, 1 * time.Microsecond},
		{"p99 of 100", hundred, 99, 99 * time.Microsecond},
		{"p99.5 of 100", hundred, 99.5, 100 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.in, tt.p); got != tt.want {
				t.Errorf("Percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("median modified its input: %v", tt.in)
		}
	}
}

func TestHistogram(t *testing.T) {
	tests := []struct {
		name   string
		in     []float64
		lo, hi float64
		bins   int
		want   []int
	}{
		{"spread", []float64{0, 1, 2.5, 9.99}, 0, 10, 5, []int{2, 1, 0, 0, 1}},
		{"below and above are clamped", []float64{-5, 10, 100}, 0, 10, 2, []int{1, 2}},
		{"empty range", []float64{1, 2}, 5, 5, 3, []int{2, 0, 0}},
		{"no bins", []float64{1}, 0, 1, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Histogram(tt.in, tt.lo, tt.hi, tt.bins); !slices.Equal(got, tt.want) {
				t.Errorf("histogram = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNiceStep(t *testing.T) {
	tests := []struct {
		span float64
		n    int
		want float64
	}{
		{3000, 6, 500},
		{100, 5, 20},
		{7, 5, 2},
		{0.9, 3, 0.5},
		{0, 5, 1},
	}
	for _, tt := range tests {
		if got := niceStep(tt.span, tt.n); got != tt.want {
			t.Errorf("niceStep(%v, %d) = %v, want %v", tt.span, tt.n, got, tt.want)
		}
	}
}

func TestRenderLatencyPNG(t *testing.T) {
	var a, d []time.Duration
	for i := range 1000 {
		a = append(a, time.Duration(500+i%300)*time.Microsecond)
		d = append(d, time.Duration(300+i%200)*time.Microsecond)
	}
	var buf bytes.Buffer
	err := RenderLatencyPNG(&buf, "TEST", []Series{
		{Name: "A", Samples: SortedCopy(a), Color: color.RGBA{200, 0, 0, 255}},
		{Name: "D", Samples: SortedCopy(d), Color: color.RGBA{0, 0, 200, 255}},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != chartW || b.Dy() != chartH {
		t.Errorf("size %v", b)
	}
}

func TestFontCoversLabels(t *testing.T) {
	for _, s := range []string{"0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", ".,:-+=/%()<>_ "} {
		for _, r := range s {
			if _, ok := glyphs[r]; !ok {
				t.Errorf("no glyph for %q", r)
			}
		}
	}
	for r, g := range glyphs {
		for _, row := range g {
			if len(row) != glyphW {
				t.Errorf("glyph %q has a row %q of width %d", r, row, len(row))
			}
		}
	}
}

func TestReplaceBetween(t *testing.T) {
	tests := []struct {
		doc, want string
		ok        bool
	}{
		{"a\n<!-- bench:begin -->\nold\n<!-- bench:end -->\nz\n", "a\n<!-- bench:begin -->\nNEW\n<!-- bench:end -->\nz\n", true},
		{"a\n<!-- bench:begin --><!-- bench:end -->\n", "a\n<!-- bench:begin -->\nNEW\n<!-- bench:end -->\n", true},
		{"no markers", "", false},
		{"<!-- bench:end --> <!-- bench:begin -->", "", false},
		{"<!-- bench:begin --><!-- bench:begin --><!-- bench:end -->", "", false},
	}
	for _, tt := range tests {
		got, err := ReplaceBetween([]byte(tt.doc), "<!-- bench:begin -->", "<!-- bench:end -->", []byte("NEW\n"))
		if (err == nil) != tt.ok || (tt.ok && string(got) != tt.want) {
			t.Errorf("ReplaceBetween(%q) = %q, %v; want %q, ok %v", tt.doc, got, err, tt.want, tt.ok)
		}
	}
}

func TestRenderTimeSeriesPNG(t *testing.T) {
	lim := 50.0
	var pts []Point
	for i := range 60 {
		pts = append(pts, Point{T: float64(i * 10), V: 40 + float64(i%7)})
	}
	c := TimeSeriesChart{Title: "TEST", Mark: 120, Shaded: []Span{{180, 190}}, Panels: []Panel{
		{Title: "A (MB)", Points: pts, Color: color.RGBA{200, 0, 0, 255}, Limit: &lim},
		{Title: "FLAT", Points: []Point{{0, 3}, {10, 3}}, Color: color.RGBA{0, 0, 200, 255}},
		{Title: "EMPTY"},
	}}
	var buf bytes.Buffer
	if err := RenderTimeSeriesPNG(&buf, c); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	cellW, cellH := tsMarginL+tsPanelW+tsMarginR, tsMarginT+tsPanelH+tsMarginB
	if b := img.Bounds(); b.Dx() != 2*cellW || b.Dy() != tsHeader+2*cellH {
		t.Errorf("size %v", b)
	}
}

func TestCPUTimes(t *testing.T) {
	a, err := ParseCPUTimes("cpu  100 0 50 800 5 0 5 40 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if err != nil {
		t.Fatal(err)
	}
	if a != (CPUTimes{Total: 1000, Steal: 40}) {
		t.Errorf("parsed %+v", a)
	}
	b := CPUTimes{Total: 1200, Steal: 90}
	if p := StealPercent(a, b); p != 25 {
		t.Errorf("steal %v %%, want 25", p)
	}
	if p := StealPercent(a, a); p != -1 {
		t.Errorf("steal over no time %v, want -1", p)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 3", "cpu 1 2 3 4 5 6 7 x"} {
		if _, err := ParseCPUTimes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ReadCPUTimes(); err != nil {
		t.Errorf("this machine's /proc/stat: %v", err)
	}
	stolen := StealMeter()
	time.Sleep(50 * time.Millisecond) // idle time counts too: at 100 Hz, five ticks a CPU
	if p := stolen(); p < 0 || p > 100 {
		t.Errorf("StealMeter over 50 ms of this machine's time: %v %%", p)
	}
}

func TestDescribeCPUIdle(t *testing.T) {
	tests := []struct{ driver, ns, want string }{
		{"", "", ""},
		{"intel_idle", "", "cpuidle intel_idle"},
		{"haltpoll", "", "cpuidle haltpoll"},
		{"haltpoll", "0", "cpuidle haltpoll with guest halt polling off: an idle vCPU halts at once, and waking it is a VM exit"},
		{"haltpoll", "200000", "cpuidle haltpoll, an idle vCPU polling 200000 ns before it halts"},
	}
	for _, tt := range tests {
		if got := DescribeCPUIdle(tt.driver, tt.ns); got != tt.want {
			t.Errorf("DescribeCPUIdle(%q, %q) = %q, want %q", tt.driver, tt.ns, got, tt.want)
		}
	}
}
