package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/emulator/emulatortest"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// twinReq publishes a twin request and returns the response.
func (d *dev) twinReq(topic, rid string, body []byte) *mqtt.Message {
	d.t.Helper()
	if err := d.pub(topic, body, packet.QoS0); err != nil {
		d.t.Fatal(err)
	}
	return d.next("$iothub/twin/res/")
}

func TestRule33TwinGet(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr, clean: true})
			d.sub(iothub.TwinResponseFilter)
			m := d.twinReq("$iothub/twin/GET/?$rid=get-"+tr, "get-"+tr, nil)
			if string(m.Topic) != "$iothub/twin/res/200/?$rid=get-"+tr {
				t.Fatalf("topic %s", m.Topic)
			}
			var doc map[string]map[string]any
			if err := json.Unmarshal(m.Payload, &doc); err != nil {
				t.Fatalf("%s: %v", m.Payload, err)
			}
			if _, ok := doc["desired"]["$version"]; !ok || doc["reported"]["$version"] == nil || len(doc) != 2 {
				t.Fatalf("body %s", m.Payload)
			}
			if strings.Contains(string(m.Payload), "$metadata") || strings.Contains(string(m.Payload), "tags") {
				t.Fatalf("body has $metadata or tags: %s", m.Payload)
			}
		})
	}
}

func TestRule34ReportedPatch204Version(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr, clean: true})
			d.sub(iothub.TwinResponseFilter)
			before, _ := h.GetTwin("dev1", "")
			v0 := before.Properties.Reported["$version"].(int64)
			for i, rid := range []string{"p1", "p2"} {
				m := d.twinReq("$iothub/twin/PATCH/properties/reported/?$rid="+rid, rid, []byte(`{"temp":`+string(rune('1'+i))+`,"nested":{"a":1}}`))
				want := "$iothub/twin/res/204/?$rid=" + rid + "&$version="
				if !strings.HasPrefix(string(m.Topic), want) || len(m.Payload) != 0 {
					t.Fatalf("got %s %q", m.Topic, m.Payload)
				}
				r, _ := iothub.ParseTopic(m.Topic)
				if r.Version != v0+int64(i)+1 {
					t.Fatalf("$version %d, want %d", r.Version, v0+int64(i)+1)
				}
			}
			tw, _ := h.GetTwin("dev1", "")
			meta := tw.Properties.Reported["$metadata"].(map[string]any)
			if _, ok := meta["temp"].(map[string]any)["$lastUpdated"]; !ok {
				t.Fatalf("no $metadata for temp: %v", meta)
			}
		})
	}
}

func TestRule35InvalidTwinPatch400(t *testing.T) {
	h := newHub(t, "dev1")
	deep := `{"a":` + strings.Repeat(`{"a":`, 11) + `1` + strings.Repeat(`}`, 11) + `}`
	big := `{"big":"` + strings.Repeat("x", 4000) + `","b2":"` + strings.Repeat("x", 4000) + `"}`
	cases := map[string]string{
		"bad-json":      `{"a":`,
		"not-object":    `[1,2]`,
		"dot-key":       `{"a.b":1}`,
		"dollar-key":    `{"$a":1}`,
		"space-key":     `{"a b":1}`,
		"control-key":   "{\"a\\u0001\":1}",
		"depth-11":      deep,
		"long-string":   `{"s":"` + strings.Repeat("y", 4097) + `"}`,
		"int-too-large": `{"n":4503599627370496}`,
	}
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr, clean: true})
			d.sub(iothub.TwinResponseFilter)
			for name, body := range cases {
				m := d.twinReq("$iothub/twin/PATCH/properties/reported/?$rid="+name, name, []byte(body))
				if string(m.Topic) != "$iothub/twin/res/400/?$rid="+name {
					t.Errorf("%s: %s", name, m.Topic)
				}
			}
			// Grow the section past 32 KB in steps of under 4 KB strings.
			var last *mqtt.Message
			for i := 0; i < 10; i++ {
				body := strings.Replace(big, `"big"`, `"big`+string(rune('a'+i))+`"`, 1)
				body = strings.Replace(body, `"b2"`, `"b2`+string(rune('a'+i))+`"`, 1)
				last = d.twinReq("$iothub/twin/PATCH/properties/reported/?$rid=grow", "grow", []byte(body))
				if strings.HasPrefix(string(last.Topic), "$iothub/twin/res/400/") {
					break
				}
			}
			if !strings.HasPrefix(string(last.Topic), "$iothub/twin/res/400/") {
				t.Fatalf("section over 32 KB accepted: %s", last.Topic)
			}
		})
	}
}

