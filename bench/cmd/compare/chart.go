package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// errTable is wrapped by every error about a malformed table file (-table).
var errTable = errors.New("bad table file")

// errChart is wrapped by every error about data that cannot be charted,
// such as a value of 0 or below on a log scale.
var errChart = errors.New("cannot chart")

// chart is a horizontal bar chart: groups of bars (a benchmark case, a
// broker and QoS…), one bar per series (a codec, a client…), each labelled
// with its series name on the left and its value at its end.
type chart struct {
	title   string
	unit    string   // the axis title: what the bars measure and in which unit
	caption []string // lines under the chart: run, machine, source
	log     bool     // logarithmic value axis
	groups  []group
}

type group struct {
	name string
	bars []bar
}

type bar struct {
	series string
	value  float64
	label  string // drawn after the bar's end
}

// palette gives each series the same colour in every chart; hubwire's is
// the strong blue, and the first series of a table gets it too.
var palette = map[string]string{
	"hubwire":          "#1f5fbf",
	"paho":             "#d9822b",
	"paho.mqtt.golang": "#d9822b",
	"pahov5":           "#b35c9e",
	"pahov5 (MQTT 5)":  "#b35c9e",
	"paho.golang":      "#b35c9e",
	"mochi":            "#3d9970",
	"mochi-inplace":    "#8fc9a8",
	"amenzhinsky":      "#d9822b",
	"raw":              "#8a8a8a",
	"emulator":         "#1f5fbf",
	"mosquitto":        "#c0504d",
}

var spare = []string{"#c0504d", "#6b6ecf", "#8c6d31", "#17becf", "#7f7f7f"}

// colors assigns a colour to every series in c, in order of appearance.
func (c *chart) colors() map[string]string {
	m := map[string]string{}
	n := 0
	for _, g := range c.groups {
		for _, b := range g.bars {
			if _, ok := m[b.series]; ok {
				continue
			}
			if col, ok := palette[b.series]; ok {
				m[b.series] = col
			} else {
				m[b.series] = spare[n%len(spare)]
				n++
			}
		}
	}
	return m
}

// Layout, in SVG user units (pixels).
const (
	chartWidth  = 960
	fontSize    = 12
	charWidth   = 7.0 // a generous average advance of a 12 px sans-serif glyph
	barHeight   = 13
	barGap      = 3
	groupHead   = 20 // the group name's row
	groupGap    = 10
	marginTop   = 64 // title and axis
	labelMargin = 150
	captionLine = 16
	// captionChars is how many characters of 11 px caption text fit the
	// width, with room to spare.
	captionChars = 158
)

