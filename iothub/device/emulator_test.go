package device

// End-to-end tests against the emulator (iothub/emulator), over real TLS
// (8883-style listener) and WSS (/$iothub/websocket on the HTTPS listener).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/testcert"
	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/emulator/emulatortest"
)

func emuConfig(h *emulator.Hub, cs, tr string) Config {
	addr := h.MQTTAddr().String()
	if tr == TransportMQTTWebSocket {
		addr = h.HTTPSAddr().String()
	}
	return Config{ConnectionString: cs, Transport: tr, Address: addr, RootCAs: h.CertPool(), NoProxy: true}
}

func emuTelemetry(t *testing.T, h *emulator.Hub, dev string) []emulator.Message {
	t.Helper()
	all, err := h.ReadTelemetry(emulator.Earliest, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out []emulator.Message
	for _, m := range all {
		if m.DeviceID == dev {
			out = append(out, m)
		}
	}
	return out
}

func TestEmulatorEveryFeature(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := emulatortest.New(t)
			cs := emulatortest.Device(t, h, "dev1")
			ctx := testCtx(t, 30*time.Second)
			if _, err := h.UpdateDesired(ctx, "dev1", "", []byte(`{"fw":"1.0"}`)); err != nil {
				t.Fatal(err)
			}
			c2d := make(chan *C2DMessage, 4)
			updates := make(chan DesiredUpdate, 8)
			cfg := emuConfig(h, cs, tr)
			cfg.OnC2D = func(ctx context.Context, m *C2DMessage) {
				c2d <- &C2DMessage{Payload: append([]byte(nil), m.Payload...), Properties: m.Properties}
			}
			cfg.OnDesired = func(u DesiredUpdate) { updates <- u }
			cfg.Methods = map[string]MethodHandler{
				"reboot": func(ctx context.Context, req MethodRequest) (int, []byte, error) {
					return 200, []byte(`{"rebooting":true}`), nil
				},
			}
			cfg.ModelID = "dtmi:com:example:Thermostat;1"
			c := mustClient(t, cfg)
			if err := c.Connect(ctx); err != nil {
				t.Fatalf("Connect: %v", err)
			}

			// Telemetry with system and application properties.
			m := &Message{Payload: []byte(`{"t":21.5}`)}
			m.Properties.MessageID = "m-1"
			m.Properties.ContentType = "application/json"
			m.Properties.ContentEncoding = "utf-8"
			m.Properties.Add("alert", "high temp")
			if err := c.Send(ctx, m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			waitFor(t, 5*time.Second, "telemetry", func() bool { return len(emuTelemetry(t, h, "dev1")) == 1 })
			got := emuTelemetry(t, h, "dev1")[0]
			if string(got.Body) != `{"t":21.5}` || got.SystemProperties["message-id"] != "m-1" ||
				got.SystemProperties["content-type"] != "application/json" || got.Properties["alert"] != "high temp" {
				t.Errorf("telemetry %+v", got)
			}

			// Twin: the first sync, a report, a notification.
			if u := nextUpdate(t, updates); !u.Full || u.Patch["fw"] != "1.0" {
				t.Fatalf("first update %+v", u)
			}
			if _, err := c.ReportProperties(ctx, map[string]any{"temp": 21}); err != nil {
				t.Fatalf("ReportProperties: %v", err)
			}
			tw, err := h.GetTwin("dev1", "")
			if err != nil || fmt.Sprint(tw.Properties.Reported["temp"]) != "21" {
				t.Fatalf("service twin %+v, %v", tw.Properties.Reported, err)
			}
			if _, err := h.UpdateDesired(ctx, "dev1", "", []byte(`{"fw":"1.1"}`)); err != nil {
				t.Fatal(err)
			}
			if u := nextUpdate(t, updates); u.Resync || u.Patch["fw"] != "1.1" {
				t.Fatalf("notification %+v", u)
			}
			if tw, err := c.GetTwin(ctx); err != nil || tw.Desired.Props["fw"] != "1.1" {
				t.Fatalf("GetTwin %+v, %v", tw, err)
			}

			// C2D.
			if _, err := h.SendC2D(ctx, "dev1", emulator.C2DMessage{MessageID: "c-1", Body: []byte("hello"), Properties: map[string]string{"k": "v"}}); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-c2d:
				if string(m.Payload) != "hello" || m.Properties.MessageID != "c-1" {
					t.Fatalf("C2D %+v", m)
				}
				if v, _ := m.Properties.Lookup("k"); v != "v" {
					t.Fatalf("C2D properties %+v", m.Properties)
				}
			case <-ctx.Done():
				t.Fatal("no C2D")
			}
			waitFor(t, 5*time.Second, "C2D completed", func() bool { return len(h.PendingC2D("dev1")) == 0 })

			// Direct methods.
			res, err := h.InvokeMethod(ctx, emulator.MethodCall{DeviceID: "dev1", Name: "reboot", ResponseTimeout: 5 * time.Second})
			if err != nil || res.Status != 200 || string(res.Payload) != `{"rebooting":true}` {
				t.Fatalf("reboot: %+v, %v", res, err)
			}
			res, err = h.InvokeMethod(ctx, emulator.MethodCall{DeviceID: "dev1", Name: "unknown", ResponseTimeout: 5 * time.Second})
			if err != nil || res.Status != 501 {
				t.Fatalf("unknown method: %+v, %v", res, err)
			}
		})
	}
}

