package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator"
)

// hubChildEnv makes the test binary serve an emulator instead of running
// the tests: a hub in a process of its own that a test can SIGKILL. Its
// value is the hub's data directory.
const hubChildEnv = "HUBWIRE_INTEROP_HUB_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(hubChildEnv); dir != "" {
		os.Exit(runHubChild(dir, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// childCmd is one back-end operation the test asks of a child hub.
type childCmd struct {
	Op      string          `json:"op"`
	ID      string          `json:"id"`
	MID     string          `json:"mid,omitempty"`
	Body    string          `json:"body,omitempty"`
	Patch   json.RawMessage `json:"patch,omitempty"`
	Name    string          `json:"name,omitempty"`
	Connect float64         `json:"connectSeconds,omitempty"`
}

// runHubChild starts a durable hub on dir at the SDK's fixed ports, prints
// {"event":"ready"} and answers each JSON command on stdin with one
// {"event":"reply"} line (or {"event":"error"}). The hub logs to stderr.
func runHubChild(dir string, in io.Reader, out io.Writer) int {
	enc := json.NewEncoder(out)
	emit := func(fields map[string]any) { _ = enc.Encode(fields) }
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	h, err := emulator.Start(ctx, emulator.Config{
		DataDir:   dir,
		MQTTAddr:  "127.0.0.1:8883",
		HTTPSAddr: "127.0.0.1:443",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	cancel()
	if err != nil {
		emit(map[string]any{"event": "error", "message": err.Error()})
		return 1
	}
	defer h.Close()
	emit(map[string]any{"event": "ready", "ca": h.CAFile()})
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var c childCmd
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			emit(map[string]any{"event": "error", "message": "bad command: " + err.Error()})
			continue
		}
		reply, err := childOp(h, c)
		if err != nil {
			emit(map[string]any{"event": "error", "message": c.Op + ": " + err.Error()})
			continue
		}
		reply["event"] = "reply"
		reply["op"] = c.Op
		emit(reply)
	}
	return 0
}

func childOp(h *emulator.Hub, c childCmd) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout+time.Duration(c.Connect*float64(time.Second)))
	defer cancel()
	switch c.Op {
	case "create":
		if _, err := h.CreateDevice(ctx, emulator.Device{DeviceID: c.ID}); err != nil {
			return nil, err
		}
		cs, err := h.DeviceConnectionString(c.ID)
		return map[string]any{"cs": cs}, err
	case "c2d":
		_, err := h.SendC2D(ctx, c.ID, emulator.C2DMessage{MessageID: c.MID, Body: []byte(c.Body), Ack: emulator.AckFull})
		return map[string]any{}, err
	case "desired":
		v, err := h.UpdateDesired(ctx, c.ID, "", c.Patch)
		return map[string]any{"version": v}, err
	case "twin":
		tw, err := h.GetTwin(c.ID, "")
		if err != nil {
			return nil, err
		}
		return map[string]any{"desired": tw.Properties.Desired, "reported": tw.Properties.Reported}, nil
	case "telemetry":
		msgs, err := h.ReadTelemetry(emulator.Earliest, 1000)
		var mids []string
		for _, m := range msgs {
			if m.DeviceID == c.ID {
				mids = append(mids, m.SystemProperties["message-id"])
			}
		}
		return map[string]any{"mids": mids}, err
	case "method":
		res, err := h.InvokeMethod(ctx, emulator.MethodCall{DeviceID: c.ID, Name: c.Name, Payload: c.Patch,
			ResponseTimeout: 10 * time.Second, ConnectTimeout: time.Duration(c.Connect * float64(time.Second))})
		return map[string]any{"status": res.Status, "payload": string(res.Payload)}, err
	case "pending":
		return map[string]any{"n": len(h.PendingC2D(c.ID))}, nil
	}
	return nil, fmt.Errorf("unknown op %q", c.Op)
}

// hubChild is a hub served by a child process of the test binary.
type hubChild struct {
	*Proc
	ca string
}

// startHubChild starts a child hub on dir (fixed ports; hold the lock).
func startHubChild(t *testing.T, dir string) *hubChild {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := StartProc(t, "hub", []string{exe, "-test.run=^$"}, ProcOptions{Dir: dir, Timeout: 2 * time.Minute, Env: map[string]string{hubChildEnv: dir}})
	ev := p.Expect("ready", 30*time.Second)
	return &hubChild{Proc: p, ca: ev.Str("ca")}
}

// do runs one command on the child hub and returns its reply.
func (c *hubChild) do(t *testing.T, cmd childCmd, within time.Duration) Event {
	t.Helper()
	c.Send(cmd)
	ev := c.Expect("reply", within)
	if ev.Str("op") != cmd.Op {
		t.Fatalf("child hub answered %s to %s", ev.Raw, cmd.Op)
	}
	return ev
}

