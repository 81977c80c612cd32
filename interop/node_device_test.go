package interop

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator"
)

// The official Node device SDK (azure-iot-device + azure-iot-device-mqtt,
// unchanged) against the emulator on the fixed ports it hard-codes: 8883 for
// Mqtt, 443 (/$iothub/websocket) for MqttWs. The hub is driven from Go.

// nodeDevice starts interop/node/device/device_flow.js for a device.
func nodeDevice(t *testing.T, h *testHub, cs, transport string, env map[string]string) *Proc {
	t.Helper()
	e := map[string]string{"DEVICE_CS": cs, "TRANSPORT": transport}
	if transport == "MqttWs" {
		// Over WebSocket the CA goes in through the SDK's own option.
		e["HUB_CA"] = h.caFile(t)
	} else {
		e["NODE_EXTRA_CA_CERTS"] = h.caFile(t)
	}
	for k, v := range env {
		e[k] = v
	}
	return StartNode(t, "device/device_flow.js", ProcOptions{Env: e, Timeout: 90 * time.Second})
}

// TestNodeDeviceSDK: connect, twin GET, telemetry with properties, reported
// update, desired update, a direct method and a C2D message, over each of
// the SDK's MQTT transports.
func TestNodeDeviceSDK(t *testing.T) {
	nodeBinary(t)
	h := startHub(t, true)
	for _, transport := range []string{"Mqtt", "MqttWs"} {
		t.Run(transport, func(t *testing.T) {
			id := "node-" + strings.ToLower(transport)
			h.addDevice(t, id)
			from := h.telemetryNext(t)
			p := nodeDevice(t, h, h.connString(t, id), transport, nil)
			p.Expect("connected", 20*time.Second)
			var twin struct{ Desired, Reported map[string]any }
			if err := p.Expect("twin", 10*time.Second).Decode(&twin); err != nil {
				t.Fatal(err)
			}
			if twin.Desired["$version"] == nil || twin.Reported["$version"] == nil {
				t.Errorf("twin from the SDK's getTwin: %+v", twin)
			}
			p.Expect("ready", 10*time.Second)

			// Telemetry with application properties the SDK encodes itself.
			mid := "node-msg-" + transport
			p.Send(map[string]any{"cmd": "telemetry", "messageId": mid, "body": map[string]any{"t": 21},
				"props": map[string]string{"alert": "high temp", "k&=": "a/b", "unicode": "é✓"}})
			p.Expect("sent", 10*time.Second)
			msg := h.waitTelemetry(t, from, id, mid, 10*time.Second)
			checkTelemetry(t, msg, id, map[string]string{"alert": "high temp", "k&=": "a/b", "unicode": "é✓"})
			if string(msg.Body) != `{"t":21}` {
				t.Errorf("telemetry body %q", msg.Body)
			}

			// Reported properties.
			p.Send(map[string]any{"cmd": "report", "patch": map[string]any{"fw": "1.0", "transport": transport, "nested": map[string]any{"a": 1}}})
			p.Expect("reported", 10*time.Second)
			rep, v1 := h.reported(t, id)
			if rep["fw"] != "1.0" || rep["transport"] != transport {
				t.Errorf("hub's reported after the SDK's update: %v", rep)
			}
			// null deletes.
			p.Send(map[string]any{"cmd": "report", "patch": map[string]any{"nested": nil}})
			p.Expect("reported", 10*time.Second)
			if rep, v2 := h.reported(t, id); rep["nested"] != nil || rep["fw"] != "1.0" || v2 <= v1 {
				t.Errorf("reported after a null patch: %v at $version %d (was %d)", rep, v2, v1)
			}

			// Desired update: the SDK also reports the GET's desired
			// section as a first "properties.desired"; wait for ours.
			dv := h.patchDesired(t, id, `{"interval":7,"mode":"eco"}`)
			for {
				var d struct{ Delta map[string]any }
				if err := p.Expect("desired", 10*time.Second).Decode(&d); err != nil {
					t.Fatal(err)
				}
				if d.Delta["interval"] == nil {
					continue
				}
				if d.Delta["interval"] != float64(7) || d.Delta["mode"] != "eco" || d.Delta["$version"] != float64(dv) {
					t.Errorf("desired delta %v, want interval 7, mode eco, $version %d", d.Delta, dv)
				}
				break
			}

			// Direct method.
			status, payload := h.invokeMethod(t, id, "echo", `{"n":42,"s":"x y"}`, 10*time.Second)
			ev := p.Expect("method", 10*time.Second)
			if ev.Str("name") != "echo" {
				t.Errorf("method name %q at the device", ev.Str("name"))
			}
			var reply struct {
				Echo      map[string]any
				Transport string
			}
			if err := json.Unmarshal(payload, &reply); err != nil || status != 200 || reply.Echo["n"] != float64(42) || reply.Echo["s"] != "x y" || reply.Transport != transport {
				t.Errorf("method result %d %s (%v)", status, payload, err)
			}

			// Names the Node SDK's method dispatch mangles are refused at
			// invocation (400), and never reach the device.
			if transport == "Mqtt" {
				for _, bad := range []string{"get?x", "a b", "it's", "a^b", `a\b`, "a`b", "a|b", `a"b`, "a<b", "a>b", "a{b", "a}b"} {
					ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
					_, err := h.InvokeMethod(ctx, emulator.MethodCall{DeviceID: id, Name: bad, ResponseTimeout: 5 * time.Second})
					cancel()
					if !errors.Is(err, emulator.ErrInvalidArgument) {
						t.Errorf("InvokeMethod(name %q) = %v, want ErrInvalidArgument (400)", bad, err)
					}
				}
				if ev, err := p.expect("method", 0); err == nil {
					t.Errorf("a refused method name reached the device: %s", ev.Raw)
				}
			}

			// C2D with system and application properties.
			h.sendC2D(t, id, c2dMessage{Body: "hello node", MessageID: "c2d-" + transport, CorrelationID: "corr-1",
				Properties: map[string]string{"color": "red x", "path": "a/b&c=d", "empty": ""}})
			var c2d struct {
				Body, MessageID, CorrelationID, To string
				Props                              map[string]string
			}
			if err := p.Expect("c2d", 10*time.Second).Decode(&c2d); err != nil {
				t.Fatal(err)
			}
			if c2d.Body != "hello node" || c2d.MessageID != "c2d-"+transport || c2d.CorrelationID != "corr-1" ||
				c2d.Props["color"] != "red x" || c2d.Props["path"] != "a/b&c=d" || c2d.Props["empty"] != "" {
				t.Errorf("C2D at the Node SDK: %+v", c2d)
			}
			for k, v := range c2d.Props {
				if v == "undefined" {
					t.Errorf("C2D property %q reached the SDK as \"undefined\" (a bare key in the bag)", k)
				}
			}
			// complete() = PUBACK: the message leaves the queue.
			h.waitC2DQueueEmpty(t, id, 10*time.Second)

			p.Send(map[string]string{"cmd": "close"})
			p.Expect("closed", 10*time.Second)
			if err := p.Wait(10 * time.Second); err != nil {
				t.Errorf("device_flow.js: %v", err)
			}
			h.waitDisconnected(t, id, 10*time.Second)
		})
	}
}

