// Command compare runs the bench module's codec benchmarks (or reads the
// output of an earlier run) and prints a markdown report: for each case,
// each codec's median ns/op, B/op, allocs/op and MB/s, the ratio
// peer/hubwire of the medians, and a check of the codec's speed targets
// against the peers and its own budget.
//
// Usage, from the bench directory (bench/run.sh does this from anywhere):
//
//	go run ./cmd/compare [-count 6] [-benchtime 150ms] [-bench regexp] [-raw out.txt] [-o report.md]
//	go run ./cmd/compare -in out.txt   # report on saved `go test -bench` output
//	go run ./cmd/compare -in results/2026-11-26-0655-final-raw.txt -svg charts/
//	go run ./cmd/compare -svg charts/ -table 'results/*.tsv'   # or -table x.tsv [-table …]
//
// -svg writes bar charts (SVG) of the run into a directory: median ns/op
// and allocs/op of every codec, encode and decode cases apart. -table
// renders a chart from a small tab-separated table of recorded figures
// (format: see readTable); with -table and no -in nothing is run.
//
// The benchmarks run with -cpu 1 (GOMAXPROCS=1): the machine is shared and
// one core halves the noise; the codecs under test are single-threaded.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	var (
		count     = flag.Int("count", 6, "runs of each benchmark (the table shows medians)")
		benchtime = flag.String("benchtime", "150ms", "go test -benchtime per run")
		bench     = flag.String("bench", ".", "go test -bench regexp")
		in        = flag.String("in", "", "read `go test -bench` output from this file instead of running")
		raw       = flag.String("raw", "", "also write the raw benchmark output (benchstat input) to this file")
		out       = flag.String("o", "", "also write the report to this file")
		svg       = flag.String("svg", "", "write SVG charts into this directory")
		runLabel  = flag.String("run", "", "the run's date and note for chart captions (default: from the -in file name, or now)")
		tables    tableFlag
	)
	flag.Var(&tables, "table", "also chart this tab-separated table file (or glob, e.g. 'results/*.tsv') into the -svg directory (repeatable)")
	flag.Parse()
	if err := charts(*svg, *in, *runLabel, tables); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
	if len(tables) > 0 && *in == "" {
		return // charts of recorded tables only
	}
	if err := run(*count, *benchtime, *bench, *in, *raw, *out, *svg, *runLabel); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// tableFlag collects the -table flags.
type tableFlag []string

func (t *tableFlag) String() string     { return strings.Join(*t, ",") }
func (t *tableFlag) Set(v string) error { *t = append(*t, v); return nil }

