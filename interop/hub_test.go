package interop

// The emulator side of the interop tests: a hub started in the test
// process, and the few back-end operations the tests drive through its Go
// API, each bounded and failing the test on error.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator"
)

// apiTimeout bounds one call into the hub's Go API.
const apiTimeout = 15 * time.Second

// testHub is an emulator started for one test, logging into the test log.
type testHub struct {
	*emulator.Hub
	caPath string

	mu       sync.Mutex
	connects map[string]int // device id → deviceConnected events seen
}

// logWriter sends the hub's slog lines to the test log until the test ends.
type logWriter struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Logf("hub: %s", p[:len(p)-min(1, len(p))])
	}
	return len(p), nil
}

// startHub starts an in-memory hub named localhost. fixedPorts selects the
// SDK defaults 127.0.0.1:8883 and 127.0.0.1:443 (under the fixed-ports
// lock); otherwise both listeners take free loopback ports.
func startHub(t *testing.T, fixedPorts bool) *testHub {
	t.Helper()
	return startHubWith(t, fixedPorts, emulator.Config{})
}

// startHubWith is startHub with other Config fields set (the addresses and
// the logger are startHub's).
func startHubWith(t *testing.T, fixedPorts bool, cfg emulator.Config) *testHub {
	t.Helper()
	cfg.MQTTAddr, cfg.HTTPSAddr = "127.0.0.1:0", "127.0.0.1:0"
	if fixedPorts {
		LockFixedPorts(t)
		cfg.MQTTAddr, cfg.HTTPSAddr = "127.0.0.1:8883", "127.0.0.1:443"
	}
	lw := &logWriter{tb: t}
	cfg.Logger = slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	hub, err := emulator.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("emulator.Start: %v", err)
	}
	h := &testHub{Hub: hub, connects: map[string]int{}, caPath: writeTemp(t, "hub-ca.pem", hub.CAPEM())}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	events := hub.WatchConnections(watchCtx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ev := range events {
			if ev.Type == emulator.EventConnected && ev.ModuleID == "" {
				h.mu.Lock()
				h.connects[ev.DeviceID]++
				h.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		if err := hub.Close(); err != nil {
			t.Errorf("hub Close: %v", err)
		}
		stopWatch()
		<-watched
		lw.mu.Lock()
		lw.done = true
		lw.mu.Unlock()
	})
	t.Logf("hub: MQTT %s, HTTPS %s", hub.MQTTAddr(), hub.HTTPSAddr())
	return h
}

func (h *testHub) hostName() string { return h.HostName() }

func (h *testHub) mqttPort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(h.MQTTAddr().String())
	if err != nil {
		t.Fatalf("MQTT address %v: %v", h.MQTTAddr(), err)
	}
	n, _ := strconv.Atoi(port)
	return n
}

func (h *testHub) httpsPort(t *testing.T) int {
	t.Helper()
	_, port, err := net.SplitHostPort(h.HTTPSAddr().String())
	if err != nil {
		t.Fatalf("HTTPS address %v: %v", h.HTTPSAddr(), err)
	}
	n, _ := strconv.Atoi(port)
	return n
}

// caFile returns a PEM file of the hub's CA, alive as long as the hub.
func (h *testHub) caFile(t *testing.T) string { return h.caPath }

// addDevice registers a SAS device with generated keys and returns its
// primary key.
func (h *testHub) addDevice(t *testing.T, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	d, err := h.CreateDevice(ctx, emulator.Device{DeviceID: id})
	if err != nil {
		t.Fatalf("CreateDevice(%s): %v", id, err)
	}
	if d.Authentication.SymmetricKey.PrimaryKey == "" {
		t.Fatalf("CreateDevice(%s) generated no primary key: %+v", id, d.Authentication)
	}
	return d.Authentication.SymmetricKey.PrimaryKey
}

// addModule registers a SAS module of device id (registered already) and
// returns its connection string.
func (h *testHub) addModule(t *testing.T, id, mod string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	if _, err := h.CreateModule(ctx, emulator.Module{DeviceID: id, ModuleID: mod}); err != nil {
		t.Fatalf("CreateModule(%s, %s): %v", id, mod, err)
	}
	cs, err := h.ModuleConnectionString(id, mod)
	if err != nil {
		t.Fatalf("ModuleConnectionString(%s, %s): %v", id, mod, err)
	}
	return cs
}

func (h *testHub) connString(t *testing.T, id string) string {
	t.Helper()
	cs, err := h.DeviceConnectionString(id)
	if err != nil {
		t.Fatalf("DeviceConnectionString(%s): %v", id, err)
	}
	return cs
}

// connectCount returns how many times the device has connected so far.
func (h *testHub) connectCount(t *testing.T, id string) int {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.connects[id]
}

// telemetryNext returns the sequence number the next telemetry message will
// get, to read only what a test sends.
func (h *testHub) telemetryNext(t *testing.T) int64 {
	t.Helper()
	_, next := h.TelemetryRange()
	return next
}

// waitTelemetry waits for a message from device id with message-id mid,
// at or after sequence number from.
func (h *testHub) waitTelemetry(t *testing.T, from int64, id, mid string, within time.Duration) emulator.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var seen []string
	for m, err := range h.Telemetry(ctx, emulator.FromSequence(from)) {
		if err != nil {
			t.Fatalf("no telemetry from %s with message-id %q within %v (%v); saw %v", id, mid, within, err, seen)
		}
		if m.DeviceID == id && m.SystemProperties["message-id"] == mid {
			return m
		}
		seen = append(seen, fmt.Sprintf("%s/%s", m.DeviceID, m.SystemProperties["message-id"]))
	}
	t.Fatalf("telemetry stream ended before a message from %s with message-id %q; saw %v", id, mid, seen)
	return emulator.Message{}
}