// TestNodeDeviceTokenRenewal: with a short token lifetime (8 s, renewed 5 s
// before expiry) the SDK renews its SAS token and reconnects with the new
// one (MQTT 3.1.1 cannot re-authenticate in-band); the hub, allowing no
// skew, accepts every new token and the device keeps working past the first
// token's expiry.
func TestNodeDeviceTokenRenewal(t *testing.T) {
	nodeBinary(t)
	// No clock skew allowance: a connection still on an expired token
	// would be closed exactly at its se.
	h := startHubWith(t, true, emulator.Config{SASSkew: -1})
	const id = "node-renew"
	h.addDevice(t, id)
	from := h.telemetryNext(t)
	p := nodeDevice(t, h, h.connString(t, id), "Mqtt", map[string]string{"TOKEN_VALID_S": "8", "TOKEN_MARGIN_S": "5"})
	p.Expect("connected", 20*time.Second)
	p.Expect("ready", 10*time.Second)
	connects := h.connectCount(t, id)
	var last float64
	// Renewals come every 3 s; the third is past the first token's expiry.
	for i := 0; i < 3; i++ {
		se := p.Expect("token", 15*time.Second).Num("se")
		if se <= last {
			t.Errorf("renewed token se %v not after the previous %v", se, last)
		}
		last = se
	}
	// After the third renewal, the device is connected with the newest
	// token and still sends.
	p.Send(map[string]any{"cmd": "telemetry", "messageId": "after-renewal", "body": map[string]any{"ok": true}})
	p.Expect("sent", 15*time.Second)
	h.waitTelemetry(t, from, id, "after-renewal", 10*time.Second)
	if n := h.connectCount(t, id); n < connects+3 {
		t.Errorf("hub saw %d connections of %s after three renewals, want at least %d (the SDK reconnects per new token)", n, id, connects+3)
	}
	if ev, err := p.expect("client_error", 0); err == nil {
		t.Errorf("SDK reported an error during renewal: %s", ev.Raw)
	}
	p.Send(map[string]string{"cmd": "close"})
	p.Expect("closed", 10*time.Second)
}

