package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub"
)

var transports = []string{TransportMQTT, TransportMQTTWebSocket}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

func TestTelemetryEndToEnd(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newTestHub(t)
			cs := h.addDevice("dev1")
			cfg := h.config(cs, tr)
			cfg.ModelID = "dtmi:com:example:Thermostat;1"
			c := mustClient(t, cfg)
			ctx := testCtx(t, 10*time.Second)
			if err := c.Connect(ctx); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			m := &Message{Payload: []byte(`{"t":21.5}`), CreationTime: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)}
			m.Properties.MessageID = "m-1"
			m.Properties.CorrelationID = "c 1"
			m.Properties.ContentType = "application/json"
			m.Properties.ContentEncoding = "utf-8"
			m.Properties.Subject = "thermostat1"
			m.Properties.Add("alert", "high temp")
			if err := c.Send(ctx, m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			m0 := &Message{Payload: []byte("qos0"), QoS0: true}
			if err := c.Send(ctx, m0); err != nil {
				t.Fatalf("Send QoS 0: %v", err)
			}
			waitFor(t, 5*time.Second, "two messages", func() bool { return len(h.telemetryOf("dev1")) == 2 })
			got := h.telemetryOf("dev1")[0]
			p := got.Props
			if got.Payload != `{"t":21.5}` || p.MessageID != "m-1" || p.CorrelationID != "c 1" || p.ContentType != "application/json" ||
				p.ContentEncoding != "utf-8" || p.Subject != "thermostat1" || p.CreationTime != "2026-01-02T03:04:05.006Z" {
				t.Errorf("received %+v", got)
			}
			if v, ok := p.Lookup("alert"); !ok || v != "high temp" {
				t.Errorf("application property alert = %q, %v", v, ok)
			}
		})
	}
}

func TestC2DEndToEnd(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newTestHub(t)
			cs := h.addDevice("dev1")
			cfg := h.config(cs, tr)
			var mu sync.Mutex
			var got []string
			cfg.OnC2D = func(ctx context.Context, m *C2DMessage) {
				mu.Lock()
				got = append(got, string(m.Payload)+"|"+m.Properties.MessageID+"|"+m.Properties.Ack)
				mu.Unlock()
			}
			c := mustClient(t, cfg)
			if err := c.Connect(testCtx(t, 10*time.Second)); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			for i := range 3 {
				props := &iothub.Properties{MessageID: "id" + strconv.Itoa(i), Ack: "full"}
				h.sendC2D("dev1", "hello"+strconv.Itoa(i), props)
			}
			waitFor(t, 5*time.Second, "3 C2D messages", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
			for i, g := range got {
				if want := fmt.Sprintf("hello%d|id%d|full", i, i); g != want {
					t.Errorf("message %d = %q, want %q", i, g, want)
				}
			}
			// Every message was acknowledged (completed) after its handler.
			waitFor(t, 5*time.Second, "C2D queue empty", func() bool {
				h.mu.Lock()
				defer h.mu.Unlock()
				return len(h.ids["dev1"].session.c2d) == 0
			})
		})
	}
}

// TestC2DQueuedWhileOfflineArrivesBeforeSubscribe: IoT Hub publishes queued
// C2D right after CONNACK when it resumes a session, before the client
// subscribes again. The handler set before Connect gets them.
func TestC2DQueuedWhileOfflineArrivesBeforeSubscribe(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	got := make(chan string, 10)
	cfg := h.config(cs, TransportMQTT)
	cfg.OnC2D = func(ctx context.Context, m *C2DMessage) { got <- string(m.Payload) }
	c1 := mustClient(t, cfg)
	ctx := testCtx(t, 10*time.Second)
	if err := c1.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Offline: the hub queues.
	h.sendC2D("dev1", "while-offline-1", nil)
	h.sendC2D("dev1", "while-offline-2", nil)

	// Count SUBSCRIBEs seen before the messages: the hub flushes queued
	// messages right after CONNACK (session present).
	c2 := mustClient(t, cfg)
	if err := c2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"while-offline-1", "while-offline-2"} {
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("got %q, want %q", g, want)
			}
		case <-ctx.Done():
			t.Fatalf("C2D %q not delivered", want)
		}
	}
}

