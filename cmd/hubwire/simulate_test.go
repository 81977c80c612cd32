package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

func TestSimulateJSON(t *testing.T) {
	for _, tr := range []string{"mqtt", "mqtt-ws"} {
		t.Run(tr, func(t *testing.T) {
			r := hubwire(t, "simulate", "--devices", "5", "--rate", "20", "--duration", "1s", "--transport", tr, "--json", "--payload-size", "200")
			if r.code != 0 {
				t.Fatalf("code %d, stderr %q, stdout %s", r.code, r.stderr, r.stdout)
			}
			var rep simReport
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("%q: %v", r.stdout, err)
			}
			if rep.Transport != tr || rep.Devices != 5 || rep.Connected != 5 || rep.Target != "an in-process emulator" {
				t.Errorf("report %+v", rep)
			}
			// 20 msg/s for 1 s from each of 5 devices: 100, all acknowledged.
			if rep.Sent != 100 || rep.Acknowledged != 100 || rep.Errors != 0 || rep.Reconnects != 0 {
				t.Errorf("sent %d, acknowledged %d, errors %d, reconnects %d", rep.Sent, rep.Acknowledged, rep.Errors, rep.Reconnects)
			}
			l := rep.PubackLatency
			if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
				t.Errorf("PUBACK latency quantiles %+v", l)
			}
			if rep.ConnectsPerSec <= 0 || rep.MessagesPerSec <= 0 || rep.ConnectLatency.Max <= 0 {
				t.Errorf("rates %+v", rep)
			}
		})
	}
}

func TestSimulateTable(t *testing.T) {
	r := invocation{tty: true}.hubwire(t, "simulate", "--devices", "3", "--rate", "10", "--duration", "1200ms")
	if r.code != 0 {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	for _, re := range []string{
		`^hubwire simulate: 3 devices over mqtt against an in-process emulator, 10 msg/s each for 1.2s\n`,
		`\r +\d+\.\ds  connected 3/3  \d+ msg/s  acknowledged \d+  errors 0  reconnects 0\x1b\[K`,
		`\n  devices connected  3 of 3 in \d+\.\d\d s \([\d.]+ connects/s\)\n`,
		`\n  connect latency    p50 [\d.]+ ms   p90 [\d.]+ ms   p99 [\d.]+ ms   max [\d.]+ ms\n`,
		`\n  messages           36 sent, 36 acknowledged \([\d.]+ msg/s\)\n`,
		`\n  PUBACK latency     p50 [\d.]+ ms   p90 [\d.]+ ms   p99 [\d.]+ ms   max [\d.]+ ms\n`,
		`\n  reconnects         0\n  errors             0\n$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("output does not match %q:\n%q", re, r.stdout)
		}
	}
}

func TestSimulateExternalHub(t *testing.T) {
	h := newTestHub(t)
	inv := invocation{env: h.env(t, "")}
	// sim-1 exists already and is kept; sim-2 is made and deleted.
	emulatortestDevice(t, h, "sim-1")
	r := inv.hubwire(t, "simulate", "--external", "--devices", "2", "--rate", "5", "--duration", "1s")
	if r.code != 0 {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "against hub localhost,") || !strings.Contains(r.stdout, "  messages           10 sent, 10 acknowledged") {
		t.Errorf("output:\n%s", r.stdout)
	}
	if _, err := h.GetDevice("sim-1"); err != nil {
		t.Errorf("the existing device was deleted: %v", err)
	}
	if _, err := h.GetDevice("sim-2"); err == nil {
		t.Errorf("the device the run made was kept")
	}
	if n := len(h.ListDevices()); n != 1 {
		t.Errorf("%d devices left", n)
	}
}

func TestSimulateBadUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--devices", "0"}, "--devices 0: want 1 to 100000"},
		{[]string{"--rate", "0"}, "--rate 0: want more than 0"},
		{[]string{"--duration", "0s"}, "--duration must be positive"},
		{[]string{"--transport", "amqp"}, `--transport "amqp"`},
		{[]string{"--external"}, "no connection string: give --connection-string or set $IOTHUB_CONNECTION_STRING"},
	} {
		wantOneLineError(t, hubwire(t, append([]string{"simulate"}, c.args...)...), 2, c.want)
	}
}
