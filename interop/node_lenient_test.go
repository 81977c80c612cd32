package interop

import (
	"testing"
	"time"
)

// TestNodeDeviceLenientTelemetry: the Node SDK lets an application put an
// empty property key and a key spelled like a system property ("$.mid") in
// its bag; the hub accepts the message (drops the empty key, keeps the
// real message id) instead of closing the connection.
func TestNodeDeviceLenientTelemetry(t *testing.T) {
	nodeBinary(t)
	h := startHub(t, true)
	const id = "node-lenient"
	h.addDevice(t, id)
	from := h.telemetryNext(t)
	p := nodeDevice(t, h, h.connString(t, id), "MqttWs", nil)
	p.Expect("ready", 20*time.Second)
	// An application key spelled like a system key: the system property wins.
	p.Send(map[string]any{"cmd": "telemetry", "messageId": "real-id", "body": map[string]any{"a": 1},
		"props": map[string]string{"$.mid": "spoofed", "ok": "yes"}})
	p.Expect("sent", 10*time.Second)
	msg := h.waitTelemetry(t, from, id, "real-id", 10*time.Second)
	checkTelemetry(t, msg, id, map[string]string{"ok": "yes"})

	// An empty application key (the SDK writes "&=empty-key"): dropped.
	p.Send(map[string]any{"cmd": "telemetry", "messageId": "empty-key", "body": map[string]any{"a": 2},
		"props": map[string]string{"": "empty-key", "ok": "yes"}})
	if _, err := p.expect("sent", 10*time.Second); err != nil {
		t.Fatalf("telemetry with an empty application key (topic …/messages/events/%%24.mid=empty-key&%%24.ct=application%%2Fjson&%%24.ce=utf-8&=empty-key&ok=yes): %v", err)
	}
	msg = h.waitTelemetry(t, from, id, "empty-key", 10*time.Second)
	checkTelemetry(t, msg, id, map[string]string{"ok": "yes"})
	if _, ok := msg.Properties[""]; ok {
		t.Errorf("empty application key kept: %v", msg.Properties)
	}

	p.Send(map[string]string{"cmd": "close"})
	p.Expect("closed", 10*time.Second)
}
