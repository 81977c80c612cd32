package emulator_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/emulator/emulatortest"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// lastTelemetry waits for a telemetry message of the device with the body.
func findTelemetry(t *testing.T, h *emulator.Hub, deviceID, body string) emulator.Message {
	t.Helper()
	var found emulator.Message
	waitFor(t, "telemetry "+body, func() bool {
		for _, m := range telemetryOf(t, h, deviceID) {
			if string(m.Body) == body {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func TestRule19WillAsTelemetry(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		connectWill := func(body string) *rawConn {
			c := dialRaw(t, h, tr)
			c.send(&packet.Connect{ClientID: []byte("dev1"), CleanSession: true, KeepAlive: 60,
				WillFlag: true, WillQoS: packet.QoS1, WillTopic: []byte("devices/dev1/messages/events/k=v"), WillPayload: []byte(body),
				UsernameFlag: true, Username: []byte(username(h, "dev1", "")),
				PasswordFlag: true, Password: []byte(deviceToken(t, h, "dev1", "", time.Hour))})
			if p, err := c.read(); err != nil || p.(*packet.Connack).ReturnCode != 0 {
				t.Fatalf("CONNACK: %v %v", p, err)
			}
			return c
		}
		t.Run(tr+"/abrupt", func(t *testing.T) {
			c := connectWill("will-" + tr)
			c.nc.Close()
			m := findTelemetry(t, h, "dev1", "will-"+tr)
			if m.Properties["iothub-MessageType"] != "Will" || m.Properties["k"] != "v" {
				t.Fatalf("will properties %v", m.Properties)
			}
		})
		t.Run(tr+"/disconnect-discards", func(t *testing.T) {
			c := connectWill("nowill-" + tr)
			c.send(&packet.Disconnect{})
			c.expectClosed()
			// A marker sent after shows the hub has finished with the
			// first connection.
			d := connect(t, h, "dev1", devOpts{transport: tr})
			d.pub("devices/dev1/messages/events/", []byte("marker-"+tr), packet.QoS1)
			findTelemetry(t, h, "dev1", "marker-"+tr)
			for _, m := range telemetryOf(t, h, "dev1") {
				if string(m.Body) == "nowill-"+tr {
					t.Fatal("will sent after DISCONNECT")
				}
			}
		})
	}
}

func TestRule20QoS2PublishCloses(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			c := dialRaw(t, h, tr)
			c.connect(h, "dev1", "", true)
			c.send(&packet.Publish{Topic: []byte("devices/dev1/messages/events/"), QoS: packet.QoS2, ID: 1, Payload: []byte("q2")})
			for _, p := range c.expectClosed() {
				if _, ok := p.(*packet.Pubrec); ok {
					t.Fatal("QoS 2 publish acknowledged")
				}
			}
		})
	}
}

func TestRule21RetainForwardedWithProperty(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr})
			err := d.c.Publish(testCtx(t), &mqtt.Message{Topic: []byte("devices/dev1/messages/events/"), Payload: []byte("ret-" + tr), QoS: packet.QoS1, Retain: true})
			if err != nil {
				t.Fatal(err)
			}
			m := findTelemetry(t, h, "dev1", "ret-"+tr)
			if m.Properties["mqtt-retain"] != "true" {
				t.Fatalf("properties %v", m.Properties)
			}
			// Not stored as a retained message: a new subscriber gets
			// nothing.
			d2 := connect(t, h, "dev1", devOpts{transport: tr})
			d2.sub("devices/dev1/messages/devicebound/#")
			d2.none("devices/dev1/messages/events", 200*time.Millisecond)
		})
	}
}

func TestRule22PubackOnlyForQoS1(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			c := dialRaw(t, h, tr)
			c.connect(h, "dev1", "", true)
			c.send(&packet.Publish{Topic: []byte("devices/dev1/messages/events/"), QoS: packet.QoS0, Payload: []byte("q0")})
			c.send(&packet.Publish{Topic: []byte("devices/dev1/messages/events/"), QoS: packet.QoS1, ID: 7, Payload: []byte("q1")})
			c.send(&packet.Pingreq{})
			var got []packet.Type
			for len(got) < 2 {
				p, err := c.read()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, p.Type())
				if a, ok := p.(*packet.Puback); ok && a.ID != 7 {
					t.Fatalf("PUBACK %d, want 7", a.ID)
				}
			}
			if got[0] != packet.TypePuback || got[1] != packet.TypePingresp {
				t.Fatalf("got %v, want one PUBACK then PINGRESP", got)
			}
			findTelemetry(t, h, "dev1", "q0")
			findTelemetry(t, h, "dev1", "q1")
		})
	}
}