func TestRule36ThrottledTwin429(t *testing.T) {
	h := emulatortest.Start(t, emulator.Config{TwinOpsPerSecond: 1})
	emulatortest.Device(t, h, "dev1")
	for _, tr := range transports {
		t.Run(tr+"/rate", func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr, clean: true})
			d.sub(iothub.TwinResponseFilter)
			var statuses []string
			for _, rid := range []string{"a", "b", "c"} {
				m := d.twinReq("$iothub/twin/GET/?$rid="+rid, rid, nil)
				statuses = append(statuses, strings.SplitN(strings.TrimPrefix(string(m.Topic), "$iothub/twin/res/"), "/", 2)[0])
			}
			if statuses[len(statuses)-1] != "429" {
				t.Fatalf("statuses %v, want a 429 at 1 op/s", statuses)
			}
		})
	}
	t.Run("fail-twin", func(t *testing.T) {
		h := newHub(t, "dev1")
		d := connect(t, h, "dev1", devOpts{clean: true})
		d.sub(iothub.TwinResponseFilter)
		h.FailTwin("dev1", "", 429, 2)
		for i, want := range []string{"429", "429", "200"} {
			m := d.twinReq("$iothub/twin/GET/?$rid=f", "f", nil)
			if !strings.HasPrefix(string(m.Topic), "$iothub/twin/res/"+want+"/") {
				t.Fatalf("request %d: %s, want %s", i, m.Topic, want)
			}
		}
	})
}

func TestRule37DesiredOnlyToSubscribers(t *testing.T) {
	h := newHub(t, "sub", "nosub", "off")
	ctx := testCtx(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			a := connect(t, h, "sub", devOpts{transport: tr, clean: true})
			a.sub(iothub.TwinDesiredFilter)
			b := connect(t, h, "nosub", devOpts{transport: tr, clean: true})
			b.sub(iothub.TwinResponseFilter)
			v, err := h.UpdateDesired(ctx, "sub", "", []byte(`{"fw":"`+tr+`","gone":null}`))
			if err != nil {
				t.Fatal(err)
			}
			m := a.next("$iothub/twin/PATCH/properties/desired/")
			if string(m.Topic) != "$iothub/twin/PATCH/properties/desired/?$version="+itoa(v) {
				t.Fatalf("topic %s, version %d", m.Topic, v)
			}
			var body map[string]any
			json.Unmarshal(m.Payload, &body)
			if body["fw"] != tr || body["$version"] != float64(v) {
				t.Fatalf("body %s", m.Payload)
			}
			if _, err := h.UpdateDesired(ctx, "nosub", "", []byte(`{"x":1}`)); err != nil {
				t.Fatal(err)
			}
			b.none("$iothub/twin/PATCH/", 200*time.Millisecond)
			// Offline: nothing queued.
			if _, err := h.UpdateDesired(ctx, "off", "", []byte(`{"y":1}`)); err != nil {
				t.Fatal(err)
			}
			c := connect(t, h, "off", devOpts{transport: tr})
			c.sub(iothub.TwinDesiredFilter)
			c.none("$iothub/twin/PATCH/", 200*time.Millisecond)
		})
	}
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

func TestRule39MethodRequestTopic(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr, clean: true})
			d.sub(iothub.MethodsFilter)
			type result struct {
				r   emulator.MethodResult
				err error
			}
			done := make(chan result, 1)
			go func() {
				r, err := h.InvokeMethod(context.Background(), emulator.MethodCall{DeviceID: "dev1", Name: "reboot", Payload: []byte(`{"delay":1}`)})
				done <- result{r, err}
			}()
			m := d.next("$iothub/methods/POST/")
			route, err := iothub.ParseTopic(m.Topic)
			if err != nil || string(route.MethodName) != "reboot" || m.QoS != 0 || string(m.Payload) != `{"delay":1}` {
				t.Fatalf("request %s %s qos %d", m.Topic, m.Payload, m.QoS)
			}
			for _, c := range route.RequestID {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
					t.Fatalf("request id %q is not plain", route.RequestID)
				}
			}
			d.pub("$iothub/methods/res/201/?$rid="+string(route.RequestID), []byte(`{"ok":true}`), packet.QoS0)
			select {
			case res := <-done:
				if res.err != nil || res.r.Status != 201 || string(res.r.Payload) != `{"ok":true}` {
					t.Fatalf("result %+v %v", res.r, res.err)
				}
			case <-time.After(wait):
				t.Fatal("no method result")
			}
			if _, err := h.InvokeMethod(testCtx(t), emulator.MethodCall{DeviceID: "dev1", Name: "bad?name"}); !errors.Is(err, emulator.ErrInvalidArgument) {
				t.Fatalf("bad name: %v", err)
			}
		})
	}
}

