package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// namedChart is a chart and the file name it is written to.
type namedChart struct {
	file string
	c    *chart
}

// codecCharts turns a parsed run into four charts: median ns/op and
// median allocs/op of every codec, for the encode cases and for the decode
// and stream cases. Cases without a hubwire result (the copy floor) are
// left out. run names the run (date, note) and source the file it was read
// from, for the captions.
func codecCharts(r *results, run, source string) []namedChart {
	machine := r.cpu
	if r.goos != "" {
		machine += ", " + r.goos + "/" + r.goarch
	}
	runs := 0
	for _, cs := range r.cases {
		for _, s := range r.data[cs] {
			runs = max(runs, len(s.nsop))
		}
	}
	caption := []string{
		fmt.Sprintf("Run %s · %s · -cpu 1 · each bar the median of %d runs", run, machine, runs),
		"Source: " + source + " (bench/run.sh raw output) · drawn by bench/cmd/compare -svg",
		"pahov5 is paho.golang's MQTT 5 codec (its packets carry one more byte); mochi-inplace is mochi's functions on a buffer already in memory.",
	}
	ns := func(title string, keep func(string) bool, note string) *chart {
		c := &chart{title: title, log: true, unit: "ns per packet, shorter is faster; × = codec's ns ÷ hubwire's ns in the same run",
			caption: append(slices.Clip(caption), note)}
		for _, cs := range r.cases {
			hw := r.data[cs]["hubwire"]
			if !keep(cs) || hw == nil {
				continue
			}
			per, name := 1.0, cs
			if strings.HasPrefix(cs, "Stream") {
				per, name = streamPackets, cs+" (per packet of a 10,000-packet stream)"
			}
			g := group{name: name}
			for _, codec := range r.codecs[cs] {
				m := median(r.data[cs][codec].nsop)
				label := num(m/per) + " ns"
				if codec != "hubwire" {
					label += " · " + num(m/median(hw.nsop)) + "×"
				}
				g.bars = append(g.bars, bar{series: codecLabel(codec), value: m / per, label: label})
			}
			c.groups = append(c.groups, g)
		}
		return c
	}
	allocs := func(title string, keep func(string) bool) *chart {
		c := &chart{title: title, unit: "heap allocations per packet (label: allocations · bytes), shorter is better", caption: caption}
		for _, cs := range r.cases {
			if !keep(cs) || r.data[cs]["hubwire"] == nil {
				continue
			}
			per, name := 1.0, cs
			if strings.HasPrefix(cs, "Stream") {
				per, name = streamPackets, cs+" (per packet of a 10,000-packet stream)"
			}
			g := group{name: name}
			for _, codec := range r.codecs[cs] {
				s := r.data[cs][codec]
				a, b := median(s.allocs)/per, median(s.bop)/per
				g.bars = append(g.bars, bar{series: codecLabel(codec), value: a,
					label: fmt.Sprintf("%s allocs · %s B", count(a), count(b))})
			}
			c.groups = append(c.groups, g)
		}
		return c
	}
	encode := func(cs string) bool { return strings.HasPrefix(cs, "Encode") }
	decode := func(cs string) bool { return strings.HasPrefix(cs, "Decode") || strings.HasPrefix(cs, "Stream") }
	return []namedChart{
		{"codec-encode-ns.svg", ns("Encoding one MQTT packet: hubwire vs paho, paho.golang, mochi", encode,
			"hubwire and paho encode into a reused buffer; mochi allocates a buffer per packet as its broker does (mochi-inplace reuses one).")},
		{"codec-decode-ns.svg", ns("Decoding one MQTT packet: hubwire vs paho, paho.golang, mochi", decode,
			"hubwire decodes a frame in memory; paho and mochi include their read path, as their users decode; mochi-inplace is the like-for-like floor.")},
		{"codec-encode-allocs.svg", allocs("Allocations to encode one MQTT packet", encode)},
		{"codec-decode-allocs.svg", allocs("Allocations to decode one MQTT packet", decode)},
	}
}

// count formats an allocation or byte count: whole numbers as such.
func count(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return num(v)
}