func TestRule23OversizeClosesConnection(t *testing.T) {
	h := newHub(t, "dev1")
	// Counted: body + property names and values: "ab"+"cd" = 4 bytes.
	for _, tr := range transports {
		t.Run(tr+"/at-limit", func(t *testing.T) {
			c := dialRaw(t, h, tr)
			c.connect(h, "dev1", "", true)
			body := bytes.Repeat([]byte("x"), emulator.MaxTelemetrySize-4)
			c.send(&packet.Publish{Topic: []byte("devices/dev1/messages/events/ab=cd"), QoS: packet.QoS1, ID: 1, Payload: body})
			if p, err := c.read(); err != nil || p.Type() != packet.TypePuback {
				t.Fatalf("256 KB message: %v %v", p, err)
			}
		})
		t.Run(tr+"/over-limit", func(t *testing.T) {
			c := dialRaw(t, h, tr)
			c.connect(h, "dev1", "", true)
			body := bytes.Repeat([]byte("x"), emulator.MaxTelemetrySize-3)
			c.send(&packet.Publish{Topic: []byte("devices/dev1/messages/events/ab=cd"), QoS: packet.QoS1, ID: 1, Payload: body})
			if got := c.expectClosed(); len(got) != 0 {
				t.Fatalf("got %v before the close", got)
			}
		})
	}
}

func TestRule24BagEncoding(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr+"/d2c-decoded-plus-literal", func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr})
			// A raw '+' cannot be sent (a wildcard in a topic name), so
			// only %2B reaches the hub; it decodes to '+', never to a space.
			d.pub("devices/dev1/messages/events/a%20b=c%2Bd%20e&x=%26%3D%2F", []byte("bag-"+tr), packet.QoS1)
			m := findTelemetry(t, h, "dev1", "bag-"+tr)
			if m.Properties["a b"] != "c+d e" || m.Properties["x"] != "&=/" {
				t.Fatalf("properties %q", m.Properties)
			}
		})
		t.Run(tr+"/c2d-encoded", func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr, clean: true})
			d.sub("devices/dev1/messages/devicebound/#")
			if _, err := h.SendC2D(testCtx(t), "dev1", emulator.C2DMessage{Body: []byte("c"),
				Properties: map[string]string{"k y": "x y+z&=/", "empty": ""}}); err != nil {
				t.Fatal(err)
			}
			m := d.next("devices/dev1/messages/devicebound/")
			bag := strings.TrimPrefix(string(m.Topic), "devices/dev1/messages/devicebound/")
			if !strings.Contains(bag, "k%20y=x%20y%2Bz%26%3D%2F") || !strings.Contains(bag, "empty=") {
				t.Fatalf("bag %s", bag)
			}
			if strings.ContainsAny(bag, "/+ ") {
				t.Fatalf("raw / + or space in bag %s", bag)
			}
		})
	}
}

