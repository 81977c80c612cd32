package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/iothub/device"
	"github.com/hubwire/hubwire/iothub/emulator"
)

// Names the demo registers.
const (
	demoDeviceID = "demo-device"
	demoModuleID = "demo-module"
)

// demoStepTimeout bounds every step of the demo.
const demoStepTimeout = 15 * time.Second

func demoCommand() *command {
	var (
		transport string
		verbose   bool
		keep      bool
	)
	return &command{
		name:    "demo",
		summary: "run a device through every feature against an in-process emulator, over TLS and WSS",
		usage:   "[flags]",
		long: "Starts an IoT Hub emulator in this process on free loopback ports with a fresh temporary data " +
			"directory, registers a device and a module, and runs the device (package iothub/device) through " +
			"telemetry with properties read back from the hub's telemetry stream, a twin GET and a reported " +
			"patch, a desired-property update, a direct method and a cloud-to-device message, and the module " +
			"through telemetry — over MQTT/TLS, then again over MQTT/WebSocket. It prints each step with the " +
			"time it took and a summary line, and exits 0; when a step fails it exits 1 naming the step.\n\n" +
			"Needs nothing but this binary: no cloud account, no network beyond loopback.",
		example: "go run ./cmd/hubwire demo\nhubwire demo --transport mqtt-ws --verbose",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&transport, "transport", "both", "`transport` to run: mqtt (TLS), mqtt-ws (WebSocket) or both")
			fs.BoolVar(&verbose, "verbose", false, "write the emulator's and the device client's logs to the standard error")
			fs.BoolVar(&keep, "keep", false, "keep the temporary data directory (its path is printed)")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			var transports []string
			switch transport {
			case "both":
				transports = []string{device.TransportMQTT, device.TransportMQTTWebSocket}
			case device.TransportMQTT, device.TransportMQTTWebSocket:
				transports = []string{transport}
			default:
				return usagef("--transport %q: want mqtt, mqtt-ws or both", transport)
			}
			var log *slog.Logger
			if verbose {
				log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			}
			return runDemo(ctx, a.stdout, transports, log, keep)
		},
	}
}

// demo is one run: the hub, the identities and the transcript.
type demo struct {
	w         io.Writer
	hub       *emulator.Hub
	log       *slog.Logger
	deviceCS  string
	moduleCS  string
	transport string
	passed    int
	msgSeq    int
}

// stepError names the step that failed.
type stepError struct {
	transport, step string
	err             error
}

func (e *stepError) Error() string {
	if e.transport == "" {
		return fmt.Sprintf("step %q failed: %v", e.step, e.err)
	}
	return fmt.Sprintf("step %q over %s failed: %v", e.step, e.transport, e.err)
}

func (e *stepError) Unwrap() error { return e.err }