// TestNodeDeviceHubRestart: the hub process is SIGKILLed under a connected
// Node SDK device and started again on the same data dir. The SDK
// reconnects by itself and works again (method, C2D); acknowledged
// telemetry, reported properties with their version, a C2D message queued
// for an offline device and a desired update made before the kill all
// survive, and that offline device (another Node SDK client) gets them.
func TestNodeDeviceHubRestart(t *testing.T) {
	nodeBinary(t)
	LockFixedPorts(t)
	dir := t.TempDir()
	hub := startHubChild(t, dir)
	const live, away = "node-survivor", "node-away"
	liveCS := hub.do(t, childCmd{Op: "create", ID: live}, apiTimeout).Str("cs")
	awayCS := hub.do(t, childCmd{Op: "create", ID: away}, apiTimeout).Str("cs")
	env := map[string]string{"DEVICE_CS": liveCS, "TRANSPORT": "Mqtt", "NODE_EXTRA_CA_CERTS": hub.ca}

	d := StartNode(t, "device/device_flow.js", ProcOptions{Env: env, Timeout: 90 * time.Second})
	d.Expect("ready", 20*time.Second)
	d.Send(map[string]any{"cmd": "telemetry", "messageId": "before-kill", "body": map[string]any{"n": 1}})
	d.Expect("sent", 10*time.Second) // PUBACKed: must survive
	d.Send(map[string]any{"cmd": "report", "patch": map[string]any{"phase": "before"}})
	d.Expect("reported", 10*time.Second)
	var before struct{ Reported map[string]any }
	if err := hub.do(t, childCmd{Op: "twin", ID: live}, apiTimeout).Decode(&before); err != nil {
		t.Fatal(err)
	}
	hub.do(t, childCmd{Op: "c2d", ID: away, MID: "queued-before-kill", Body: "kept"}, apiTimeout)
	dv := hub.do(t, childCmd{Op: "desired", ID: away, Patch: json.RawMessage(`{"mode":"kept"}`)}, apiTimeout).Num("version")

	hub.Kill()
	hub = startHubChild(t, dir)

	// The SDK reconnects on its own; the method call waits for it.
	r := hub.do(t, childCmd{Op: "method", ID: live, Name: "echo", Patch: json.RawMessage(`{"after":"restart"}`), Connect: 60}, 80*time.Second)
	if r.Num("status") != 200 || !strings.Contains(r.Str("payload"), `"after":"restart"`) {
		t.Errorf("method after the restart: %s", r.Raw)
	}
	d.Expect("method", 5*time.Second)
	hub.do(t, childCmd{Op: "c2d", ID: live, MID: "after-restart", Body: "new"}, apiTimeout)
	if ev := d.Expect("c2d", 15*time.Second); ev.Str("messageId") != "after-restart" {
		t.Errorf("C2D after the restart: %s", ev.Raw)
	}

	var tele struct{ Mids []string }
	if err := hub.do(t, childCmd{Op: "telemetry", ID: live}, apiTimeout).Decode(&tele); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(tele.Mids, ","), "before-kill") {
		t.Errorf("acknowledged telemetry lost across the SIGKILL: read back %v", tele.Mids)
	}
	var after struct{ Reported map[string]any }
	if err := hub.do(t, childCmd{Op: "twin", ID: live}, apiTimeout).Decode(&after); err != nil {
		t.Fatal(err)
	}
	if after.Reported["phase"] != "before" || after.Reported["$version"] != before.Reported["$version"] {
		t.Errorf("reported across the restart: %v, before the kill %v", after.Reported, before.Reported)
	}

	// The offline device comes: the queued C2D and the desired update wait for it.
	a := StartNode(t, "device/device_flow.js", ProcOptions{Timeout: 60 * time.Second, Env: map[string]string{
		"DEVICE_CS": awayCS, "TRANSPORT": "MqttWs", "HUB_CA": hub.ca}})
	if ev := a.Expect("c2d", 20*time.Second); ev.Str("messageId") != "queued-before-kill" || ev.Str("body") != "kept" {
		t.Errorf("queued C2D after the restart: %s", ev.Raw)
	}
	var tw struct{ Desired map[string]any }
	if err := a.Expect("twin", 10*time.Second).Decode(&tw); err != nil {
		t.Fatal(err)
	}
	if tw.Desired["mode"] != "kept" || tw.Desired["$version"] != dv {
		t.Errorf("desired seen by the SDK after the restart: %v, want mode kept at $version %v", tw.Desired, dv)
	}
	for _, p := range []*Proc{a, d} {
		p.Send(map[string]string{"cmd": "close"})
		p.Expect("closed", 10*time.Second)
	}
}