// charts renders the -table files into dir.
func charts(dir, in, runLabel string, tables []string) error {
	if len(tables) == 0 {
		return nil
	}
	if dir == "" {
		return errors.New("-table needs -svg <directory>")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, pattern := range tables {
		files, err := filepath.Glob(pattern)
		if err != nil {
			return fmt.Errorf("-table %q: %w", pattern, err)
		}
		if len(files) == 0 {
			return fmt.Errorf("-table %q: %w", pattern, os.ErrNotExist)
		}
		for _, t := range files {
			out, err := tableChart(t, dir)
			if err != nil {
				return err
			}
			fmt.Fprintln(os.Stderr, "wrote", out)
		}
	}
	return nil
}

func run(count int, benchtime, bench, in, raw, out, svg, runLabel string) error {
	env := environment()
	var output []byte
	if in != "" {
		b, err := os.ReadFile(in)
		if err != nil {
			return err
		}
		output = b
		env.command = "parsed from " + in
	} else {
		if count < 1 {
			return errors.New("-count must be at least 1")
		}
		// Build the test binary once and run it count times with
		// -test.count 1, so that every round measures every codec: a burst
		// of load on a shared machine then spreads over all codecs instead
		// of landing on the consecutive runs of one.
		tmp, err := os.MkdirTemp("", "hubwire-compare-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		bin := filepath.Join(tmp, "bench.test")
		build := exec.Command("go", "test", "-c", "-o", bin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go test -c: %w", err)
		}
		args := []string{"-test.run", "^$", "-test.bench", bench, "-test.benchmem",
			"-test.count", "1", "-test.cpu", "1", "-test.benchtime", benchtime, "-test.timeout", "30m"}
		env.command = fmt.Sprintf("go test -c && %d × ./bench.test %s", count, strings.Join(args, " "))
		env.loadBefore = loadavg()
		start := time.Now()
		fmt.Fprintln(os.Stderr, "running:", env.command)
		var buf bytes.Buffer
		for i := range count {
			fmt.Fprintf(os.Stderr, "round %d/%d ", i+1, count)
			cmd := exec.Command(bin, args...)
			cmd.Stdout = io.MultiWriter(&buf, progress{os.Stderr})
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("benchmarks: %w", err)
			}
			fmt.Fprintln(os.Stderr)
		}
		env.elapsed = time.Since(start).Round(time.Second)
		env.loadAfter = loadavg()
		output = buf.Bytes()
	}
	if raw != "" {
		if err := os.WriteFile(raw, output, 0o644); err != nil {
			return err
		}
	}
	res, err := parse(output)
	if err != nil {
		return err
	}
	if env.cpu == "" {
		env.cpu = res.cpu
	}
	if svg != "" {
		source := in
		if runLabel == "" && in != "" {
			runLabel = runName(in)
		}
		if runLabel == "" {
			runLabel = env.date
		}
		if source == "" {
			source, runLabel = raw, runLabel+", "+env.goVersion
			if source == "" {
				source = "a run not saved (no -raw)"
			}
		}
		if err := os.MkdirAll(svg, 0o755); err != nil {
			return err
		}
		for _, nc := range codecCharts(res, runLabel, source) {
			p := filepath.Join(svg, nc.file)
			if err := nc.c.writeFile(p); err != nil {
				return err
			}
			fmt.Fprintln(os.Stderr, "wrote", p)
		}
	}
	var report bytes.Buffer
	write(&report, env, res)
	stdout.Write(report.Bytes())
	if out != "" {
		return os.WriteFile(out, report.Bytes(), 0o644)
	}
	return nil
}

// stdout receives the report (tests discard it).
var stdout io.Writer = os.Stdout

// progress prints a dot per benchmark result line so a long run shows life.
type progress struct{ w io.Writer }

func (p progress) Write(b []byte) (int, error) {
	for range bytes.Count(b, []byte("ns/op")) {
		fmt.Fprint(p.w, ".")
	}
	return len(b), nil
}

type env struct {
	date, goVersion, cpu, command string
	ncpu                          int
	loadBefore, loadAfter         string
	elapsed                       time.Duration
}

func environment() env {
	e := env{
		date:      time.Now().UTC().Format("2006-01-02 15:04 MST"),
		goVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		ncpu:      runtime.NumCPU(),
	}
	if b, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		e.goVersion = strings.TrimSpace(string(b)) + " " + runtime.GOOS + "/" + runtime.GOARCH
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return e
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}

// sample is every run of one sub-benchmark.
type sample struct {
	nsop, cpuop, bop, allocs, mbs, nspkt []float64
}

type results struct {
	cpu    string
	goos   string
	goarch string
	cases  []string                      // in order of first appearance
	codecs map[string][]string           // case -> codecs in order
	data   map[string]map[string]*sample // case -> codec -> runs
}

// parse reads `go test -bench` output lines such as
//
//	BenchmarkDecodePublish256/codec=hubwire   1000000   12.3 ns/op   20000 MB/s   0 B/op   0 allocs/op
func parse(out []byte) (*results, error) {
	r := &results{codecs: map[string][]string{}, data: map[string]map[string]*sample{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "cpu: "); ok {
			r.cpu = strings.TrimSpace(v)
			continue
		}
		if v, ok := strings.CutPrefix(line, "goos: "); ok {
			r.goos = strings.TrimSpace(v)
			continue
		}
		if v, ok := strings.CutPrefix(line, "goarch: "); ok {
			r.goarch = strings.TrimSpace(v)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 && isDigits(name[i+1:]) {
			name = name[:i] // GOMAXPROCS suffix
		}
		cs, codec, ok := strings.Cut(name, "/codec=")
		if !ok {
			continue
		}
		if r.data[cs] == nil {
			r.data[cs] = map[string]*sample{}
			r.cases = append(r.cases, cs)
		}
		s := r.data[cs][codec]
		if s == nil {
			s = &sample{}
			r.data[cs][codec] = s
			r.codecs[cs] = append(r.codecs[cs], codec)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%q: %v", line, err)
			}
			switch f[i+1] {
			case "ns/op":
				s.nsop = append(s.nsop, v)
			case "B/op":
				s.bop = append(s.bop, v)
			case "allocs/op":
				s.allocs = append(s.allocs, v)
			case "MB/s":
				s.mbs = append(s.mbs, v)
			case "cpu-ns/op":
				s.cpuop = append(s.cpuop, v)
			case "ns/pkt":
				s.nspkt = append(s.nspkt, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(r.cases) == 0 {
		return nil, errors.New("no benchmark results in the output")
	}
	return r, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spread is half the range of v as a percentage of its median.
func spread(v []float64) float64 {
	if len(v) < 2 {
		return 0
	}
	return (slices.Max(v) - slices.Min(v)) / 2 / median(v) * 100
}

// codecLabel marks the codec that is not MQTT 3.1.1.
func codecLabel(c string) string {
	if c == "pahov5" {
		return "pahov5 (MQTT 5)"
	}
	return c
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func write(w io.Writer, e env, r *results) {
	fmt.Fprintf(w, "# hubwire packet codec vs paho.mqtt.golang, paho.golang, mochi\n\n")
	fmt.Fprintf(w, "- date: %s\n", e.date)
	fmt.Fprintf(w, "- go: %s\n", e.goVersion)
	fmt.Fprintf(w, "- cpu: %s (%d logical CPUs on the machine; benchmarks run with -cpu 1)\n", e.cpu, e.ncpu)
	if e.loadBefore != "" {
		fmt.Fprintf(w, "- load average (1/5/15 min) before: %s, after: %s; run took %s\n", e.loadBefore, e.loadAfter, e.elapsed)
	}
	fmt.Fprintf(w, "- command: `%s`\n\n", e.command)
	fmt.Fprintf(w, "Medians over the runs. *ns/op* is wall-clock time; ± is half its range across runs as a percentage of the median. ")
	fmt.Fprintf(w, "*cpu-ns/op* is the CPU time the process used per op, which other processes on a shared machine do not inflate. ")
	fmt.Fprintf(w, "*× hubwire* is the codec's median ns/op divided by hubwire's (in brackets: the same for cpu-ns/op): ")
	fmt.Fprintf(w, "how many times longer the peer takes. Stream rows are per 10,000 packets. ")
	fmt.Fprintf(w, "pahov5 encodes MQTT 5 (one more byte per packet: the properties length), so its bytes differ.\n\n")

	fmt.Fprintf(w, "| case | codec | ns/op | ± | cpu-ns/op | B/op | allocs/op | MB/s | × hubwire |\n")
	fmt.Fprintf(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, cs := range r.cases {
		hw := r.data[cs]["hubwire"]
		for _, c := range r.codecs[cs] {
			s := r.data[cs][c]
			ratio := "–"
			if hw != nil {
				ratio = num(median(s.nsop)/median(hw.nsop)) + "×"
				if len(s.cpuop) > 0 && len(hw.cpuop) > 0 {
					ratio += " (" + num(median(s.cpuop)/median(hw.cpuop)) + "×)"
				}
			}
			nsop, cpuop := num(median(s.nsop)), num(median(s.cpuop))
			if len(s.nspkt) > 0 {
				nsop += fmt.Sprintf(" (%s/pkt)", num(median(s.nsop)/streamPackets))
				cpuop += fmt.Sprintf(" (%s/pkt)", num(median(s.cpuop)/streamPackets))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.0f%% | %s | %s | %s | %s | %s |\n",
				cs, codecLabel(c), nsop, spread(s.nsop), cpuop,
				num(median(s.bop)), num(median(s.allocs)), num(median(s.mbs)), ratio)
		}
	}
	fmt.Fprintln(w)
	writeTargets(w, r)
}

// streamPackets is the number of packets per op of the stream benchmark.
const streamPackets = 10_000

// target is one line of the targets table: a figure computed from the
// wall-clock medians and the same from the CPU-time medians.
type target struct {
	what, want string
	wall, cpu  float64
	unit       string
	ok         func(float64) bool
}

func writeTargets(w io.Writer, r *results) {
	// med returns the wall-clock and CPU-time medians of a codec in a case.
	med := func(cs, codec string) (wall, cpu float64, ok bool) {
		s := r.data[cs][codec]
		if s == nil {
			return 0, 0, false
		}
		return median(s.nsop), median(s.cpuop), true
	}
	var ts []target
	ratioAtLeast := func(cs, peer string, min float64, strict bool) {
		hw, hc, ok1 := med(cs, "hubwire")
		pw, pc, ok2 := med(cs, peer)
		if !ok1 || !ok2 {
			return
		}
		t := target{what: cs + ": " + peer + " ÷ hubwire", want: fmt.Sprintf("≥ %g×", min),
			wall: pw / hw, cpu: pc / hc, unit: "×", ok: func(x float64) bool { return x >= min }}
		if strict {
			t.want, t.ok = fmt.Sprintf("> %g×", min), func(x float64) bool { return x > min }
		}
		ts = append(ts, t)
	}
	zeroAllocs := func(cs string) {
		s := r.data[cs]["hubwire"]
		if s == nil {
			return
		}
		a := slices.Max(s.allocs)
		ts = append(ts, target{what: cs + ": hubwire allocs/op (every run)", want: "0", wall: a, cpu: a,
			ok: func(x float64) bool { return x == 0 }})
	}

	// Against the peers: at least 10× paho and 4× mochi on small PUBLISHes,
	// no allocations, and never slower than mochi decoding in place.
	for _, cs := range []string{"EncodePublish16", "DecodePublish16", "EncodePublish256", "DecodePublish256", "StreamPublish256QoS1"} {
		ratioAtLeast(cs, "paho", 10, false)
		ratioAtLeast(cs, "mochi", 4, false)
		zeroAllocs(cs)
	}
	ratioAtLeast("EncodePublish4096", "mochi", 2, false)
	ratioAtLeast("DecodePublish4096", "mochi", 10, false)
	for _, cs := range r.cases {
		if strings.HasPrefix(cs, "Decode") || strings.HasPrefix(cs, "Stream") {
			ratioAtLeast(cs, "mochi-inplace", 1, true)
		}
	}
	// The codec's own budget against a plain copy, measured in the same run.
	if cw, cc, ok := med("CopyPublish256QoS1", "copy"); ok {
		for _, x := range []struct {
			cs  string
			max float64
		}{{"EncodePublish256QoS1", 3}, {"DecodePublish256QoS1", 4}} {
			if hw, hc, ok := med(x.cs, "hubwire"); ok {
				ts = append(ts, target{what: x.cs + ": hubwire ÷ copy floor", want: fmt.Sprintf("≤ %g×", x.max),
					wall: hw / cw, cpu: hc / cc, unit: "×", ok: func(v float64) bool { return v <= x.max }})
			}
		}
	}
	if hw, hc, ok := med("StreamPublish256QoS1", "hubwire"); ok {
		ts = append(ts, target{what: "StreamPublish256QoS1: hubwire Reader.Next + Decode", want: "≥ 25 M pkt/s",
			wall: 1e3 * streamPackets / hw, cpu: 1e3 * streamPackets / hc, unit: " M pkt/s",
			ok: func(v float64) bool { return v >= 25 }})
	}
	for _, cs := range []string{"EncodePublish4096", "DecodePublish4096", "EncodePublish256QoS1", "DecodePublish256QoS1",
		"EncodePuback", "DecodePuback", "EncodeConnect", "DecodeConnect"} {
		zeroAllocs(cs)
	}
	if len(ts) == 0 {
		return
	}
	met := 0
	for _, t := range ts {
		if t.ok(t.wall) {
			met++
		}
	}
	fmt.Fprintf(w, "## Targets: %d of %d met on wall-clock medians\n\n", met, len(ts))
	fmt.Fprintf(w, "The verdict uses wall-clock medians. The CPU-time column is the same figure from ")
	fmt.Fprintf(w, "cpu-ns/op medians; where the two disagree, other processes held the CPU during the run.\n\n")
	fmt.Fprintf(w, "| target | wanted | wall-clock | CPU time | |\n|---|--:|--:|--:|---|\n")
	for _, t := range ts {
		v := "met"
		switch {
		case !t.ok(t.wall) && !math.IsNaN(t.cpu) && t.ok(t.cpu):
			v = "**missed** (met on CPU time)"
		case !t.ok(t.wall):
			v = "**missed**"
		case !math.IsNaN(t.cpu) && !t.ok(t.cpu):
			v = "met (missed on CPU time)"
		}
		fmt.Fprintf(w, "| %s | %s | %s%s | %s%s | %s |\n", t.what, t.want, num(t.wall), t.unit, num(t.cpu), t.unit, v)
	}
	fmt.Fprintln(w)
}
