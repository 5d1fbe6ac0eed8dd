package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart size and the width of the legend column at its right.
const (
	chartWidth  = 11 * vg.Inch
	chartHeight = 6 * vg.Inch
	legendWidth = 3.3 * vg.Inch
	chartDPI    = 110
)

// writeChart draws checks/s against callers, one line per driver, for one
// workload, with the redis-benchmark figures as horizontal lines, and saves
// it as a PNG at path.
func writeChart(path string, rep *report, wl workload) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Rate-limit checks per second, %q workload\n%s, one private redis-server", wl.name, wl.desc)
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = "concurrent callers (log scale)"
	p.Y.Label.Text = "checks per second (thousands)"
	p.X.Scale = plot.LogScale{}
	ticks := make(plot.ConstantTicks, len(rep.cfg.callers))
	for i, n := range rep.cfg.callers {
		ticks[i] = plot.Tick{Value: float64(n), Label: fmt.Sprint(n)}
	}
	p.X.Tick.Marker = ticks
	lo, hi := rep.cfg.callers[0], rep.cfg.callers[len(rep.cfg.callers)-1]
	p.X.Min, p.X.Max = float64(lo)*0.8, float64(hi)*1.25
	p.Y.Min = 0
	p.Y.Tick.Marker = plot.TickerFunc(linearTicks)
	p.Add(plotter.NewGrid())

	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	legend.TextStyle.Font.Size = vg.Points(10)
	legend.ThumbnailWidth = 0.45 * vg.Inch
	legend.Padding = vg.Points(5)

	for _, d := range rep.drivers() {
		i := driverIndex(d.key) // a driver keeps its colour and shape whatever -libs picks
		var pts plotter.XYs
		for _, n := range rep.cfg.callers {
			if r, ok := rep.find(d.key, wl.name, n); ok && r.checks > 0 {
				pts = append(pts, plotter.XY{X: float64(n), Y: r.rate() / 1000})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color = plotutil.Color(i)
		points.Color = line.Color
		points.Shape = plotutil.Shape(i)
		points.Radius = vg.Points(3.5)
		if d.peer {
			line.Width = vg.Points(1.5)
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		} else {
			line.Width = vg.Points(2.5)
		}
		p.Add(line, points)
		legend.Add(d.name, line, points)
	}
	top := 0.0
	for _, c := range rep.ceilings {
		top = max(top, c.rps/1000)
	}
	p.Y.Max = max(p.Y.Max, top) * 1.08
	var lines []ceilingRun
	for _, c := range rep.ceilings {
		if !c.ceiling && c.err == nil && c.rps > 0 {
			lines = append(lines, c)
		}
	}
	if c := rep.ceiling(); c > 0 {
		lines = append([]ceilingRun{{ceiling: true, clients: ceilingSpecs[0].clients, pipeline: ceilingSpecs[0].pipeline, rps: c}}, lines...)
	}
	for i, c := range lines {
		line, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: c.rps / 1000}, {X: p.X.Max, Y: c.rps / 1000}})
		if err != nil {
			return err
		}
		line.Color = color.Gray{Y: uint8(60 + 60*i)}
		line.Width = vg.Points(1)
		line.Dashes = []vg.Length{vg.Points(2), vg.Points(2 + 2*float64(i))}
		p.Add(line)
		label := fmt.Sprintf("redis-benchmark -c %d -P %d: %s/s", c.clients, c.pipeline, fmtRate(c.rps))
		if c.ceiling {
			label += " (ceiling)"
		}
		legend.Add(label, line)
	}

	img := vgimg.NewWith(vgimg.UseWH(chartWidth, chartHeight), vgimg.UseDPI(chartDPI))
	dc := draw.New(img)
	// White background: a transparent PNG is unreadable on dark pages.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	p.Draw(draw.Crop(dc, vg.Points(4), -legendWidth, 0, -vg.Points(8)))
	legend.Draw(draw.Crop(dc, chartWidth-legendWidth+vg.Points(8), 0, 0, -vg.Points(40)))

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// driverIndex returns the position of the driver key in drivers.
func driverIndex(key string) int {
	for i, d := range drivers {
		if d.key == key {
			return i
		}
	}
	return len(drivers)
}

// linearTicks returns about eight major ticks at a round step (1, 2, 2.5 or
// 5 times a power of ten) from 0, unlabelled minor ticks between them.
func linearTicks(lo, hi float64) []plot.Tick {
	if hi <= lo {
		return nil
	}
	raw := (hi - lo) / 8
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * pow
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*pow >= raw {
			step = m * pow
			break
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
		if mid := v + step/2; mid <= hi {
			ticks = append(ticks, plot.Tick{Value: mid})
		}
	}
	return ticks
}