// step runs one step with its own deadline and prints its line.
func (d *demo) step(ctx context.Context, name string, f func(ctx context.Context) (string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	t0 := time.Now()
	detail, err := f(ctx)
	took := time.Since(t0)
	if err != nil {
		fmt.Fprintf(d.w, "  FAIL  %-16s %9s  %v\n", name, ms(took), err)
		return &stepError{transport: d.transport, step: name, err: err}
	}
	d.passed++
	fmt.Fprintf(d.w, "  ok    %-16s %9s  %s\n", name, ms(took), detail)
	return nil
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func runDemo(ctx context.Context, w io.Writer, transports []string, log *slog.Logger, keep bool) (err error) {
	t0 := time.Now()
	d := &demo{w: w, log: log}
	dir, err := os.MkdirTemp("", "hubwire-demo-*")
	if err != nil {
		return fmt.Errorf("temporary data directory: %w", err)
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	fmt.Fprintf(w, "hubwire demo: an IoT Hub emulator in this process, a device and a module, every feature over %s\n\n", strings.Join(transportNames(transports), ", then "))

	defer func() {
		if err != nil {
			fmt.Fprintf(w, "\nFAIL  %d steps passed, then: %v\n", d.passed, err)
		}
	}()

	err = d.step(ctx, "start hub", func(ctx context.Context) (string, error) {
		hub, err := emulator.Start(ctx, emulator.Config{
			MQTTAddr:  "127.0.0.1:0",
			HTTPSAddr: "127.0.0.1:0",
			DataDir:   dir,
			Logger:    log,
		})
		if err != nil {
			return "", err
		}
		d.hub = hub
		kept := "removed at the end"
		if keep {
			kept = "kept"
		}
		return fmt.Sprintf("%q: MQTT/TLS %s, WSS and REST %s, data in %s (%s)", hub.HostName(), hub.MQTTAddr(), hub.HTTPSAddr(), dir, kept), nil
	})
	if err != nil {
		return err
	}
	defer d.hub.Close()

	err = d.step(ctx, "register", func(ctx context.Context) (string, error) {
		if _, err := d.hub.CreateDevice(ctx, emulator.Device{DeviceID: demoDeviceID}); err != nil {
			return "", err
		}
		if _, err := d.hub.CreateModule(ctx, emulator.Module{DeviceID: demoDeviceID, ModuleID: demoModuleID}); err != nil {
			return "", err
		}
		var err error
		if d.deviceCS, err = d.hub.DeviceConnectionString(demoDeviceID); err != nil {
			return "", err
		}
		if d.moduleCS, err = d.hub.ModuleConnectionString(demoDeviceID, demoModuleID); err != nil {
			return "", err
		}
		return fmt.Sprintf("device %s and module %s/%s, SAS keys generated", demoDeviceID, demoDeviceID, demoModuleID), nil
	})
	if err != nil {
		return err
	}

	for _, tr := range transports {
		if err := d.runTransport(ctx, tr); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nPASS  %d steps over %s in %s\n", d.passed, strings.Join(transportNames(transports), " and "), ms(time.Since(t0)))
	return nil
}

func transportNames(ts []string) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = map[string]string{device.TransportMQTT: "TLS", device.TransportMQTTWebSocket: "WSS"}[t]
	}
	return out
}

// c2dReceived is what the device's C2D handler saw, copied out of it.
type c2dReceived struct {
	payload []byte
	props   iothub.Properties
}

func (d *demo) runTransport(ctx context.Context, tr string) error {
	d.transport = tr
	addr := d.hub.MQTTAddr().String()
	if tr == device.TransportMQTTWebSocket {
		addr = d.hub.HTTPSAddr().String()
		fmt.Fprintf(d.w, "\nMQTT over WebSocket (%s)\n", d.hub.WebSocketURL())
	} else {
		fmt.Fprintf(d.w, "\nMQTT over TLS (%s)\n", addr)
	}

	c2d := make(chan c2dReceived, 4)
	desired := make(chan device.DesiredUpdate, 16)
	methodPayload := make(chan []byte, 1)
	cfg := device.Config{
		ConnectionString: d.deviceCS,
		Transport:        tr,
		Address:          addr,
		RootCAs:          d.hub.CertPool(),
		Logger:           d.log,
		OnC2D: func(ctx context.Context, m *device.C2DMessage) {
			r := c2dReceived{payload: bytes.Clone(m.Payload), props: m.Properties}
			r.props.App = append([]iothub.Property(nil), m.Properties.App...)
			select {
			case c2d <- r:
			default:
			}
		},
		OnDesired: func(u device.DesiredUpdate) {
			select {
			case desired <- u:
			default:
			}
		},
		Methods: map[string]device.MethodHandler{
			"reboot": func(ctx context.Context, req iothub.MethodRequest) (int, []byte, error) {
				select {
				case methodPayload <- bytes.Clone(req.Payload):
				default:
				}
				return 200, []byte(`{"rebooting":true}`), nil
			},
		},
	}
	var dev *device.Client
	defer func() {
		if dev != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			dev.Close(cctx)
		}
	}()

	steps := []struct {
		name string
		f    func(ctx context.Context) (string, error)
	}{
		{"connect", func(ctx context.Context) (string, error) {
			c, err := device.New(cfg)
			if err != nil {
				return "", err
			}
			if err := c.Connect(ctx); err != nil {
				return "", err
			}
			dev = c
			return fmt.Sprintf("device %s, SAS token signed with its key, subscribed to twin, methods and C2D", demoDeviceID), nil
		}},
		{"telemetry", func(ctx context.Context) (string, error) {
			return d.telemetry(ctx, dev, "")
		}},
		{"twin get", func(ctx context.Context) (string, error) {
			twin, err := dev.GetTwin(ctx)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("desired $version %d, reported $version %d", twin.Desired.Version, twin.Reported.Version), nil
		}},
		{"twin report", func(ctx context.Context) (string, error) {
			patch := map[string]any{"firmware": "1.4.2", "transport": tr}
			v, err := dev.ReportProperties(ctx, patch)
			if err != nil {
				return "", err
			}
			twin, err := d.hub.GetTwin(demoDeviceID, "")
			if err != nil {
				return "", err
			}
			if got := twin.Properties.Reported["transport"]; got != tr {
				return "", fmt.Errorf("the hub's twin has reported transport %v, want %q", got, tr)
			}
			return fmt.Sprintf(`{"firmware":"1.4.2","transport":%q} -> reported $version %d, seen in the hub's twin`, tr, v), nil
		}},
		{"desired update", func(ctx context.Context) (string, error) {
			interval := 5 + len(tr)
			v, err := d.hub.UpdateDesired(ctx, demoDeviceID, "", []byte(fmt.Sprintf(`{"telemetryInterval":%d}`, interval)))
			if err != nil {
				return "", err
			}
			for {
				select {
				case u := <-desired:
					if u.Version < v {
						continue
					}
					if got := fmt.Sprint(u.Patch["telemetryInterval"]); !u.Full && got != fmt.Sprint(interval) {
						return "", fmt.Errorf("the device got $version %d with telemetryInterval %s, want %d", u.Version, got, interval)
					}
					return fmt.Sprintf(`{"telemetryInterval":%d} as desired $version %d, delivered to the device`, interval, u.Version), nil
				case <-ctx.Done():
					return "", fmt.Errorf("no desired update $version %d at the device: %w", v, ctx.Err())
				}
			}
		}},
		{"direct method", func(ctx context.Context) (string, error) {
			res, err := d.hub.InvokeMethod(ctx, emulator.MethodCall{
				DeviceID:        demoDeviceID,
				Name:            "reboot",
				Payload:         []byte(`{"delaySeconds":0}`),
				ResponseTimeout: 10 * time.Second,
			})
			if err != nil {
				return "", err
			}
			var got []byte
			select {
			case got = <-methodPayload:
			default:
				return "", errors.New("the device's handler did not run")
			}
			if res.Status != 200 || !jsonEqual(res.Payload, []byte(`{"rebooting":true}`)) || !jsonEqual(got, []byte(`{"delaySeconds":0}`)) {
				return "", fmt.Errorf("status %d payload %s (the device saw %s)", res.Status, res.Payload, got)
			}
			return fmt.Sprintf(`reboot {"delaySeconds":0} -> %d %s`, res.Status, res.Payload), nil
		}},
		{"C2D message", func(ctx context.Context) (string, error) {
			body := "hello, " + demoDeviceID
			mid, err := d.hub.SendC2D(ctx, demoDeviceID, emulator.C2DMessage{
				Body:          []byte(body),
				CorrelationID: "demo-" + tr,
				Properties:    map[string]string{"priority": "high"},
			})
			if err != nil {
				return "", err
			}
			select {
			case r := <-c2d:
				if string(r.payload) != body || r.props.MessageID != mid || r.props.CorrelationID != "demo-"+tr || appProp(r.props, "priority") != "high" {
					return "", fmt.Errorf("the device got %q with message id %q, correlation id %q, priority %q", r.payload, r.props.MessageID, r.props.CorrelationID, appProp(r.props, "priority"))
				}
				return fmt.Sprintf("%q with priority=high and its message id, received and acknowledged", body), nil
			case <-ctx.Done():
				return "", fmt.Errorf("message %s not delivered: %w", mid, ctx.Err())
			}
		}},
		{"module", func(ctx context.Context) (string, error) {
			m, err := device.New(device.Config{ConnectionString: d.moduleCS, Transport: tr, Address: addr, RootCAs: d.hub.CertPool(), Logger: d.log})
			if err != nil {
				return "", err
			}
			defer closeDevice(m)
			if err := m.Connect(ctx); err != nil {
				return "", err
			}
			detail, err := d.telemetry(ctx, m, demoModuleID)
			if err != nil {
				return "", err
			}
			return demoModuleID + " connected; " + detail, nil
		}},
	}
	for _, s := range steps {
		if err := d.step(ctx, s.name, s.f); err != nil {
			return err
		}
	}
	return nil
}

// telemetry sends one message with properties from c and reads it back
// from the hub's telemetry log.
func (d *demo) telemetry(ctx context.Context, c *device.Client, moduleID string) (string, error) {
	d.msgSeq++
	mid := fmt.Sprintf("demo-%s-%d", d.transport, d.msgSeq)
	body := `{"temperature":21.5,"humidity":43}`
	m := &device.Message{
		Payload: []byte(body),
		Properties: iothub.Properties{
			MessageID:       mid,
			ContentType:     "application/json",
			ContentEncoding: "utf-8",
		},
	}
	m.Properties.Add("alert", "false")
	m.Properties.Add("site", "lab 1")
	_, next := d.hub.TelemetryRange()
	if err := c.Send(ctx, m); err != nil {
		return "", err
	}
	for msg, err := range d.hub.Telemetry(ctx, emulator.FromSequence(next)) {
		if err != nil {
			return "", fmt.Errorf("message %s acknowledged but not read back: %w", mid, err)
		}
		if msg.SystemProperties["message-id"] != mid {
			continue
		}
		switch {
		case string(msg.Body) != body:
			return "", fmt.Errorf("read back body %q", msg.Body)
		case msg.Properties["alert"] != "false" || msg.Properties["site"] != "lab 1":
			return "", fmt.Errorf("read back properties %v", msg.Properties)
		case msg.SystemProperties["content-type"] != "application/json":
			return "", fmt.Errorf("read back content type %q", msg.SystemProperties["content-type"])
		case msg.DeviceID != demoDeviceID || msg.ModuleID != moduleID:
			return "", fmt.Errorf("read back from %s/%s", msg.DeviceID, msg.ModuleID)
		}
		return fmt.Sprintf("%s alert=false site=%q, PUBACKed, read back from the telemetry stream as #%d", body, "lab 1", msg.SequenceNumber), nil
	}
	return "", fmt.Errorf("message %s not read back: %w", mid, ctx.Err())
}

func appProp(p iothub.Properties, key string) string {
	for _, kv := range p.App {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