// wrap breaks s at spaces into lines of at most n characters (a longer
// word gets a line of its own).
func wrap(s string, n int) []string {
	var lines []string
	var cur []rune
	for _, word := range strings.Fields(s) {
		w := []rune(word)
		if len(cur) > 0 && len(cur)+1+len(w) > n {
			lines = append(lines, string(cur))
			cur = cur[:0]
		}
		if len(cur) > 0 {
			cur = append(cur, ' ')
		}
		cur = append(cur, w...)
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	return lines
}

// svg renders c as a standalone SVG document.
func (c *chart) svg(w io.Writer) error {
	if len(c.groups) == 0 {
		return fmt.Errorf("%w: %q has no data", errChart, c.title)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	longest := 0
	for _, g := range c.groups {
		for _, b := range g.bars {
			if math.IsNaN(b.value) || math.IsInf(b.value, 0) {
				return fmt.Errorf("%w: %s / %s: value %v", errChart, g.name, b.series, b.value)
			}
			if c.log && b.value <= 0 {
				return fmt.Errorf("%w: %s / %s: value %v on a log scale", errChart, g.name, b.series, b.value)
			}
			if b.value < 0 {
				return fmt.Errorf("%w: %s / %s: negative value %v", errChart, g.name, b.series, b.value)
			}
			lo, hi = min(lo, b.value), max(hi, b.value)
			longest = max(longest, len([]rune(b.series)))
		}
	}
	if math.IsInf(lo, 0) {
		return fmt.Errorf("%w: %q has no bars", errChart, c.title)
	}
	left := float64(24 + longest*int(charWidth))
	right := float64(chartWidth - labelMargin)
	var ax axis
	if c.log {
		ax = logAxis(lo, hi)
	} else {
		ax = linearAxis(hi)
	}
	x := func(v float64) float64 { return left + ax.frac(v)*(right-left) }

	// The bars, collected first so the height is known.
	var body bytes.Buffer
	cols := c.colors()
	y := float64(marginTop)
	for _, g := range c.groups {
		fmt.Fprintf(&body, `<text x="%g" y="%g" font-weight="bold">%s</text>`+"\n", 8.0, y+14, esc(g.name))
		y += groupHead
		for _, b := range g.bars {
			x0, x1 := x(ax.min), x(b.value)
			if !c.log && b.value == 0 {
				x1 = x0
			}
			fmt.Fprintf(&body, `<text x="%g" y="%g" text-anchor="end">%s</text>`+"\n", left-6, y+barHeight-2, esc(b.series))
			fmt.Fprintf(&body, `<rect x="%.1f" y="%g" width="%.1f" height="%d" fill="%s"><title>%s, %s: %s</title></rect>`+"\n",
				x0, y, max(x1-x0, 0.5), barHeight, cols[b.series], esc(g.name), esc(b.series), esc(b.label))
			fmt.Fprintf(&body, `<text x="%.1f" y="%g">%s</text>`+"\n", x1+4, y+barHeight-2, esc(b.label))
			y += barHeight + barGap
		}
		y += groupGap
	}
	plotBottom := y - groupGap + 4
	var caption []string
	for _, line := range c.caption {
		caption = append(caption, wrap(line, captionChars)...)
	}
	height := plotBottom + 40 + float64(len(caption))*captionLine

	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%.0f" viewBox="0 0 %d %.0f" font-family="DejaVu Sans, Verdana, Arial, sans-serif" font-size="%d" fill="#222">`+"\n",
		chartWidth, height, chartWidth, height, fontSize)
	fmt.Fprintf(w, `<title>%s</title>`+"\n", esc(c.title))
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="#fff"/>`+"\n")
	fmt.Fprintf(w, `<text x="8" y="22" font-size="16" font-weight="bold">%s</text>`+"\n", esc(c.title))
	scale := "linear scale"
	if c.log {
		scale = "log scale"
	}
	fmt.Fprintf(w, `<text x="%g" y="40" fill="#444">%s (%s)</text>`+"\n", left, esc(c.unit), scale)
	// Grid and tick labels, above the bars and again below them.
	for _, t := range ax.ticks {
		tx := x(t.v)
		col, wid := "#ddd", 1.0
		if t.minor {
			col, wid = "#f0f0f0", 1
		}
		fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%g"/>`+"\n", tx, marginTop-6, tx, plotBottom, col, wid)
		if t.label != "" {
			fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555" font-size="11">%s</text>`+"\n", tx, marginTop-10, esc(t.label))
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555" font-size="11">%s</text>`+"\n", tx, plotBottom+14, esc(t.label))
		}
	}
	fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#888"/>`+"\n", left, marginTop-6, left, plotBottom)
	w.Write(body.Bytes())
	cy := plotBottom + 36
	for _, line := range caption {
		fmt.Fprintf(w, `<text x="8" y="%.1f" fill="#555" font-size="11">%s</text>`+"\n", cy, esc(line))
		cy += captionLine
	}
	_, err := fmt.Fprintf(w, "</svg>\n")
	return err
}

// writeFile renders c into path.
func (c *chart) writeFile(path string) error {
	var b bytes.Buffer
	if err := c.svg(&b); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

type tick struct {
	v     float64
	label string
	minor bool
}

// axis maps values to [0, 1] of the plot's width.
type axis struct {
	min   float64
	frac  func(float64) float64
	ticks []tick
}

// logAxis spans whole decades around [lo, hi].
func logAxis(lo, hi float64) axis {
	a := math.Floor(math.Log10(lo))
	b := math.Ceil(math.Log10(hi))
	if b <= a {
		b = a + 1
	}
	ax := axis{min: math.Pow(10, a), frac: func(v float64) float64 { return (math.Log10(v) - a) / (b - a) }}
	for e := a; e <= b; e++ {
		d := math.Pow(10, e)
		ax.ticks = append(ax.ticks, tick{v: d, label: short(d)})
		if e < b {
			for k := 2.0; k <= 9; k++ {
				ax.ticks = append(ax.ticks, tick{v: k * d, minor: true})
			}
		}
	}
	return ax
}

// linearAxis spans [0, a round number ≥ hi] in steps of 1, 2 or 5 × 10ⁿ.
func linearAxis(hi float64) axis {
	if hi <= 0 {
		hi = 1
	}
	raw := hi / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	top := math.Ceil(hi/step) * step
	ax := axis{min: 0, frac: func(v float64) float64 { return v / top }}
	for i := 0; float64(i)*step <= top*(1+1e-9); i++ {
		v := float64(i) * step
		ax.ticks = append(ax.ticks, tick{v: v, label: short(v)})
	}
	return ax
}

// short formats an axis value: 0.01, 0.5, 10, 1k, 250k, 1M.
func short(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 6, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 6, 64) + "k"
	default:
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
}
