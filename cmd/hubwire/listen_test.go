package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator"
)

// waitOnline waits until device id is connected and subscribed to
// methods, as a method invocation with a connect timeout does.
func waitOnline(t *testing.T, h *testHub, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if d, err := h.GetDevice(id); err == nil && d.ConnectionState == emulator.Connected {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("device %s did not connect within 10 s", id)
}

func TestListen(t *testing.T) {
	h := newTestHub(t)
	for _, tr := range []string{"mqtt", "mqtt-ws"} {
		t.Run(tr, func(t *testing.T) {
			id := "listener-" + tr
			env := h.env(t, id)
			b := start(t, invocation{env: env}, "listen", "--transport", tr, "--count", "4", "--json",
				"--method-status", "201", "--method-payload", `{"rebooting":true}`)
			b.waitFor(t, `"type":"desired"`)
			waitOnline(t, h, id)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := h.SendC2D(ctx, id, emulator.C2DMessage{Body: []byte("hello"), MessageID: "c1", Properties: map[string]string{"priority": "high"}}); err != nil {
				t.Fatal(err)
			}
			b.waitFor(t, `"type":"c2d"`)
			res, err := h.InvokeMethod(ctx, emulator.MethodCall{DeviceID: id, Name: "reboot", Payload: []byte(`{"delay":1}`), ResponseTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != 201 || !jsonEqual(res.Payload, []byte(`{"rebooting":true}`)) {
				t.Errorf("method answered %d %s", res.Status, res.Payload)
			}
			b.waitFor(t, `"type":"method"`)
			if _, err := h.UpdateDesired(ctx, id, "", []byte(`{"interval":5}`)); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-b.done:
				b.done <- code
				if code != 0 {
					t.Fatalf("exit code %d, stderr %s", code, b.stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("listen did not stop after 4 events; stdout:\n%s", b.stdout.String())
			}
			lines := strings.Split(strings.TrimSpace(b.stdout.String()), "\n")
			if len(lines) != 4 {
				t.Fatalf("%d lines, want 4:\n%s", len(lines), b.stdout.String())
			}
			var ev []listenEvent
			for _, l := range lines {
				var e listenEvent
				if err := json.Unmarshal([]byte(l), &e); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				ev = append(ev, e)
			}
			if e := ev[0]; e.Type != "desired" || !e.Full {
				t.Errorf("first event %+v, want the full desired section", e)
			}
			if e := ev[1]; e.Type != "c2d" || e.Body != "hello" || e.Properties["priority"] != "high" || e.Properties["message-id"] != "c1" {
				t.Errorf("c2d event %+v", e)
			}
			if e := ev[2]; e.Type != "method" || e.Method != "reboot" || !jsonEqual(e.Payload, []byte(`{"delay":1}`)) || e.Status != 201 {
				t.Errorf("method event %+v", e)
			}
			if e := ev[3]; e.Type != "desired" || e.Full || !jsonEqual(e.Payload, []byte(`{"interval":5}`)) || e.Version != 2 {
				t.Errorf("desired event %+v", e)
			}
			if len(h.PendingC2D(id)) != 0 {
				t.Errorf("the C2D message was not acknowledged")
			}
		})
	}
}

func TestListenTextAndStop(t *testing.T) {
	h := newTestHub(t)
	b := start(t, invocation{env: h.env(t, "dev1")}, "listen")
	b.waitFor(t, "desired  $version 1 (full) {}")
	if !strings.Contains(b.stderr.String(), "listening as dev1 over mqtt (Ctrl-C stops)") {
		t.Errorf("stderr %q", b.stderr.String())
	}
	waitOnline(t, h, "dev1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.InvokeMethod(ctx, emulator.MethodCall{DeviceID: "dev1", Name: "ping"}); err != nil {
		t.Fatal(err)
	}
	out := b.waitFor(t, "method   ping (no payload) -> 200 (no payload)")
	if code := b.stop(t); code != 0 {
		t.Errorf("exit code %d after Ctrl-C; output:\n%s", code, out)
	}
}

func TestListenBadUsage(t *testing.T) {
	wantOneLineError(t, hubwire(t, "listen", "--method-payload", "{nope"), 2, "--method-payload is not JSON")
	wantOneLineError(t, hubwire(t, "listen", "--count", "-1"), 2, "must be positive")
}

// Past --count, a C2D message is left unacknowledged, for the next
// listener: every queued message is either printed or still queued.
func TestListenCountLeavesTheRestQueued(t *testing.T) {
	h := newTestHub(t)
	env := h.env(t, "dev1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		if _, err := h.SendC2D(ctx, "dev1", emulator.C2DMessage{Body: []byte{'a' + byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	r := invocation{env: env}.hubwire(t, "listen", "--count", "2", "--json")
	if r.code != 0 {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	printed := strings.Count(r.stdout, `"type":"c2d"`)
	if lines := strings.Count(r.stdout, "\n"); lines != 2 {
		t.Errorf("%d events printed, want 2:\n%s", lines, r.stdout)
	}
	// The hub handles the PUBACKs before the DISCONNECT that follows them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := h.GetDevice("dev1")
		if err != nil {
			t.Fatal(err)
		}
		if d.ConnectionState != emulator.Connected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dev1 still connected 10 s after listen returned")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pending := len(h.PendingC2D("dev1")); printed+pending != 3 {
		t.Errorf("%d messages printed and %d still queued, of 3", printed, pending)
	}
}