func TestRule40MethodNotOnlineAndTimeout(t *testing.T) {
	h := newHub(t, "dev1", "idle")
	ctx := testCtx(t)
	if _, err := h.InvokeMethod(ctx, emulator.MethodCall{DeviceID: "ghost", Name: "m"}); !errors.Is(err, emulator.ErrDeviceNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := h.InvokeMethod(ctx, emulator.MethodCall{DeviceID: "dev1", Name: "m"}); !errors.Is(err, emulator.ErrDeviceNotOnline) {
		t.Fatalf("offline: %v", err)
	}
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			u := connect(t, h, "dev1", devOpts{transport: tr, clean: true})
			if _, err := h.InvokeMethod(ctx, emulator.MethodCall{DeviceID: "dev1", Name: "m"}); !errors.Is(err, emulator.ErrDeviceNotOnline) {
				t.Fatalf("unsubscribed: %v", err)
			}
			u.sub(iothub.MethodsFilter)
			start := time.Now()
			_, err := h.InvokeMethod(ctx, emulator.MethodCall{DeviceID: "dev1", Name: "m", ResponseTimeout: 5 * time.Second})
			if !errors.Is(err, emulator.ErrTimeout) {
				t.Fatalf("no reply: %v", err)
			}
			if time.Since(start) < 5*time.Second {
				t.Fatal("timed out before the response timeout")
			}
			// The late reply is dropped and the connection stays.
			m := u.next("$iothub/methods/POST/")
			r, _ := iothub.ParseTopic(m.Topic)
			u.pub("$iothub/methods/res/200/?$rid="+string(r.RequestID), nil, packet.QoS0)
			u.pub("$iothub/methods/res/200/?$rid=unknown", nil, packet.QoS0)
			if err := u.pub("devices/dev1/messages/events/", []byte("alive"), packet.QoS1); err != nil {
				t.Fatalf("connection closed by a late reply: %v", err)
			}
		})
	}
	t.Run("connect-timeout", func(t *testing.T) {
		done := make(chan error, 1)
		go func() {
			_, err := h.InvokeMethod(context.Background(), emulator.MethodCall{DeviceID: "idle", Name: "m",
				ResponseTimeout: 5 * time.Second, ConnectTimeout: 20 * time.Second})
			done <- err
		}()
		d := connect(t, h, "idle", devOpts{clean: true})
		d.sub(iothub.MethodsFilter)
		m := d.next("$iothub/methods/POST/m/")
		r, _ := iothub.ParseTopic(m.Topic)
		d.pub("$iothub/methods/res/200/?$rid="+string(r.RequestID), []byte(`1`), packet.QoS0)
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(wait):
			t.Fatal("no result")
		}
	})
}

// TestModuleTwinAndMethod: module identities have their own twin and
// methods on the same topics.
func TestModuleTwinAndMethod(t *testing.T) {
	h := newHub(t, "dev1")
	emulatortest.Module(t, h, "dev1", "mod1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr, module: "mod1", clean: true})
			d.sub(iothub.TwinResponseFilter, iothub.TwinDesiredFilter, iothub.MethodsFilter)
			m := d.twinReq("$iothub/twin/PATCH/properties/reported/?$rid=m", "m", []byte(`{"mod":"`+tr+`"}`))
			if !strings.HasPrefix(string(m.Topic), "$iothub/twin/res/204/") {
				t.Fatalf("patch: %s", m.Topic)
			}
			tw, err := h.GetTwin("dev1", "mod1")
			if err != nil || tw.ModuleID != "mod1" || tw.Properties.Reported["mod"] != tr {
				t.Fatalf("module twin %+v %v", tw, err)
			}
			if dt, _ := h.GetTwin("dev1", ""); dt.Properties.Reported["mod"] != nil {
				t.Fatal("module patch reached the device twin")
			}
			if _, err := h.UpdateDesired(testCtx(t), "dev1", "mod1", []byte(`{"x":"`+tr+`"}`)); err != nil {
				t.Fatal(err)
			}
			d.next("$iothub/twin/PATCH/properties/desired/")
			done := make(chan error, 1)
			go func() {
				r, err := h.InvokeMethod(context.Background(), emulator.MethodCall{DeviceID: "dev1", ModuleID: "mod1", Name: "ping"})
				if err == nil && r.Status != 200 {
					err = errors.New("status " + itoa(int64(r.Status)))
				}
				done <- err
			}()
			req := d.next("$iothub/methods/POST/ping/")
			r, _ := iothub.ParseTopic(req.Topic)
			d.pub("$iothub/methods/res/200/?$rid="+string(r.RequestID), nil, packet.QoS0)
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(wait):
				t.Fatal("no module method result")
			}
		})
	}
}
