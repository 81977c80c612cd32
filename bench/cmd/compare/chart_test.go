package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// committedRun is a raw bench/run.sh output kept in the repository.
const committedRun = "../../results/2026-11-26-0655-final-raw.txt"

// svgTexts parses an SVG document as XML and returns the content of its
// <text> elements; it fails the test if the document is not well-formed
// XML with an <svg> root.
func svgTexts(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	var texts []string
	var in bool
	var cur strings.Builder
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", path, err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = v.Name.Local
			}
			if v.Name.Local == "text" {
				in = true
				cur.Reset()
			}
		case xml.CharData:
			if in {
				cur.Write(v)
			}
		case xml.EndElement:
			if v.Name.Local == "text" {
				in = false
				texts = append(texts, cur.String())
			}
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root element %q, want svg", path, root)
	}
	return texts
}

func TestChartsFromCommittedRun(t *testing.T) {
	raw, err := os.ReadFile(committedRun)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stdout = io.Discard
	t.Cleanup(func() { stdout = os.Stdout })
	if err := run(0, "", "", committedRun, "", filepath.Join(dir, "report.md"), dir, ""); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"codec-encode-ns.svg", "codec-decode-ns.svg", "codec-encode-allocs.svg", "codec-decode-allocs.svg"} {
		texts := svgTexts(t, filepath.Join(dir, name))
		prefix := "Encode"
		if strings.Contains(name, "decode") {
			prefix = "Decode"
		}
		for _, cs := range r.cases {
			if !strings.HasPrefix(cs, prefix) || r.data[cs]["hubwire"] == nil {
				continue
			}
			if !slices.Contains(texts, cs) {
				t.Errorf("%s: no label for case %s", name, cs)
			}
			for _, codec := range r.codecs[cs] {
				if !slices.Contains(texts, codecLabel(codec)) {
					t.Errorf("%s: no label for codec %s", name, codecLabel(codec))
				}
			}
		}
		joined := strings.Join(texts, "\n")
		for _, want := range []string{"Run 2026-11-26 06:55 UTC, final", "Intel(R) Xeon(R) Processor, linux/amd64"} {
			if !strings.Contains(joined, want) {
				t.Errorf("%s: caption lacks %q", name, want)
			}
		}
	}
	// The figures are the report's: the medians and ratios of the run.
	ns := strings.Join(svgTexts(t, filepath.Join(dir, "codec-encode-ns.svg")), "\n")
	hw := median(r.data["EncodePublish16"]["hubwire"].nsop)
	paho := median(r.data["EncodePublish16"]["paho"].nsop)
	want := num(paho) + " ns · " + num(paho/hw) + "×"
	if !strings.Contains(ns, want) {
		t.Errorf("encode chart lacks paho's EncodePublish16 label %q", want)
	}
	dec := strings.Join(svgTexts(t, filepath.Join(dir, "codec-decode-ns.svg")), "\n")
	stream := median(r.data["StreamPublish256QoS1"]["hubwire"].nsop) / streamPackets
	if !strings.Contains(dec, "StreamPublish256QoS1 (per packet of a 10,000-packet stream)") ||
		!strings.Contains(dec, num(stream)+" ns") {
		t.Errorf("decode chart lacks the stream case per packet (%s ns)", num(stream))
	}
	allocs := strings.Join(svgTexts(t, filepath.Join(dir, "codec-encode-allocs.svg")), "\n")
	if !strings.Contains(allocs, "0 allocs · 0 B") || !strings.Contains(allocs, "5 allocs · 360 B") {
		t.Errorf("allocs chart lacks hubwire's 0 allocs or paho's EncodePublish16 5 allocs · 360 B:\n%s", allocs)
	}
}

func TestRunName(t *testing.T) {
	for in, want := range map[string]string{
		"results/2026-11-26-0655-final-raw.txt": "2026-11-26 06:55 UTC, final",
		"2026-11-26-0502-first-raw.txt":         "2026-11-26 05:02 UTC, first",
		"2026-12-02-1808-raw.txt":               "2026-12-02 18:08 UTC",
		"raw.txt":                               "",
	} {
		if got := runName(in); got != want {
			t.Errorf("runName(%q) = %q, want %q", in, got, want)
		}
	}
}

const sampleTable = `# A comment line without a directive.
# title: Publish CPU
# unit: CPU seconds per 100,000 messages, shorter is better
# scale: log
# baseline: hubwire
# caption: Run 2026-11-26, 2 vCPUs
broker, QoS	hubwire	paho.mqtt.golang	paho.golang
mosquitto, QoS 0	0.015	0.489	
mochi, QoS 1	0.533	1.038	1,408
`

func TestTableChart(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "client-cpu.tsv")
	if err := os.WriteFile(in, []byte(sampleTable), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := tableChart(in, dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(out) != "client-cpu.svg" {
		t.Errorf("wrote %s, want client-cpu.svg", out)
	}
	texts := svgTexts(t, out)
	for _, want := range []string{"Publish CPU", "mosquitto, QoS 0", "mochi, QoS 1", "hubwire", "paho.mqtt.golang", "paho.golang",
		"0.015", "0.489 · 32.6×", "1.038 · 1.95×", "1,408 · 2642×", "Run 2026-11-26, 2 vCPUs"} {
		if !slices.Contains(texts, want) {
			t.Errorf("table chart lacks text %q; has %q", want, texts)
		}
	}
	// The empty cell draws no bar: paho.golang is labelled once, in the mochi group.
	n := 0
	for _, s := range texts {
		if s == "paho.golang" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("paho.golang labelled %d times, want 1 (no bar for the empty cell)", n)
	}
}

func TestTableErrors(t *testing.T) {
	head := "# title: T\n# unit: u\n"
	for name, c := range map[string]struct {
		text string
		want error
	}{
		"no title":      {"# unit: u\ng\ta\nx\t1\n", errTable},
		"bad scale":     {head + "# scale: cubic\ng\ta\nx\t1\n", errTable},
		"unknown key":   {head + "# colour: red\ng\ta\nx\t1\n", errTable},
		"short header":  {head + "g\n", errTable},
		"cell count":    {head + "g\ta\tb\nx\t1\n", errTable},
		"not a number":  {head + "g\ta\nx\tfast\n", errTable},
		"no rows":       {head + "g\ta\n", errTable},
		"zero on log":   {head + "# scale: log\ng\ta\nx\t0\n", errChart},
		"negative":      {head + "g\ta\nx\t-1\n", errChart},
		"all cells nil": {head + "g\ta\nx\t–\n", errChart},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "t.tsv")
			if err := os.WriteFile(in, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := tableChart(in, dir)
			if !errors.Is(err, c.want) {
				t.Errorf("error %v, want %v", err, c.want)
			}
		})
	}
}

// TestCommittedTables renders every table file committed under
// bench/results, so a table that no longer parses fails here.
func TestCommittedTables(t *testing.T) {
	files, err := filepath.Glob("../../results/*.tsv")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		out, err := tableChart(f, t.TempDir())
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(svgTexts(t, out)) == 0 {
			t.Errorf("%s: chart without text", f)
		}
	}
}

func TestWrap(t *testing.T) {
	got := wrap("aa bb cc  dddddd e", 5)
	want := []string{"aa bb", "cc", "dddddd", "e"}
	if !slices.Equal(got, want) {
		t.Errorf("wrap = %q, want %q", got, want)
	}
	if got := wrap("", 5); len(got) != 0 {
		t.Errorf("wrap of empty = %q", got)
	}
}
