package rig

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"time"
)

// Series is one latency distribution on the chart.
type Series struct {
	Name    string
	Samples []time.Duration // sorted
	Color   color.RGBA
}

// chart geometry.
const (
	chartW, chartH = 960, 540
	marginL        = 80
	marginR        = 24
	marginT        = 70
	marginB        = 70
	chartBins      = 80
	fontScale      = 2
)

// niceStep returns a round tick step (1, 2 or 5 times a power of ten) that
// cuts span into about n parts.
func niceStep(span float64, n int) float64 {
	if span <= 0 || n <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// RenderLatencyPNG draws the histograms of the Series (share of requests per
// latency bin, in microseconds) with their p50 (solid) and p99 (dashed)
// marked, and writes a PNG.
func RenderLatencyPNG(w io.Writer, title string, ss []Series) error {
	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	black := color.RGBA{0, 0, 0, 255}
	grey := color.RGBA{225, 225, 225, 255}

	// X range: up to the largest p99.5, so one outlier does not squash the
	// chart; the last bin holds everything beyond.
	var xmax float64
	for _, s := range ss {
		xmax = math.Max(xmax, US(Percentile(s.Samples, 99.5)))
	}
	if xmax <= 0 {
		xmax = 1
	}
	step := niceStep(xmax, 6)
	xmax = math.Ceil(xmax/step) * step

	shares := make([][]float64, len(ss))
	var ymax float64
	for i, s := range ss {
		vals := make([]float64, len(s.Samples))
		for j, d := range s.Samples {
			vals[j] = US(d)
		}
		counts := Histogram(vals, 0, xmax, chartBins)
		shares[i] = make([]float64, len(counts))
		for j, c := range counts {
			if len(vals) > 0 {
				shares[i][j] = 100 * float64(c) / float64(len(vals))
			}
			ymax = math.Max(ymax, shares[i][j])
		}
	}
	if ymax <= 0 {
		ymax = 1
	}
	ystep := niceStep(ymax, 5)
	ymax = math.Ceil(ymax/ystep) * ystep

	pw, ph := chartW-marginL-marginR, chartH-marginT-marginB
	px := func(v float64) int { return marginL + int(math.Round(v/xmax*float64(pw))) }
	py := func(v float64) int { return marginT + ph - int(math.Round(v/ymax*float64(ph))) }

	// Grid and tick labels.
	for v := 0.0; v <= ymax+ystep/2; v += ystep {
		y := py(v)
		hline(img, marginL, marginL+pw, y, grey)
		l := TrimFloat(v)
		drawText(img, marginL-8-textWidth(l, fontScale), y-glyphH*fontScale/2, l, fontScale, black)
	}
	for v := 0.0; v <= xmax+step/2; v += step {
		x := px(v)
		vline(img, x, marginT, marginT+ph, grey, 0, 1)
		l := TrimFloat(v)
		drawText(img, x-textWidth(l, fontScale)/2, marginT+ph+8, l, fontScale, black)
	}

	// Bars, translucent so that overlaps show.
	bw := float64(pw) / chartBins
	for i, s := range ss {
		c := s.Color
		c.A = 110
		fill := image.NewUniform(premultiply(c))
		for j, sh := range shares[i] {
			if sh == 0 {
				continue
			}
			x0 := marginL + int(math.Round(float64(j)*bw))
			x1 := marginL + int(math.Round(float64(j+1)*bw)) - 1
			r := image.Rect(x0, py(sh), x1, marginT+ph)
			draw.Draw(img, r, fill, image.Point{}, draw.Over)
		}
	}
	// Percentile markers.
	for _, s := range ss {
		vline(img, px(math.Min(US(Percentile(s.Samples, 50)), xmax)), marginT, marginT+ph, s.Color, 0, 2)
		vline(img, px(math.Min(US(Percentile(s.Samples, 99)), xmax)), marginT, marginT+ph, s.Color, 6, 2)
	}

	// Axes.
	hline(img, marginL, marginL+pw, marginT+ph, black)
	vline(img, marginL, marginT, marginT+ph, black, 0, 1)

	// Labels and legend.
	drawText(img, marginL, 12, title, fontScale, black)
	drawText(img, marginL, marginT-22, "% OF REQUESTS PER BIN", fontScale, black)
	xl := "LATENCY OF ONE RESOLUTION (US), THE LAST BIN HOLDS THE TAIL"
	drawText(img, marginL+(pw-textWidth(xl, fontScale))/2, chartH-28, xl, fontScale, black)
	ly := marginT + 8
	// A white panel behind the legend, so that bars and markers do not run
	// through its text.
	var legendW int
	for _, s := range ss {
		legendW = max(legendW, textWidth(legendLabel(s), fontScale)+22)
	}
	draw.Draw(img, image.Rect(chartW-marginR-12-legendW-6, ly-4, chartW-marginR-6, ly+22*len(ss)+18),
		image.NewUniform(color.White), image.Point{}, draw.Src)
	for _, s := range ss {
		l := legendLabel(s)
		x := chartW - marginR - 12 - textWidth(l, fontScale) - 22
		draw.Draw(img, image.Rect(x, ly, x+14, ly+14), image.NewUniform(s.Color), image.Point{}, draw.Src)
		drawText(img, x+22, ly, l, fontScale, black)
		ly += 22
	}
	lx := chartW - marginR - 12 - textWidth("SOLID P50, DASHED P99", fontScale)
	drawText(img, lx, ly, "SOLID P50, DASHED P99", fontScale, black)
	return png.Encode(w, img)
}

func premultiply(c color.RGBA) color.RGBA {
	a := uint32(c.A)
	return color.RGBA{uint8(uint32(c.R) * a / 255), uint8(uint32(c.G) * a / 255), uint8(uint32(c.B) * a / 255), c.A}
}

func hline(img *image.RGBA, x0, x1, y int, c color.Color) {
	for x := x0; x <= x1; x++ {
		img.Set(x, y, c)
	}
}

// vline draws a vertical line width pixels wide, solid when dash is 0 and
// dashed in dash-pixel segments otherwise.
func vline(img *image.RGBA, x, y0, y1 int, c color.Color, dash, width int) {
	for y := y0; y <= y1; y++ {
		if dash > 0 && ((y-y0)/dash)%2 == 1 {
			continue
		}
		for dx := range width {
			img.Set(x+dx, y, c)
		}
	}
}

func legendLabel(s Series) string {
	return fmt.Sprintf("%s: P50 %s P99 %s US (N %d)", s.Name,
		TrimFloat(Round3(US(Percentile(s.Samples, 50)))), TrimFloat(Round3(US(Percentile(s.Samples, 99)))), len(s.Samples))
}