// runName is the run's date and note from a results file name such as
// results/2026-11-26-0655-final-raw.txt ("2026-11-26 06:55 UTC, final"),
// or "" when the name does not start with a date and time.
func runName(path string) string {
	m := runFile.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		return ""
	}
	s := fmt.Sprintf("%s %s:%s UTC", m[1], m[2], m[3])
	if m[4] != "" && m[4] != "raw" {
		s += ", " + m[4]
	}
	return s
}

var runFile = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})-(\d{2})(\d{2})(?:-([a-z0-9]+?))?(?:-raw)?\.[a-z]+$`)

// readTable reads a chart from a small tab-separated file:
//
//	# title: Device client telemetry, QoS 1, 64 in flight
//	# unit: ns per message, shorter is faster
//	# scale: log                (or linear, the default)
//	# baseline: hubwire         (optional: labels also show value ÷ baseline's)
//	# suffix:  ns               (optional: appended to each value label)
//	# caption: Run 2026-12-02 …  (repeatable: one caption line each)
//	metric<TAB>hubwire<TAB>amenzhinsky
//	wall ns/msg<TAB>12948<TAB>54213
//
// A "#" line that does not start with one word and a colon is a comment.
// The first line that is not a comment names the series (its first cell
// is the group column's heading); every further line is a group: its name,
// then one value per series. An empty cell or "–" draws no bar. Commas in
// numbers are thousands separators; the label shows the cell as written.
func readTable(path string) (*chart, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &chart{}
	var series []string
	baseline, suffix := "", ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if d, ok := strings.CutPrefix(line, "#"); ok {
			k, v, ok := strings.Cut(d, ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				continue // a plain comment: no "word:" directive
			}
			switch k {
			case "title":
				c.title = v
			case "unit":
				c.unit = v
			case "caption":
				c.caption = append(c.caption, v)
			case "scale":
				switch v {
				case "log":
					c.log = true
				case "linear":
					c.log = false
				default:
					return nil, fmt.Errorf("%w: %s:%d: scale %q (want log or linear)", errTable, path, n, v)
				}
			case "baseline":
				baseline = v
			case "suffix":
				suffix = " " + v
			default:
				return nil, fmt.Errorf("%w: %s:%d: unknown directive %q", errTable, path, n, k)
			}
			continue
		}
		cells := strings.Split(line, "\t")
		if series == nil {
			if len(cells) < 2 {
				return nil, fmt.Errorf("%w: %s:%d: the header needs a group column and at least one series, tab-separated", errTable, path, n)
			}
			series = cells[1:]
			continue
		}
		if len(cells) != len(series)+1 {
			return nil, fmt.Errorf("%w: %s:%d: %d cells, the header has %d", errTable, path, n, len(cells), len(series)+1)
		}
		g := group{name: cells[0]}
		vals := map[string]float64{}
		for i, cell := range cells[1:] {
			cell = strings.TrimSpace(cell)
			if cell == "" || cell == "–" || cell == "-" {
				continue
			}
			v, err := strconv.ParseFloat(strings.ReplaceAll(cell, ",", ""), 64)
			if err != nil {
				return nil, fmt.Errorf("%w: %s:%d: %s: %q is not a number", errTable, path, n, series[i], cell)
			}
			vals[series[i]] = v
			g.bars = append(g.bars, bar{series: series[i], value: v, label: cell + suffix})
		}
		if base, ok := vals[baseline]; ok && base != 0 {
			for i := range g.bars {
				if g.bars[i].series != baseline {
					g.bars[i].label += " · " + num(g.bars[i].value/base) + "×"
				}
			}
		}
		c.groups = append(c.groups, g)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if c.title == "" || c.unit == "" {
		return nil, fmt.Errorf("%w: %s: needs # title: and # unit: lines", errTable, path)
	}
	if len(c.groups) == 0 {
		return nil, fmt.Errorf("%w: %s: no data rows", errTable, path)
	}
	return c, nil
}

// tableChart renders the table file path into dir, as the file's base name
// with .svg, and returns the SVG's path.
func tableChart(path, dir string) (string, error) {
	c, err := readTable(path)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))+".svg")
	return out, c.writeFile(out)
}
