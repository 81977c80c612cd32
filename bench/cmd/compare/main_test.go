package main

import (
	"bytes"
	"strings"
	"testing"
)

// sampleOutput is `go test -bench` output as the bench module prints it,
// with a GOMAXPROCS suffix on some names and the custom metrics.
const sampleOutput = `goos: linux
goarch: amd64
pkg: github.com/hubwire/hubwire/bench
cpu: Test CPU @ 1.00GHz
BenchmarkEncodePublish16/codec=hubwire         	 1000000	        20.0 ns/op	4000.00 MB/s	        19.0 cpu-ns/op	       0 B/op	       0 allocs/op
BenchmarkEncodePublish16/codec=hubwire-2       	 1000000	        30.0 ns/op	3000.00 MB/s	        21.0 cpu-ns/op	       0 B/op	       0 allocs/op
BenchmarkEncodePublish16/codec=hubwire         	 1000000	        25.0 ns/op	3500.00 MB/s	        20.0 cpu-ns/op	       0 B/op	       0 allocs/op
BenchmarkEncodePublish16/codec=paho            	  100000	       300.0 ns/op	 300.00 MB/s	       200.0 cpu-ns/op	     360 B/op	       5 allocs/op
BenchmarkEncodePublish16/codec=paho            	  100000	       200.0 ns/op	 400.00 MB/s	       190.0 cpu-ns/op	     360 B/op	       5 allocs/op
BenchmarkStreamPublish256QoS1/codec=hubwire    	     100	    400000 ns/op	6000.00 MB/s	    350000 cpu-ns/op	        40.00 ns/pkt	       0 B/op	       0 allocs/op
PASS
ok  	github.com/hubwire/hubwire/bench	1.0s
`

func TestParse(t *testing.T) {
	r, err := parse([]byte(sampleOutput))
	if err != nil {
		t.Fatal(err)
	}
	if r.cpu != "Test CPU @ 1.00GHz" {
		t.Errorf("cpu = %q", r.cpu)
	}
	if got := strings.Join(r.cases, ","); got != "EncodePublish16,StreamPublish256QoS1" {
		t.Errorf("cases = %s", got)
	}
	if got := strings.Join(r.codecs["EncodePublish16"], ","); got != "hubwire,paho" {
		t.Errorf("codecs = %s (the -2 suffix must not make a codec of its own)", got)
	}
	hw := r.data["EncodePublish16"]["hubwire"]
	if len(hw.nsop) != 3 || median(hw.nsop) != 25 || median(hw.cpuop) != 20 {
		t.Errorf("hubwire runs %v, cpu %v", hw.nsop, hw.cpuop)
	}
	if m := median(r.data["EncodePublish16"]["paho"].nsop); m != 250 {
		t.Errorf("paho median = %v, want 250 (mean of the middle two)", m)
	}
}

func TestParseRejectsEmptyOutput(t *testing.T) {
	if _, err := parse([]byte("PASS\nok\n")); err == nil {
		t.Error("no error for output without benchmark lines")
	}
}

func TestWriteTargets(t *testing.T) {
	r, err := parse([]byte(sampleOutput))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	write(&b, env{date: "d", goVersion: "g", cpu: "c", command: "x"}, r)
	out := b.String()
	for _, want := range []string{
		"| EncodePublish16 | paho | 250 | 20% | 195 | 360 | 5.00 | 350 | 10.0× (9.75×) |",
		"| EncodePublish16: paho ÷ hubwire | ≥ 10× | 10.0× | 9.75× | met (missed on CPU time) |",
		"| StreamPublish256QoS1: hubwire Reader.Next + Decode | ≥ 25 M pkt/s | 25.0 M pkt/s | 28.6 M pkt/s | met |",
		"| StreamPublish256QoS1 | hubwire | 400000 (40.0/pkt) |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
