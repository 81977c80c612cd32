package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

var demoSteps = []string{"connect", "telemetry", "twin get", "twin report", "desired update", "direct method", "C2D message", "module"}

// checkDemoTranscript checks a passing demo's output: every step of both
// transports ok with a time, and the summary.
func checkDemoTranscript(t *testing.T, out string) {
	t.Helper()
	sections := strings.SplitN(out, "\nMQTT over WebSocket (wss://", 2)
	if len(sections) != 2 || !strings.Contains(sections[0], "\nMQTT over TLS (127.0.0.1:") {
		t.Fatalf("no TLS section followed by a WSS section:\n%s", out)
	}
	for i, sec := range sections {
		for _, s := range demoSteps {
			re := regexp.MustCompile(`(?m)^  ok    ` + regexp.QuoteMeta(s) + ` +\d+\.\d\d ms  \S`)
			if !re.MatchString(sec) {
				t.Errorf("section %d has no ok line with a time for %q:\n%s", i, s, sec)
			}
		}
	}
	for _, want := range []string{
		"  ok    start hub", "  ok    register",
		"PUBACKed, read back from the telemetry stream as #0",
		`{"telemetryInterval":`, `reboot {"delaySeconds":0} -> 200 {"rebooting":true}`,
		"demo-module connected;",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`\nPASS  18 steps over TLS and WSS in \d+\.\d\d ms\n$`).MatchString(out) {
		t.Errorf("no summary line at the end:\n%s", out)
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("transcript has a failure:\n%s", out)
	}
}

func TestDemo(t *testing.T) {
	r := hubwire(t, "demo")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit code %d, stderr %q, stdout:\n%s", r.code, r.stderr, r.stdout)
	}
	checkDemoTranscript(t, r.stdout)
}

func TestDemoOneTransport(t *testing.T) {
	r := hubwire(t, "demo", "--transport", "mqtt-ws")
	if r.code != 0 {
		t.Fatalf("exit code %d, stderr %q", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "MQTT over TLS") || !strings.Contains(r.stdout, "\nPASS  10 steps over WSS in ") {
		t.Errorf("transcript:\n%s", r.stdout)
	}
}

func TestDemoNamesTheFailingStep(t *testing.T) {
	// A cancelled context: the first step that waits on the network fails.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := invocation{ctx: ctx}.hubwire(t, "demo")
	if r.code != 1 {
		t.Errorf("exit code %d, want 1", r.code)
	}
	m := regexp.MustCompile(`(?m)^  FAIL  (\S+(?: \S+)?) +\d+\.\d\d ms  `).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no FAIL line in the transcript:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`\nFAIL  \d+ steps passed, then: step "` + regexp.QuoteMeta(m[1]) + `"( over mqtt)? failed: .*canceled\n$`).MatchString(r.stdout) {
		t.Errorf("the summary does not name step %q:\n%s", m[1], r.stdout)
	}
	wantOneLineError(t, result{stderr: r.stderr, code: r.code}, 1, `hubwire demo: step "`+m[1]+`"`)
}

func TestDemoBadUsage(t *testing.T) {
	wantOneLineError(t, hubwire(t, "demo", "--transport", "amqp"), 2, `--transport "amqp": want mqtt, mqtt-ws or both`)
}