func TestTwinEndToEnd(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newTestHub(t)
			cs := h.addDevice("dev1")
			h.updateDesired("dev1", `{"fw":"1.0"}`)
			updates := make(chan DesiredUpdate, 16)
			cfg := h.config(cs, tr)
			cfg.OnDesired = func(u DesiredUpdate) { updates <- u }
			c := mustClient(t, cfg)
			ctx := testCtx(t, 10*time.Second)
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			u := nextUpdate(t, updates)
			if !u.Full || u.Version != 2 || u.Patch["fw"] != "1.0" {
				t.Fatalf("first update %+v", u)
			}
			v, err := c.ReportProperties(ctx, map[string]any{"temp": 21, "nested": map[string]any{"a": true}})
			if err != nil || v != 2 {
				t.Fatalf("ReportProperties = %d, %v", v, err)
			}
			tw, err := c.GetTwin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tw.Reported.Version != 2 || fmt.Sprint(tw.Reported.Props["temp"]) != "21" || tw.Desired.Props["fw"] != "1.0" {
				t.Fatalf("twin %+v", tw)
			}
			h.updateDesired("dev1", `{"fw":"1.1","mode":"eco"}`)
			u = nextUpdate(t, updates)
			if u.Full || u.Resync || u.Version != 3 || u.Patch["fw"] != "1.1" || u.Patch["mode"] != "eco" {
				t.Fatalf("notification %+v", u)
			}
			if _, err := c.ReportProperties(ctx, []byte(`{"bad key":1}`)); !errors.Is(err, iothub.ErrBadRequest) {
				t.Fatalf("invalid patch: %v, want ErrBadRequest", err)
			}
		})
	}
}

func nextUpdate(t *testing.T, ch chan DesiredUpdate) DesiredUpdate {
	t.Helper()
	select {
	case u := <-ch:
		return u
	case <-time.After(5 * time.Second):
		t.Fatal("no desired update")
	}
	return DesiredUpdate{}
}

func TestTwin429Retried(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	c := mustClient(t, h.config(cs, TransportMQTT))
	ctx := testCtx(t, 20*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// Let the synchronising GET go first.
	waitFor(t, 5*time.Second, "twin sync", func() bool { _, _, ok := c.DesiredProperties(); return ok })
	h.failTwin(429, 429)
	v, err := c.ReportProperties(ctx, map[string]any{"x": 1})
	if err != nil || v != 2 {
		t.Fatalf("ReportProperties after two 429s = %d, %v", v, err)
	}
	h.failTwin(404)
	if _, err := c.GetTwin(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetTwin with 404: %v, want ErrNotFound", err)
	}
}

func TestMethodsEndToEnd(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newTestHub(t)
			cs := h.addDevice("dev1")
			cfg := h.config(cs, tr)
			cfg.Methods = map[string]MethodHandler{
				"echo": func(ctx context.Context, req MethodRequest) (int, []byte, error) { return 200, req.Payload, nil },
				"fail": func(ctx context.Context, req MethodRequest) (int, []byte, error) { return 0, nil, errors.New("boom") },
				"panic": func(ctx context.Context, req MethodRequest) (int, []byte, error) {
					panic("handler bug")
				},
			}
			c := mustClient(t, cfg)
			if err := c.Connect(testCtx(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			c.HandleMethod("late", func(ctx context.Context, req MethodRequest) (int, []byte, error) { return 201, []byte(`"late"`), nil })
			for _, tc := range []struct {
				name, payload string
				status        int
			}{
				{"echo", `{"a":1}`, 200},
				{"fail", ``, 500},
				{"panic", ``, 500},
				{"late", ``, 201},
				{"nope", ``, 501},
			} {
				res, err := h.invoke("dev1", tc.name, tc.payload, 5*time.Second)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if res.Status != tc.status {
					t.Errorf("%s: status %d, want %d (payload %s)", tc.name, res.Status, tc.status, res.Payload)
				}
				if tc.name == "echo" && string(res.Payload) != tc.payload {
					t.Errorf("echo payload %s", res.Payload)
				}
			}
		})
	}
}