func TestEmulatorModule(t *testing.T) {
	h := emulatortest.New(t)
	cs := emulatortest.Module(t, h, "dev1", "mod1")
	cfg := emuConfig(h, cs, TransportMQTT)
	cfg.Methods = map[string]MethodHandler{"ping": func(ctx context.Context, req MethodRequest) (int, []byte, error) { return 200, []byte(`"pong"`), nil }}
	c := mustClient(t, cfg)
	ctx := testCtx(t, 20*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, &Message{Payload: []byte("from module")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "module telemetry", func() bool {
		ms := emuTelemetry(t, h, "dev1")
		return len(ms) == 1 && ms[0].ModuleID == "mod1"
	})
	if _, err := c.ReportProperties(ctx, map[string]any{"m": 1}); err != nil {
		t.Fatal(err)
	}
	res, err := h.InvokeMethod(ctx, emulator.MethodCall{DeviceID: "dev1", ModuleID: "mod1", Name: "ping", ResponseTimeout: 5 * time.Second})
	if err != nil || string(res.Payload) != `"pong"` {
		t.Fatalf("module method: %+v, %v", res, err)
	}
}

// TestEmulatorRenewalMidStream: a 3 s token renewed again and again while
// streaming; every message arrives.
func TestEmulatorRenewalMidStream(t *testing.T) {
	h := emulatortest.New(t)
	cs := emulatortest.Device(t, h, "dev1")
	cfg := emuConfig(h, cs, TransportMQTTWebSocket)
	cfg.TokenTTL = 3 * time.Second
	cfg.ReconnectMax = 200 * time.Millisecond
	var mu sync.Mutex
	renewals := 0
	cfg.OnStateChange = func(from, to State, err error) {
		if errors.Is(err, errRenewal) {
			mu.Lock()
			renewals++
			mu.Unlock()
		}
	}
	c := mustClient(t, cfg)
	ctx := testCtx(t, 60*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	if errs := stream(ctx, c, n, 7*time.Millisecond); len(errs) > 0 {
		t.Fatalf("%d sends failed, first: %v", len(errs), errs[0])
	}
	seen := map[string]int{}
	waitFor(t, 5*time.Second, "all telemetry", func() bool {
		clear(seen)
		for _, m := range emuTelemetry(t, h, "dev1") {
			seen[string(m.Body)]++
		}
		return len(seen) == n
	})
	dups := 0
	for i := range n {
		dups += seen[strconv.Itoa(i)] - 1
	}
	mu.Lock()
	t.Logf("%d renewals, %d delivered, %d duplicates", renewals, len(seen), dups)
	if renewals < 1 {
		t.Errorf("no renewal during the stream")
	}
	mu.Unlock()
}

// TestEmulatorRestartMidStream: the emulator is closed and started again
// on the same port and data directory while the device streams; no
// accepted message is lost.
func TestEmulatorRestartMidStream(t *testing.T) {
	dir := t.TempDir()
	h := emulatortest.Start(t, emulator.Config{DataDir: dir})
	cs := emulatortest.Device(t, h, "dev1")
	addr := h.MQTTAddr().String()
	cfg := emuConfig(h, cs, TransportMQTT)
	cfg.ReconnectMax = 300 * time.Millisecond
	c := mustClient(t, cfg)
	ctx := testCtx(t, 60*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 500
	done := make(chan []error)
	go func() { done <- stream(ctx, c, n, 3*time.Millisecond) }()
	time.Sleep(300 * time.Millisecond)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	h2 := emulatortest.Start(t, emulator.Config{DataDir: dir, MQTTAddr: addr})
	if errs := <-done; len(errs) > 0 {
		t.Fatalf("%d sends failed, first: %v", len(errs), errs[0])
	}
	seen := map[string]int{}
	for _, m := range emuTelemetry(t, h2, "dev1") {
		seen[string(m.Body)]++
	}
	if len(seen) != n {
		t.Fatalf("%d of %d messages in the restarted emulator's log", len(seen), n)
	}
}

func TestEmulatorWrongKeyAndSecondConnection(t *testing.T) {
	h := emulatortest.New(t)
	cs := emulatortest.Device(t, h, "dev1")
	ctx := testCtx(t, 30*time.Second)
	bad := "HostName=" + h.HostName() + ";DeviceId=dev1;SharedAccessKey=" + b64([]byte("wrong key"))
	cb, err := New(emuConfig(h, bad, TransportMQTT))
	if err != nil {
		t.Fatal(err)
	}
	if err := cb.Connect(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong key: %v, want ErrUnauthorized", err)
	}
	cb.Close(ctx)

	cfg := emuConfig(h, cs, TransportMQTT)
	cfg.ReconnectMin, cfg.ReconnectMax = 50*time.Millisecond, 200*time.Millisecond
	a, b := mustClient(t, cfg), mustClient(t, cfg)
	if err := a.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-b.Done():
	case <-ctx.Done():
		t.Fatal("identity war did not stop")
	}
	if !errors.Is(a.Err(), ErrKicked) && !errors.Is(b.Err(), ErrKicked) {
		t.Fatalf("errors %v / %v, want ErrKicked", a.Err(), b.Err())
	}
}

// TestEmulatorTwinThrottled: with the emulator throttling twin operations,
// reported patches are retried until they succeed.
func TestEmulatorTwinThrottled(t *testing.T) {
	h := emulatortest.Start(t, emulator.Config{TwinOpsPerSecond: 2})
	cs := emulatortest.Device(t, h, "dev1")
	cfg := emuConfig(h, cs, TransportMQTT)
	retries := &countingHandler{match: "device: reported patch retried"}
	cfg.Logger = slog.New(retries)
	c := mustClient(t, cfg)
	ctx := testCtx(t, 60*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := c.ReportProperties(ctx, map[string]any{"i": i}); err != nil {
			t.Fatalf("patch %d: %v", i, err)
		}
	}
	tw, err := h.GetTwin("dev1", "")
	if err != nil || fmt.Sprint(tw.Properties.Reported["i"]) != "5" {
		t.Fatalf("reported %v, %v", tw.Properties.Reported, err)
	}
	if retries.n.Load() == 0 {
		t.Fatal("no patch was throttled and retried")
	}
	t.Logf("%d retries after 429", retries.n.Load())
}

// countingHandler counts log records with a given message.
type countingHandler struct {
	match string
	n     atomic.Int32
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.match {
		h.n.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// TestEmulatorC2DQueuedWhileOffline: C2D sent while the device is offline
// reaches the handler set before Connect when the device comes back.
func TestEmulatorC2DQueuedWhileOffline(t *testing.T) {
	h := emulatortest.New(t)
	cs := emulatortest.Device(t, h, "dev1")
	got := make(chan string, 4)
	cfg := emuConfig(h, cs, TransportMQTT)
	cfg.OnC2D = func(ctx context.Context, m *C2DMessage) { got <- string(m.Payload) }
	ctx := testCtx(t, 20*time.Second)
	c1 := mustClient(t, cfg)
	if err := c1.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"offline-1", "offline-2"} {
		if _, err := h.SendC2D(ctx, "dev1", emulator.C2DMessage{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	c2 := mustClient(t, cfg)
	if err := c2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"offline-1", "offline-2"} {
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("got %q, want %q", g, want)
			}
		case <-ctx.Done():
			t.Fatalf("%q not delivered", want)
		}
	}
	waitFor(t, 5*time.Second, "queue drained", func() bool { return len(h.PendingC2D("dev1")) == 0 })
}

// TestEmulatorX509: a self-signed-thumbprint device connects with its
// certificate (x509=true) over TLS and WSS; a foreign certificate is
// refused with ErrUnauthorized.
func TestEmulatorX509(t *testing.T) {
	h := emulatortest.New(t)
	ca := testcert.New(t, testcert.Options{})
	cert := ca.MustClient(t, "xdev")
	_, sha256hex := emulator.Thumbprints(cert.Leaf.Raw)
	ctx := testCtx(t, 20*time.Second)
	if _, err := h.CreateDevice(ctx, emulator.Device{DeviceID: "xdev", Authentication: emulator.Authentication{
		Type: emulator.AuthSelfSigned, X509Thumbprint: emulator.X509Thumbprint{PrimaryThumbprint: sha256hex},
	}}); err != nil {
		t.Fatal(err)
	}
	cs := "HostName=" + h.HostName() + ";DeviceId=xdev;x509=true"
	for _, tr := range transports {
		cfg := emuConfig(h, cs, tr)
		cfg.Certificate = &cert.TLS
		c := mustClient(t, cfg)
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("%s: %v", tr, err)
		}
		if err := c.Send(ctx, &Message{Payload: []byte("x509 " + tr)}); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	}
	other := ca.MustClient(t, "xdev")
	cfg := emuConfig(h, cs, TransportMQTT)
	cfg.Certificate = &other.TLS
	c := mustClient(t, cfg)
	if err := c.Connect(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("foreign certificate: %v, want ErrUnauthorized", err)
	}
}