func TestRule25SystemPropertiesMapped(t *testing.T) {
	h := newHub(t, "dev1")
	bag := "%24.mid=m1&%24.cid=c1&$.uid=u1&%24.ct=application%2Fjson&%24.ce=utf-8&%24.ctime=2026-01-01T00%3A00%3A00Z" +
		"&%24.exp=2027-01-01T00%3A00%3A00Z&%24.schema=s1&%24.sub=comp&%24.ifid=if1&%24.on=out1&iothub-ack=full&plain=1&=dropped"
	want := map[string]string{
		"message-id": "m1", "correlation-id": "c1", "user-id": "u1", "content-type": "application/json",
		"content-encoding": "utf-8", "iothub-creation-time-utc": "2026-01-01T00:00:00Z",
		"absolute-expiry-time": "2027-01-01T00:00:00Z", "iothub-message-schema": "s1", "dt-subject": "comp",
		"iothub-interface-id": "if1", "iothub-outputname": "out1",
	}
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr})
			if err := d.pub("devices/dev1/messages/events/"+bag, []byte("sys-"+tr), packet.QoS1); err != nil {
				t.Fatal(err)
			}
			m := findTelemetry(t, h, "dev1", "sys-"+tr)
			for k, v := range want {
				if m.SystemProperties[k] != v {
					t.Errorf("%s = %q, want %q", k, m.SystemProperties[k], v)
				}
			}
			wantApp := map[string]string{"iothub-ack": "full", "plain": "1"}
			if len(m.Properties) != len(wantApp) || m.Properties["iothub-ack"] != "full" || m.Properties["plain"] != "1" {
				t.Errorf("application properties %q, want %q", m.Properties, wantApp)
			}
		})
	}
	t.Run("system-key-wins", func(t *testing.T) {
		// What the Node SDK sends for messageId "real" plus an application
		// property "$.mid": the first (the SDK's system property) counts.
		d := connect(t, h, "dev1", devOpts{})
		d.pub("devices/dev1/messages/events/%24.mid=real&%24.ct=application%2Fjson&%24.mid=spoofed&=empty&ok=yes", []byte("wins"), packet.QoS1)
		m := findTelemetry(t, h, "dev1", "wins")
		if m.SystemProperties["message-id"] != "real" || len(m.Properties) != 1 || m.Properties["ok"] != "yes" {
			t.Fatalf("sys %v app %v", m.SystemProperties, m.Properties)
		}
	})
}

func TestRule26HubStampedProperties(t *testing.T) {
	h := newHub(t, "dev1")
	emulatortest.Module(t, h, "dev1", "mod1")
	dev, _ := h.GetDevice("dev1")
	mod, _ := h.GetModule("dev1", "mod1")
	for _, tr := range transports {
		t.Run(tr+"/device", func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr,
				username: "localhost/dev1/?api-version=2021-04-12&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1"})
			d.pub("devices/dev1/messages/events/", []byte("st-"+tr), packet.QoS1)
			m := findTelemetry(t, h, "dev1", "st-"+tr)
			sp := m.SystemProperties
			if sp["iothub-connection-device-id"] != "dev1" || sp["iothub-connection-auth-generation-id"] != dev.GenerationID ||
				sp["iothub-message-source"] != "Telemetry" || sp["dt-dataschema"] != "dtmi:com:example:Thermostat;1" {
				t.Fatalf("system properties %v", sp)
			}
			if _, ok := sp["iothub-connection-module-id"]; ok {
				t.Fatal("module id on device telemetry")
			}
			var am struct{ Scope, Type, Issuer string }
			if err := json.Unmarshal([]byte(sp["iothub-connection-auth-method"]), &am); err != nil || am.Scope != "device" || am.Type != "sas" || am.Issuer != "iothub" {
				t.Fatalf("auth method %q", sp["iothub-connection-auth-method"])
			}
			if et, err := time.Parse(time.RFC3339Nano, sp["iothub-enqueuedtime"]); err != nil || !et.Equal(m.EnqueuedTime) {
				t.Fatalf("enqueued time %q vs %v", sp["iothub-enqueuedtime"], m.EnqueuedTime)
			}
			tw, _ := h.GetTwin("dev1", "")
			if tw.ModelID != "dtmi:com:example:Thermostat;1" {
				t.Fatalf("twin modelId %q", tw.ModelID)
			}
		})
		t.Run(tr+"/module", func(t *testing.T) {
			d := connect(t, h, "dev1", devOpts{transport: tr, module: "mod1"})
			d.pub("devices/dev1/modules/mod1/messages/events/", []byte("sm-"+tr), packet.QoS1)
			m := findTelemetry(t, h, "dev1", "sm-"+tr)
			sp := m.SystemProperties
			if sp["iothub-connection-module-id"] != "mod1" || m.ModuleID != "mod1" || sp["iothub-connection-auth-generation-id"] != mod.GenerationID ||
				!strings.Contains(sp["iothub-connection-auth-method"], `"scope":"module"`) {
				t.Fatalf("system properties %v", sp)
			}
		})
	}
}