// checkTelemetry checks the hub-stamped and device-set properties of a
// JSON message sent by device id with application properties app.
func checkTelemetry(t *testing.T, m emulator.Message, id string, app map[string]string) {
	t.Helper()
	sp := m.SystemProperties
	want := map[string]string{
		"iothub-connection-device-id": id,
		"iothub-message-source":       "Telemetry",
		"content-type":                "application/json",
		"content-encoding":            "utf-8",
	}
	for k, v := range want {
		if sp[k] != v {
			t.Errorf("telemetry system property %s = %q, want %q (all: %v)", k, sp[k], v, sp)
		}
	}
	for _, k := range []string{"iothub-connection-auth-method", "iothub-connection-auth-generation-id"} {
		if sp[k] == "" {
			t.Errorf("telemetry lacks hub property %s (all: %v)", k, sp)
		}
	}
	if m.EnqueuedTime.IsZero() {
		t.Error("telemetry has no enqueued time")
	}
	for k, v := range app {
		if m.Properties[k] != v {
			t.Errorf("telemetry application property %q = %q, want %q (all: %v)", k, m.Properties[k], v, m.Properties)
		}
	}
}

// reported returns the device's reported properties and their $version.
func (h *testHub) reported(t *testing.T, id string) (map[string]any, int64) {
	t.Helper()
	return h.reportedOf(t, id, "")
}

// reportedOf is reported for a device (mod "") or a module.
func (h *testHub) reportedOf(t *testing.T, id, mod string) (map[string]any, int64) {
	t.Helper()
	tw, err := h.GetTwin(id, mod)
	if err != nil {
		t.Fatalf("GetTwin(%s, %q): %v", id, mod, err)
	}
	return tw.Properties.Reported, versionOf(t, tw.Properties.Reported)
}

// versionOf reads a section's "$version", whatever number type holds it.
func versionOf(t *testing.T, sec map[string]any) int64 {
	t.Helper()
	switch v := sec["$version"].(type) {
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	}
	t.Fatalf("twin section has no numeric $version: %v", sec)
	return 0
}

// isNum reports whether v, a number decoded by the hub or by encoding/json
// in whatever Go type, equals want.
func isNum(v any, want float64) bool {
	switch n := v.(type) {
	case int64:
		return float64(n) == want
	case int:
		return float64(n) == want
	case float64:
		return n == want
	case json.Number:
		f, err := n.Float64()
		return err == nil && f == want
	}
	return false
}

// patchDesired applies a desired patch from the service side and returns
// the new desired $version.
func (h *testHub) patchDesired(t *testing.T, id, patch string) int64 {
	t.Helper()
	return h.patchDesiredOf(t, id, "", patch)
}

// patchDesiredOf is patchDesired for a device (mod "") or a module.
func (h *testHub) patchDesiredOf(t *testing.T, id, mod, patch string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	v, err := h.UpdateDesired(ctx, id, mod, []byte(patch))
	if err != nil {
		t.Fatalf("UpdateDesired(%s, %s): %v", id, patch, err)
	}
	return v
}

// invokeMethod calls a direct method and returns the device's status and
// payload.
func (h *testHub) invokeMethod(t *testing.T, id, name, payload string, timeout time.Duration) (int, []byte) {
	t.Helper()
	return h.invokeMethodOf(t, id, "", name, payload, timeout)
}

// invokeMethodOf is invokeMethod for a device (mod "") or a module.
func (h *testHub) invokeMethodOf(t *testing.T, id, mod, name, payload string, timeout time.Duration) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+apiTimeout)
	defer cancel()
	res, err := h.InvokeMethod(ctx, emulator.MethodCall{DeviceID: id, ModuleID: mod, Name: name, Payload: []byte(payload), ResponseTimeout: timeout})
	if err != nil {
		t.Fatalf("InvokeMethod(%s, %s): %v", id, name, err)
	}
	return res.Status, res.Payload
}

// c2dMessage is what the tests send to devices.
type c2dMessage struct {
	Body, MessageID, CorrelationID string
	Properties                     map[string]string
}

func (h *testHub) sendC2D(t *testing.T, id string, m c2dMessage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	_, err := h.SendC2D(ctx, id, emulator.C2DMessage{
		Body: []byte(m.Body), MessageID: m.MessageID, CorrelationID: m.CorrelationID,
		Properties: m.Properties, Ack: emulator.AckFull,
	})
	if err != nil {
		t.Fatalf("SendC2D(%s): %v", id, err)
	}
}

// waitC2DQueueEmpty waits until the device's C2D queue is empty (every
// message acknowledged by the device).
func (h *testHub) waitC2DQueueEmpty(t *testing.T, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		q := h.PendingC2D(id)
		if len(q) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("C2D queue of %s still holds %d message(s) after %v: %+v", id, len(q), within, q)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDisconnected waits until the registry reports the device disconnected.
func (h *testHub) waitDisconnected(t *testing.T, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d, err := h.GetDevice(id)
		if err != nil {
			t.Fatalf("GetDevice(%s): %v", id, err)
		}
		if d.ConnectionState == emulator.Disconnected {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %s %v after its client closed", id, d.ConnectionState, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkFeedback checks that the hub recorded a Success feedback record for
// each message id (the tests send C2D with iothub-ack=full).
func (h *testHub) checkFeedback(t *testing.T, id string, mids ...string) {
	t.Helper()
	got := map[string]string{}
	for _, r := range h.Feedback() {
		if r.DeviceID == id {
			got[r.OriginalMessageID] = r.StatusCode
		}
	}
	for _, mid := range mids {
		if got[mid] != "Success" {
			t.Errorf("feedback for C2D %s of %s: %q, want Success (all: %v)", mid, id, got[mid], got)
		}
	}
}
