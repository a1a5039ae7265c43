package rig

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"slices"
)

// Point is one sample of a time series: T seconds into the run.
type Point struct {
	T, V float64
}

// Span is a stretch of time to shade on every panel, in seconds.
type Span struct {
	From, To float64
}

// Panel is one time series drawn on its own axes.
type Panel struct {
	Title  string // upper case reads best in the bitmap font
	Points []Point
	Color  color.RGBA
	// Second, if set, is another series on the same axes, drawn in
	// SecondColor (p50 under p99).
	Second      []Point
	SecondColor color.RGBA
	// Limit, when set, is drawn as a dashed red horizontal line (a
	// threshold the series must stay under).
	Limit *float64
}

// TimeSeriesChart is a grid of panels sharing the time axis.
type TimeSeriesChart struct {
	Title string
	// Mark is a time drawn as a vertical line on every panel (the end of
	// the warm-up); 0 for none.
	Mark float64
	// Shaded spans (the injected faults) are drawn behind every panel.
	Shaded []Span
	Panels []Panel
	// Columns of panels; default 2.
	Columns int
}

// panel geometry of the time series chart.
const (
	tsPanelW, tsPanelH = 560, 260
	tsMarginL          = 90
	tsMarginR          = 20
	tsMarginT          = 40
	tsMarginB          = 40
	tsHeader           = 50
)

// RenderTimeSeriesPNG draws the chart and writes a PNG.
func RenderTimeSeriesPNG(w io.Writer, c TimeSeriesChart) error {
	cols := c.Columns
	if cols <= 0 {
		cols = 2
	}
	rows := (len(c.Panels) + cols - 1) / cols
	cellW := tsMarginL + tsPanelW + tsMarginR
	cellH := tsMarginT + tsPanelH + tsMarginB
	img := image.NewRGBA(image.Rect(0, 0, cols*cellW, tsHeader+rows*cellH))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	black := color.RGBA{0, 0, 0, 255}
	drawText(img, tsMarginL, 14, c.Title, fontScale, black)

	var tmax float64
	for _, p := range c.Panels {
		for _, pt := range p.Points {
			tmax = math.Max(tmax, pt.T)
		}
	}
	if tmax <= 0 {
		tmax = 1
	}
	tstep := niceStep(tmax, 6)
	tmax = math.Ceil(tmax/tstep) * tstep

	for i, p := range c.Panels {
		x0 := (i%cols)*cellW + tsMarginL
		y0 := tsHeader + (i/cols)*cellH + tsMarginT
		drawPanel(img, x0, y0, tmax, tstep, c, p)
	}
	return png.Encode(w, img)
}

func drawPanel(img *image.RGBA, x0, y0 int, tmax, tstep float64, c TimeSeriesChart, p Panel) {
	black := color.RGBA{0, 0, 0, 255}
	grey := color.RGBA{225, 225, 225, 255}
	shade := color.RGBA{255, 236, 200, 255}
	red := color.RGBA{200, 0, 0, 255}

	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, pt := range slices.Concat(p.Points, p.Second) {
		ymin, ymax = math.Min(ymin, pt.V), math.Max(ymax, pt.V)
	}
	if p.Limit != nil {
		ymin, ymax = math.Min(ymin, *p.Limit), math.Max(ymax, *p.Limit)
	}
	if math.IsInf(ymin, 0) {
		ymin, ymax = 0, 1
	}
	// Start the axis at 0 unless the values sit far above it, so that a
	// flat series looks flat and a small drift is still visible.
	if ymin > 0 && ymin < ymax/2 {
		ymin = 0
	}
	if ymax-ymin < 1e-9 {
		ymax = ymin + math.Max(1, math.Abs(ymin)*0.1)
	}
	ystep := niceStep(ymax-ymin, 4)
	ymin = math.Floor(ymin/ystep) * ystep
	ymax = math.Ceil(ymax/ystep) * ystep

	px := func(t float64) int { return x0 + int(math.Round(t/tmax*tsPanelW)) }
	py := func(v float64) int { return y0 + tsPanelH - int(math.Round((v-ymin)/(ymax-ymin)*tsPanelH)) }

	for _, s := range c.Shaded {
		r := image.Rect(px(math.Max(s.From, 0)), y0, px(math.Min(s.To, tmax))+1, y0+tsPanelH)
		draw.Draw(img, r, image.NewUniform(shade), image.Point{}, draw.Src)
	}
	for v := ymin; v <= ymax+ystep/2; v += ystep {
		y := py(v)
		hline(img, x0, x0+tsPanelW, y, grey)
		l := TrimFloat(Round3(v))
		drawText(img, x0-8-textWidth(l, fontScale), y-glyphH, l, fontScale, black)
	}
	for t := 0.0; t <= tmax+tstep/2; t += tstep {
		x := px(t)
		vline(img, x, y0, y0+tsPanelH, grey, 0, 1)
		l := TrimFloat(t)
		drawText(img, x-textWidth(l, fontScale)/2, y0+tsPanelH+6, l, fontScale, black)
	}
	if c.Mark > 0 {
		vline(img, px(c.Mark), y0, y0+tsPanelH, black, 4, 1)
	}
	if p.Limit != nil {
		y := py(*p.Limit)
		for x := x0; x <= x0+tsPanelW; x++ {
			if (x-x0)/6%2 == 0 {
				img.Set(x, y, red)
				img.Set(x, y+1, red)
			}
		}
	}
	for i := 1; i < len(p.Second); i++ {
		a, b := p.Second[i-1], p.Second[i]
		line(img, px(a.T), py(a.V), px(b.T), py(b.V), p.SecondColor)
	}
	for i := 1; i < len(p.Points); i++ {
		a, b := p.Points[i-1], p.Points[i]
		line(img, px(a.T), py(a.V), px(b.T), py(b.V), p.Color)
	}
	for _, pt := range p.Points {
		draw.Draw(img, image.Rect(px(pt.T)-2, py(pt.V)-2, px(pt.T)+3, py(pt.V)+3), image.NewUniform(p.Color), image.Point{}, draw.Src)
	}
	hline(img, x0, x0+tsPanelW, y0+tsPanelH, black)
	vline(img, x0, y0, y0+tsPanelH, black, 0, 1)
	drawText(img, x0, y0-24, p.Title, fontScale, black)
}

// line draws a two-pixel-thick line from (x0, y0) to (x1, y1) (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		img.Set(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