func TestRule28BadFilterOrTopicCloses(t *testing.T) {
	h := newHub(t, "dev1", "dev2")
	subscribe := func(c *rawConn, filters ...string) {
		var subs []packet.Subscription
		for _, f := range filters {
			subs = append(subs, packet.Subscription{Filter: []byte(f), QoS: packet.QoS1})
		}
		c.send(&packet.Subscribe{ID: 1, Filters: subs})
	}
	for _, tr := range transports {
		cases := map[string]func(c *rawConn){
			"unsupported-filter": func(c *rawConn) { subscribe(c, "devices/dev1/messages/events/#") },
			"plus-wildcard":      func(c *rawConn) { subscribe(c, "$iothub/twin/+/#") },
			"other-device-c2d":   func(c *rawConn) { subscribe(c, "devices/dev2/messages/devicebound/#") },
			"sixth-subscription": func(c *rawConn) {
				subscribe(c, "$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#", "$iothub/methods/POST/#", "devices/dev1/messages/devicebound/#", "devices/+/messages/devicebound/#", "devices/dev1/modules/m/messages/devicebound/#")
			},
			"publish-other-device": func(c *rawConn) {
				c.send(&packet.Publish{Topic: []byte("devices/dev2/messages/events/"), Payload: []byte("x")})
			},
			"publish-unknown-hub": func(c *rawConn) { c.send(&packet.Publish{Topic: []byte("$iothub/unknown/x"), Payload: []byte("x")}) },
			"publish-c2d-topic": func(c *rawConn) {
				c.send(&packet.Publish{Topic: []byte("devices/dev1/messages/devicebound/"), Payload: []byte("x")})
			},
			"publish-anything-else": func(c *rawConn) { c.send(&packet.Publish{Topic: []byte("hello/world"), Payload: []byte("x")}) },
		}
		for name, act := range cases {
			t.Run(tr+"/"+name, func(t *testing.T) {
				c := dialRaw(t, h, tr)
				c.connect(h, "dev1", "", true)
				act(c)
				for _, p := range c.expectClosed() {
					if s, ok := p.(*packet.Suback); ok {
						t.Fatalf("SUBACK %v instead of a close", s.ReturnCodes)
					}
				}
			})
		}
		t.Run(tr+"/five-allowed", func(t *testing.T) {
			c := dialRaw(t, h, tr)
			c.connect(h, "dev1", "", true)
			subscribe(c, "$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#", "$iothub/methods/POST/#", "devices/dev1/messages/devicebound/#", "devices/+/messages/devicebound/#")
			p, err := c.read()
			if err != nil {
				t.Fatal(err)
			}
			if s, ok := p.(*packet.Suback); !ok || len(s.ReturnCodes) != 5 || bytes.Contains(s.ReturnCodes, []byte{0x80}) {
				t.Fatalf("got %v", p)
			}
		})
	}
}

// TestPubacksInPublishOrder: QoS 1 telemetry (acknowledged once durable) and
// a QoS 1 twin request sent together are acknowledged in order
// [MQTT-4.6.0-2].
func TestPubacksInPublishOrder(t *testing.T) {
	h := newHub(t, "dev1")
	c := dialRaw(t, h, "tls")
	c.connect(h, "dev1", "", true)
	var b []byte
	for i := 1; i <= 3; i++ {
		b, _ = (&packet.Publish{Topic: []byte("devices/dev1/messages/events/"), QoS: 1, ID: packet.ID(i), Payload: []byte("x")}).AppendBinary(b)
	}
	b, _ = (&packet.Publish{Topic: []byte("$iothub/twin/GET/?$rid=1"), QoS: 1, ID: 4}).AppendBinary(b)
	b, _ = (&packet.Publish{Topic: []byte("devices/dev1/messages/events/"), QoS: 1, ID: 5, Payload: []byte("y")}).AppendBinary(b)
	c.sendBytes(b)
	var ids []packet.ID
	for len(ids) < 5 {
		p, err := c.read()
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := p.(*packet.Puback); ok {
			ids = append(ids, a.ID)
		}
	}
	for i, id := range ids {
		if id != packet.ID(i+1) {
			t.Fatalf("PUBACK order %v", ids)
		}
	}
}