// TestNodeDeviceKick: a second client connecting with the same device id
// makes the hub close the first one's connection; the second works.
func TestNodeDeviceKick(t *testing.T) {
	nodeBinary(t)
	h := startHub(t, true)
	const id = "node-kick"
	h.addDevice(t, id)
	cs := h.connString(t, id)
	from := h.telemetryNext(t)
	first := nodeDevice(t, h, cs, "Mqtt", map[string]string{"NO_RETRY": "1"})
	first.Expect("ready", 20*time.Second)
	second := nodeDevice(t, h, cs, "MqttWs", nil)
	second.Expect("ready", 20*time.Second)
	first.Expect("disconnect", 10*time.Second)

	second.Send(map[string]any{"cmd": "telemetry", "messageId": "from-second", "body": map[string]any{"n": 2}})
	second.Expect("sent", 10*time.Second)
	h.waitTelemetry(t, from, id, "from-second", 10*time.Second)
	status, _ := h.invokeMethod(t, id, "echo", `{}`, 10*time.Second)
	if status != 200 {
		t.Errorf("method to the second client: status %d", status)
	}
	second.Expect("method", 5*time.Second)
	if ev, err := first.expect("method", 0); err == nil {
		t.Errorf("kicked client received a method call: %s", ev.Raw)
	}
	second.Send(map[string]string{"cmd": "close"})
	second.Expect("closed", 10*time.Second)
}

// TestNodeDeviceBadKey: a connection string with a wrong key is refused
// (CONNACK 5), which the SDK reports as UnauthorizedError, over both
// transports.
func TestNodeDeviceBadKey(t *testing.T) {
	nodeBinary(t)
	h := startHub(t, true)
	const id = "node-badkey"
	h.addDevice(t, id)
	wrong := make([]byte, 32)
	_, _ = rand.Read(wrong)
	cs := "HostName=" + h.hostName() + ";DeviceId=" + id + ";SharedAccessKey=" + base64.StdEncoding.EncodeToString(wrong)
	for _, transport := range []string{"Mqtt", "MqttWs"} {
		t.Run(transport, func(t *testing.T) {
			p := nodeDevice(t, h, cs, transport, map[string]string{"OPEN_ONLY": "1", "NO_RETRY": "1"})
			ev := p.Expect("open_failed", 20*time.Second)
			if ev.Str("name") != "UnauthorizedError" {
				t.Errorf("open failed with %s (%s), want UnauthorizedError", ev.Str("name"), ev.Str("message"))
			}
			if err := p.Wait(10 * time.Second); err != nil {
				t.Errorf("device_flow.js: %v", err)
			}
		})
	}
	if n := h.connectCount(t, id); n != 0 {
		t.Errorf("hub counted %d accepted connections for a wrong key", n)
	}
}

