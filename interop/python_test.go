package interop

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator"
)

// TestPythonSeedFlow runs the seed page's device flow with Debian's
// python3-paho-mqtt against the emulator over TLS on a free port: SAS token
// computed in Python, CONNECT, SUBSCRIBE to C2D, twin responses, desired
// patches and methods, telemetry with a property bag (checked in the hub's
// telemetry log), twin GET, reported PATCH (checked in the hub's twin), then
// a C2D message, a desired patch and a direct method driven from Go.
func TestPythonSeedFlow(t *testing.T) {
	pythonBinary(t) // skip or fail before starting anything
	h := startHub(t, false)
	for _, transport := range []string{"tcp", "websockets"} {
		t.Run(transport, func(t *testing.T) { pythonSeedFlow(t, h, transport) })
	}
}

// pythonSeedFlow runs seed_flow.py over one of paho's transports: MQTT over
// TLS, or MQTT over WSS at /$iothub/websocket on the HTTPS port.
func pythonSeedFlow(t *testing.T, h *testHub, transport string) {
	id := "py-seed-" + transport
	key := h.addDevice(t, id)
	from := h.telemetryNext(t)
	port := h.mqttPort(t)
	if transport == "websockets" {
		port = h.httpsPort(t)
	}
	env := map[string]string{
		"HUB_HOST":      h.hostName(),
		"HUB_PORT":      strconv.Itoa(port),
		"HUB_TRANSPORT": transport,
		"HUB_CA":        h.caFile(t),
		"DEVICE_ID":     id,
		"DEVICE_KEY":    key,
	}
	p := StartPython(t, "seed_flow.py", ProcOptions{Timeout: 60 * time.Second, Env: env})

	if ev := p.Expect("connected", 15*time.Second); ev.Fields["session_present"] != false {
		t.Errorf("first CONNECT (CleanSession=0, no state): session present = %v, want false", ev.Fields["session_present"])
	}
	var sub struct{ Granted []int }
	if err := p.Expect("subscribed", 10*time.Second).Decode(&sub); err != nil {
		t.Fatal(err)
	}
	if want := []int{1, 0, 0, 0}; !equalInts(sub.Granted, want) {
		t.Errorf("SUBACK granted %v, want %v", sub.Granted, want)
	}

	p.Expect("telemetry", 10*time.Second)
	msg := h.waitTelemetry(t, from, id, "seed-1", 10*time.Second)
	checkTelemetry(t, msg, id, map[string]string{"alert": "high temp", "tricky key": "a&b=c/d"})
	if string(msg.Body) != `{"temp": 21.5}` {
		t.Errorf("telemetry body %q", msg.Body)
	}

	p.Expect("retained", 10*time.Second)
	if m := h.waitTelemetry(t, from, id, "seed-retained", 10*time.Second); m.Properties["mqtt-retain"] != "true" || string(m.Body) != "retained" {
		t.Errorf("retained telemetry: properties %v, body %q; want mqtt-retain=true", m.Properties, m.Body)
	}

	var twin struct {
		Status int
		Body   map[string]map[string]any
	}
	if err := p.Expect("twin", 10*time.Second).Decode(&twin); err != nil {
		t.Fatal(err)
	}
	if twin.Status != 200 {
		t.Errorf("twin GET status %d, want 200", twin.Status)
	}
	for _, sec := range []string{"desired", "reported"} {
		if _, ok := twin.Body[sec]["$version"]; !ok {
			t.Errorf("twin GET body has no %s.$version: %v", sec, twin.Body)
		}
		if _, ok := twin.Body[sec]["$metadata"]; ok {
			t.Errorf("twin GET body has %s.$metadata (a device GET has none): %v", sec, twin.Body)
		}
	}

	var rep struct {
		Status  int
		Version string
	}
	if err := p.Expect("reported", 10*time.Second).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Status != 204 {
		t.Errorf("reported PATCH status %d, want 204", rep.Status)
	}
	reported, version := h.reported(t, id)
	if reported["seed"] != "python" || !isNum(reported["telemetryInterval"], 5) {
		t.Errorf("hub's reported properties after the PATCH: %v", reported)
	}
	if strconv.FormatInt(version, 10) != rep.Version {
		t.Errorf("PATCH answered $version=%s, the hub's twin has reported $version %d", rep.Version, version)
	}

	p.Expect("ready", 10*time.Second)

	h.sendC2D(t, id, c2dMessage{Body: "hello python", MessageID: "c2d-py-1-" + transport, Properties: map[string]string{"color": "red x", "path": "a/b&c=d"}})
	var c2d struct {
		Props map[string]any
		Body  string
		QoS   int
	}
	if err := p.Expect("c2d", 10*time.Second).Decode(&c2d); err != nil {
		t.Fatal(err)
	}
	if c2d.Body != "hello python" || c2d.Props["$.mid"] != "c2d-py-1-"+transport || c2d.Props["color"] != "red x" || c2d.Props["path"] != "a/b&c=d" {
		t.Errorf("C2D seen by the device: %+v", c2d)
	}
	if c2d.Props["$.to"] != "/devices/"+id+"/messages/devicebound" {
		t.Errorf("C2D $.to = %v", c2d.Props["$.to"])
	}
	for k, v := range c2d.Props {
		if v == nil {
			t.Errorf("C2D bag has a bare key %q (SDKs mis-read it)", k)
		}
	}
	if c2d.QoS != 1 {
		t.Errorf("C2D delivered at QoS %d, want 1", c2d.QoS)
	}

	dv := h.patchDesired(t, id, `{"interval":7}`)
	var des struct {
		Version string
		Body    map[string]any
	}
	if err := p.Expect("desired", 10*time.Second).Decode(&des); err != nil {
		t.Fatal(err)
	}
	if des.Body["interval"] != float64(7) || des.Version != strconv.FormatInt(dv, 10) || des.Body["$version"] != float64(dv) {
		t.Errorf("desired notification %+v, want interval 7 at $version %d", des, dv)
	}

	status, payload := h.invokeMethod(t, id, "echo", `{"x":1}`, 10*time.Second)
	if ev := p.Expect("method", 10*time.Second); ev.Str("name") != "echo" {
		t.Errorf("method name %q", ev.Str("name"))
	}
	var reply struct {
		Echo map[string]any
		From string
	}
	if err := json.Unmarshal(payload, &reply); err != nil || status != 200 || reply.From != "python" || reply.Echo["x"] != float64(1) {
		t.Errorf("method result %d %s (%v)", status, payload, err)
	}

	p.Send(map[string]string{"cmd": "disconnect"})
	p.Expect("disconnected", 10*time.Second)
	if err := p.Wait(10 * time.Second); err != nil {
		t.Errorf("seed_flow.py: %v", err)
	}
	h.waitDisconnected(t, id, 10*time.Second)

	// Offline: a C2D message waits in the queue. The device comes back
	// with CleanSession=0 and does not SUBSCRIBE: the hub restores the
	// session (session present) and delivers the message on it.
	h.sendC2D(t, id, c2dMessage{Body: "while you were away", MessageID: "c2d-py-2-" + transport})
	env["MODE"], env["WILL_MID"] = "resume", "py-will"
	r := StartPython(t, "seed_flow.py", ProcOptions{Timeout: 30 * time.Second, Env: env})
	if ev := r.Expect("connected", 15*time.Second); ev.Fields["session_present"] != true {
		t.Errorf("reconnect with CleanSession=0 after a session: session present = %v, want true", ev.Fields["session_present"])
	}
	c2d.Props = nil
	if err := r.Expect("c2d", 10*time.Second).Decode(&c2d); err != nil {
		t.Fatal(err)
	}
	if c2d.Body != "while you were away" || c2d.Props["$.mid"] != "c2d-py-2-"+transport {
		t.Errorf("C2D on the restored session: %+v", c2d)
	}
	h.waitC2DQueueEmpty(t, id, 10*time.Second)
	r.Expect("ready", 10*time.Second)

	// An abrupt end (the process killed, no DISCONNECT): the hub sends the
	// Will as telemetry marked iothub-MessageType=Will.
	r.Kill()
	will := h.waitTelemetry(t, from, id, "py-will", 10*time.Second)
	if will.Properties["iothub-MessageType"] != "Will" || will.Properties["reason"] != "gone" || string(will.Body) != `{"will": true}` {
		t.Errorf("Will telemetry: properties %v, body %q", will.Properties, will.Body)
	}
	h.checkFeedback(t, id, "c2d-py-1-"+transport, "c2d-py-2-"+transport)
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPythonRefused: paho gets CONNACK 5 (not authorized) for a wrong key
// and for an expired token (the hub here allows no clock skew).
func TestPythonRefused(t *testing.T) {
	pythonBinary(t)
	h := startHubWith(t, false, emulator.Config{SASSkew: -1})
	const id = "py-refused"
	key := h.addDevice(t, id)
	wrong := make([]byte, 32)
	_, _ = rand.Read(wrong)
	for _, tc := range []struct{ name, key, ttl string }{
		{"wrong-key", base64.StdEncoding.EncodeToString(wrong), "3600"},
		{"expired", key, "-5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := StartPython(t, "seed_flow.py", ProcOptions{Timeout: 30 * time.Second, Env: map[string]string{
				"HUB_HOST": h.hostName(), "HUB_PORT": strconv.Itoa(h.mqttPort(t)), "HUB_CA": h.caFile(t),
				"DEVICE_ID": id, "DEVICE_KEY": tc.key, "SAS_TTL": tc.ttl,
			}})
			if rc := p.Expect("refused", 15*time.Second).Num("rc"); rc != 5 {
				t.Errorf("CONNACK return code %v, want 5", rc)
			}
			var ee *exec.ExitError
			if err := p.Wait(10 * time.Second); !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Errorf("seed_flow.py after a refusal: %v, want exit status 2", err)
			}
		})
	}
	if n := h.connectCount(t, id); n != 0 {
		t.Errorf("hub counted %d accepted connections", n)
	}

	// A token that expires while connected: the hub closes the connection
	// at its se (MQTT 3.1.1 cannot re-authenticate in-band).
	p := StartPython(t, "seed_flow.py", ProcOptions{Timeout: 30 * time.Second, Env: map[string]string{
		"HUB_HOST": h.hostName(), "HUB_PORT": strconv.Itoa(h.mqttPort(t)), "HUB_CA": h.caFile(t),
		"DEVICE_ID": id, "DEVICE_KEY": key, "SAS_TTL": "3", "MODE": "resume",
	}})
	p.Expect("connected", 15*time.Second)
	start := time.Now()
	p.Expect("connection_lost", 15*time.Second)
	t.Logf("connection closed %v after CONNACK (token lifetime 3 s)", time.Since(start).Round(100*time.Millisecond))
	p.Kill()
}