// TestSlowMethodKeepsConnection: a 5 s method handler with a 1 s keep-alive
// neither delays keep-alive (the hub would drop the connection after
// 1.5 s of silence) nor other traffic.
func TestSlowMethodKeepsConnection(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	cfg := h.config(cs, TransportMQTT)
	cfg.KeepAlive = time.Second
	cfg.Methods = map[string]MethodHandler{
		"slow": func(ctx context.Context, req MethodRequest) (int, []byte, error) {
			select {
			case <-time.After(5 * time.Second):
			case <-ctx.Done():
				return 0, nil, ctx.Err()
			}
			return 200, []byte(`"done"`), nil
		},
		"fast": func(ctx context.Context, req MethodRequest) (int, []byte, error) { return 200, nil, nil },
	}
	var lost atomic.Int32
	cfg.OnStateChange = func(from, to State, err error) {
		if from == StateConnected {
			lost.Add(1)
		}
	}
	c := mustClient(t, cfg)
	ctx := testCtx(t, 20*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	slow := make(chan iothub.MethodResult, 1)
	go func() {
		res, err := h.invoke("dev1", "slow", "", 10*time.Second)
		if err != nil {
			t.Errorf("slow: %v", err)
		}
		slow <- res
	}()
	time.Sleep(200 * time.Millisecond)
	// Meanwhile other traffic flows.
	if res, err := h.invoke("dev1", "fast", "", 5*time.Second); err != nil || res.Status != 200 {
		t.Fatalf("fast method during slow one: %+v, %v", res, err)
	}
	if err := c.Send(ctx, &Message{Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-slow:
		if res.Status != 200 {
			t.Fatalf("slow: %+v", res)
		}
	case <-ctx.Done():
		t.Fatal("slow method never answered")
	}
	if n := lost.Load(); n != 0 {
		t.Fatalf("connection lost %d times during the slow method", n)
	}
	if h.connectCount() != 1 {
		t.Fatalf("%d connects, want 1", h.connectCount())
	}
}

func TestModuleEndToEnd(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1/mod1")
	cfg := h.config(cs, TransportMQTT)
	cfg.Methods = map[string]MethodHandler{"ping": func(ctx context.Context, req MethodRequest) (int, []byte, error) { return 200, []byte(`"pong"`), nil }}
	c := mustClient(t, cfg)
	ctx := testCtx(t, 10*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, &Message{Payload: []byte("from module")}); err != nil {
		t.Fatal(err)
	}
	got := h.telemetryOf("dev1/mod1")
	if len(got) != 1 || got[0].Topic != "devices/dev1/modules/mod1/messages/events/" {
		t.Fatalf("module telemetry %+v", got)
	}
	if v, err := c.ReportProperties(ctx, json.RawMessage(`{"m":1}`)); err != nil || v != 2 {
		t.Fatalf("module report: %d %v", v, err)
	}
	if res, err := h.invoke("dev1/mod1", "ping", "", 5*time.Second); err != nil || string(res.Payload) != `"pong"` {
		t.Fatalf("module method: %+v %v", res, err)
	}
}

// TestModuleInput: a module with OnC2D receives messages routed to its
// inputs (IoT Edge), with the input name.
func TestModuleInput(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1/mod1")
	got := make(chan string, 1)
	cfg := h.config(cs, TransportMQTT)
	cfg.OnC2D = func(ctx context.Context, m *C2DMessage) {
		got <- m.InputName + ":" + string(m.Payload) + ":" + m.Properties.MessageID
	}
	c := mustClient(t, cfg)
	ctx := testCtx(t, 10*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	h.sendInput("dev1/mod1", "input1", "routed")
	select {
	case g := <-got:
		if g != "input1:routed:in-1" {
			t.Fatalf("got %q", g)
		}
	case <-ctx.Done():
		t.Fatal("no input message")
	}
}