// TestNodeModuleClient: the SDK's ModuleClient (a module identity:
// ClientId deviceId/moduleId, module SAS token) sends telemetry stamped with
// the module id, reads and updates its module twin, gets desired updates and
// answers a module direct method.
func TestNodeModuleClient(t *testing.T) {
	nodeBinary(t)
	h := startHub(t, true)
	const id, mod = "node-edge", "filter"
	h.addDevice(t, id)
	cs := h.addModule(t, id, mod)
	from := h.telemetryNext(t)
	p := nodeDevice(t, h, cs, "Mqtt", nil)
	p.Expect("connected", 20*time.Second)
	p.Expect("ready", 10*time.Second)

	p.Send(map[string]any{"cmd": "telemetry", "messageId": "mod-1", "body": map[string]any{"m": 1}, "props": map[string]string{"stage": "filtered"}})
	p.Expect("sent", 10*time.Second)
	msg := h.waitTelemetry(t, from, id, "mod-1", 10*time.Second)
	checkTelemetry(t, msg, id, map[string]string{"stage": "filtered"})
	if msg.ModuleID != mod || msg.SystemProperties["iothub-connection-module-id"] != mod {
		t.Errorf("module telemetry: ModuleID %q, iothub-connection-module-id %q, want %q", msg.ModuleID, msg.SystemProperties["iothub-connection-module-id"], mod)
	}

	p.Send(map[string]any{"cmd": "report", "patch": map[string]any{"role": "filter"}})
	p.Expect("reported", 10*time.Second)
	if rep, _ := h.reportedOf(t, id, mod); rep["role"] != "filter" {
		t.Errorf("module twin reported: %v", rep)
	}
	if rep, _ := h.reported(t, id); rep["role"] != nil {
		t.Errorf("the module's reported patch reached the device twin: %v", rep)
	}

	dv := h.patchDesiredOf(t, id, mod, `{"threshold":3}`)
	for {
		var d struct{ Delta map[string]any }
		if err := p.Expect("desired", 10*time.Second).Decode(&d); err != nil {
			t.Fatal(err)
		}
		if d.Delta["threshold"] == nil {
			continue
		}
		if d.Delta["threshold"] != float64(3) || d.Delta["$version"] != float64(dv) {
			t.Errorf("module desired delta %v, want threshold 3 at $version %d", d.Delta, dv)
		}
		break
	}

	status, payload := h.invokeMethodOf(t, id, mod, "echo", `{"q":"m"}`, 10*time.Second)
	p.Expect("method", 10*time.Second)
	var reply struct {
		Echo   map[string]any
		Module bool
	}
	if err := json.Unmarshal(payload, &reply); err != nil || status != 200 || !reply.Module || reply.Echo["q"] != "m" {
		t.Errorf("module method result %d %s (%v)", status, payload, err)
	}
	p.Send(map[string]string{"cmd": "close"})
	p.Expect("closed", 10*time.Second)
}

// TestNodeDeviceOfflineC2D: C2D sent while the device is offline waits in
// its queue and reaches the SDK when it connects, first on a new session,
// then on the SDK's persistent session (CleanSession=0) after a reconnect;
// each completion produces Success feedback.
func TestNodeDeviceOfflineC2D(t *testing.T) {
	nodeBinary(t)
	h := startHub(t, true)
	const id = "node-offline"
	h.addDevice(t, id)
	cs := h.connString(t, id)
	for i, mid := range []string{"queued-before-first-connect", "queued-while-away"} {
		h.sendC2D(t, id, c2dMessage{Body: "offline " + mid, MessageID: mid, Properties: map[string]string{"n": strconv.Itoa(i)}})
		p := nodeDevice(t, h, cs, "Mqtt", nil)
		var c2d struct {
			Body, MessageID string
			Props           map[string]string
		}
		if err := p.Expect("c2d", 20*time.Second).Decode(&c2d); err != nil {
			t.Fatal(err)
		}
		if c2d.MessageID != mid || c2d.Body != "offline "+mid || c2d.Props["n"] != strconv.Itoa(i) {
			t.Errorf("queued C2D at the SDK: %+v, want %s", c2d, mid)
		}
		h.waitC2DQueueEmpty(t, id, 10*time.Second)
		p.Expect("ready", 10*time.Second)
		p.Send(map[string]string{"cmd": "close"})
		p.Expect("closed", 10*time.Second)
		if err := p.Wait(10 * time.Second); err != nil {
			t.Errorf("device_flow.js: %v", err)
		}
		h.waitDisconnected(t, id, 10*time.Second)
	}
	h.checkFeedback(t, id, "queued-before-first-connect", "queued-while-away")
}

// TestNodeDeviceLargeTelemetry: a message near the 256 KB limit goes
// through over WebSocket (it spans many frames) without the hub closing the
// connection.
func TestNodeDeviceLargeTelemetry(t *testing.T) {
	nodeBinary(t)
	h := startHub(t, true)
	const id = "node-large"
	h.addDevice(t, id)
	from := h.telemetryNext(t)
	p := nodeDevice(t, h, h.connString(t, id), "MqttWs", nil)
	p.Expect("ready", 20*time.Second)
	big := strings.Repeat("x", 200<<10)
	p.Send(map[string]any{"cmd": "telemetry", "messageId": "big", "body": map[string]any{"big": big}})
	p.Expect("sent", 20*time.Second)
	if m := h.waitTelemetry(t, from, id, "big", 10*time.Second); len(m.Body) < 200<<10 {
		t.Errorf("big telemetry body %d bytes", len(m.Body))
	}
	if ev, err := p.expect("disconnect", 0); err == nil {
		t.Errorf("the hub dropped the connection: %s", ev.Raw)
	}
	p.Send(map[string]string{"cmd": "close"})
	p.Expect("closed", 10*time.Second)
}
