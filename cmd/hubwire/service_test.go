package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/iothub/device"
	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/sas"
)

func TestDeviceAddListShowDelete(t *testing.T) {
	h := newTestHub(t)
	inv := invocation{env: h.env(t, "")}

	r := inv.hubwire(t, "device", "add", "dev1")
	if r.code != 0 || r.stderr != "registered device dev1\n" {
		t.Fatalf("add: code %d, stderr %q", r.code, r.stderr)
	}
	cs, err := sas.ParseConnectionString(strings.TrimSpace(r.stdout))
	if err != nil || cs.DeviceID != "dev1" || cs.HostName != "localhost" {
		t.Fatalf("add printed %q, not dev1's connection string (%v)", r.stdout, err)
	}
	// The printed string connects.
	if s := (invocation{env: map[string]string{envDeviceConnStr: cs.FullString(), envCAFile: h.caFile, envMQTTAddress: h.MQTTAddr().String()}}).hubwire(t, "send", "hi"); s.code != 0 {
		t.Errorf("send with the printed connection string: %q", s.stderr)
	}

	r = inv.hubwire(t, "device", "add", "dev1", "--module", "m1")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "HostName=localhost;DeviceId=dev1;ModuleId=m1;SharedAccessKey=") {
		t.Fatalf("add module: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	thumb := strings.Repeat("AB", 20)
	r = inv.hubwire(t, "device", "add", "cam", "--x509-thumbprint", thumb, "--edge", "--json")
	if r.code != 0 {
		t.Fatalf("add x509: code %d, stderr %q", r.code, r.stderr)
	}
	if d, err := h.GetDevice("cam"); err != nil || d.Authentication.X509Thumbprint.PrimaryThumbprint != thumb || !d.Capabilities.IotEdge {
		t.Errorf("registered %+v (%v)", d, err)
	}
	wantOneLineError(t, inv.hubwire(t, "device", "add", "dev1"), 1, "409 DeviceAlreadyExists")
	wantOneLineError(t, inv.hubwire(t, "device", "add", "x", "--x509-ca", "--primary-key", testKey), 2, "SAS keys and X.509 exclude each other")

	r = inv.hubwire(t, "device", "list")
	if r.code != 0 {
		t.Fatalf("list: %q", r.stderr)
	}
	if !regexp.MustCompile(`(?m)^DEVICE +STATUS +CONNECTION +AUTH +C2D QUEUED +LAST ACTIVITY\ncam +enabled +Disconnected +selfSigned, edge +0 +-\ndev1 +enabled +Disconnected +sas +0 +\d{4}-\d\d-\d\dT\S+Z\n2 devices\n$`).MatchString(r.stdout) {
		t.Errorf("list printed:\n%s", r.stdout)
	}
	r = inv.hubwire(t, "device", "list", "--json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 {
		t.Fatalf("list --json: %q (%v)", r.stdout, err)
	}
	if strings.Contains(r.stdout, cs.SharedAccessKey()) {
		t.Errorf("list --json shows a key")
	}

	r = inv.hubwire(t, "device", "show", "dev1")
	var shown map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatalf("show: %q (%v)", r.stdout, err)
	}
	if shown["deviceId"] != "dev1" || strings.Contains(r.stdout, cs.SharedAccessKey()) || !strings.Contains(r.stdout, `"primaryKey": "<redacted>"`) {
		t.Errorf("show printed:\n%s", r.stdout)
	}
	if mods, _ := shown["modules"].([]any); len(mods) != 1 || mods[0] != "m1" {
		t.Errorf("show lists modules %v", shown["modules"])
	}
	if r := inv.hubwire(t, "device", "show", "dev1", "--show-keys"); !strings.Contains(r.stdout, cs.SharedAccessKey()) {
		t.Errorf("show --show-keys hides the key:\n%s", r.stdout)
	}
	if r := inv.hubwire(t, "device", "show", "dev1", "--print-connection-string"); strings.TrimSpace(r.stdout) != cs.FullString() {
		t.Errorf("show --print-connection-string printed %q", r.stdout)
	}
	if r := inv.hubwire(t, "device", "show", "dev1", "--module", "m1"); r.code != 0 || !strings.Contains(r.stdout, `"moduleId": "m1"`) {
		t.Errorf("show --module: %q %q", r.stdout, r.stderr)
	}

	if r := inv.hubwire(t, "device", "delete", "dev1", "--module", "m1"); r.stdout != "deleted module dev1/m1\n" {
		t.Errorf("delete module: %q %q", r.stdout, r.stderr)
	}
	if r := inv.hubwire(t, "device", "delete", "dev1"); r.stdout != "deleted device dev1\n" {
		t.Errorf("delete: %q %q", r.stdout, r.stderr)
	}
	wantOneLineError(t, inv.hubwire(t, "device", "show", "dev1"), 1, "hubwire device show: service: GetDevice: 404 DeviceNotFound")
	wantOneLineError(t, inv.hubwire(t, "device", "delete", "dev1"), 1, "404")
}

func TestServiceCommandErrors(t *testing.T) {
	h := newTestHub(t)
	env := h.env(t, "dev1")
	wrongKey := strings.Replace(h.ServiceConnectionString(), "SharedAccessKey=", "SharedAccessKey=AAAA", 1)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no-connection-string", map[string]string{}, []string{"device", "list"}, 2, "no connection string: give --connection-string or set $IOTHUB_CONNECTION_STRING"},
		{"device-string", map[string]string{envServiceConnStr: env[envDeviceConnStr]}, []string{"device", "list"}, 1, "$IOTHUB_CONNECTION_STRING: service: invalid configuration"},
		{"wrong-key", map[string]string{envServiceConnStr: wrongKey, envCAFile: h.caFile, envServiceEndpoint: env[envServiceEndpoint]}, []string{"device", "list"}, 1, "401"},
		{"no-ca", map[string]string{envServiceConnStr: h.ServiceConnectionString(), envServiceEndpoint: env[envServiceEndpoint]}, []string{"device", "list"}, 1, "certificate signed by unknown authority"},
		{"missing-id", env, []string{"device", "show"}, 2, "missing DEVICE-ID"},
		{"top", env, []string{"device", "list", "--top", "5000"}, 2, "--top 5000: want 0 to 1000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := invocation{env: c.env}.hubwire(t, c.args...)
			wantOneLineError(t, r, c.code, c.want)
			if key := h.ServiceConnectionString()[strings.Index(h.ServiceConnectionString(), "SharedAccessKey=")+16:]; strings.Contains(r.stderr, key) {
				t.Errorf("the error echoes the key: %q", r.stderr)
			}
		})
	}
}

func TestTwinShowAndSetDesired(t *testing.T) {
	h := newTestHub(t)
	inv := invocation{env: h.env(t, "dev1")}
	r := inv.hubwire(t, "twin", "set-desired", "dev1", `{"interval":5,"mode":"eco"}`, "--tags", `{"site":"lab"}`)
	if r.code != 0 || !regexp.MustCompile(`^desired \$version 2 \(twin etag \S+\)\n$`).MatchString(r.stdout) {
		t.Fatalf("set-desired: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = invocation{env: inv.env, stdin: `{"mode":null}`}.hubwire(t, "twin", "set-desired", "dev1", "-")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "desired $version 3 ") {
		t.Fatalf("set-desired from stdin: %q %q", r.stdout, r.stderr)
	}
	twin, err := h.GetTwin("dev1", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := twin.Properties.Desired["mode"]; ok || twin.Tags["site"] != "lab" || fmt.Sprint(twin.Properties.Desired["interval"]) != "5" {
		t.Errorf("hub twin: tags %v desired %v", twin.Tags, twin.Properties.Desired)
	}
	r = inv.hubwire(t, "twin", "show", "dev1")
	var shown struct {
		DeviceID   string         `json:"deviceId"`
		Tags       map[string]any `json:"tags"`
		Properties struct {
			Desired map[string]any `json:"desired"`
		} `json:"properties"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatalf("show: %q (%v)", r.stdout, err)
	}
	if shown.DeviceID != "dev1" || shown.Tags["site"] != "lab" || shown.Properties.Desired["$version"] != float64(3) {
		t.Errorf("show printed:\n%s", r.stdout)
	}
	wantOneLineError(t, inv.hubwire(t, "twin", "set-desired", "dev1", `{"a":1}`, "--etag", "stale"), 1, "412")
	wantOneLineError(t, inv.hubwire(t, "twin", "set-desired", "dev1", "nope"), 2, "PATCH is not a JSON object")
	wantOneLineError(t, inv.hubwire(t, "twin", "show", "ghost"), 1, "404")
}

func TestMethodInvoke(t *testing.T) {
	h := newTestHub(t)
	env := h.env(t, "dev1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := device.New(device.Config{
		ConnectionString: env[envDeviceConnStr], Address: h.MQTTAddr().String(), RootCAs: h.CertPool(),
		Methods: map[string]device.MethodHandler{
			"double": func(ctx context.Context, req iothub.MethodRequest) (int, []byte, error) {
				var n float64
				if err := json.Unmarshal(req.Payload, &n); err != nil {
					return 400, []byte(`{"error":"want a number"}`), nil
				}
				return 200, []byte(fmtJSON(n * 2)), nil
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	inv := invocation{env: env}
	r := inv.hubwire(t, "method", "invoke", "dev1", "double", "21", "--timeout", "5s")
	if r.code != 0 || !jsonEqual([]byte(r.stdout), []byte(`{"status":200,"payload":42}`)) {
		t.Errorf("invoke: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// The device's own error status is data, not a failure.
	r = inv.hubwire(t, "method", "invoke", "dev1", "double", `"x"`)
	if r.code != 0 || !jsonEqual([]byte(r.stdout), []byte(`{"status":400,"payload":{"error":"want a number"}}`)) {
		t.Errorf("invoke: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = inv.hubwire(t, "method", "invoke", "dev1", "missing")
	if r.code != 0 || !strings.Contains(r.stdout, `"status": 501`) {
		t.Errorf("unknown method: code %d, stdout %q", r.code, r.stdout)
	}
	emulatortestDevice(t, h, "offline")
	wantOneLineError(t, inv.hubwire(t, "method", "invoke", "offline", "double", "1"), 1, "404 DeviceNotOnline")
	wantOneLineError(t, inv.hubwire(t, "method", "invoke", "dev1", "double", "{bad"), 2, "PAYLOAD is not JSON")
	wantOneLineError(t, inv.hubwire(t, "method", "invoke", "dev1", "double", "--timeout", "1s"), 2, "--timeout 1s: want 5s to 300s")
}

func fmtJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func emulatortestDevice(t *testing.T, h *testHub, id string) {
	t.Helper()
	if _, err := h.CreateDevice(context.Background(), emulator.Device{DeviceID: id}); err != nil {
		t.Fatal(err)
	}
}

func TestC2DSend(t *testing.T) {
	h := newTestHub(t)
	inv := invocation{env: h.env(t, "dev1")}
	r := inv.hubwire(t, "c2d", "send", "dev1", "hello device", "--property", "priority=high", "--correlation-id", "c-1", "--ack", "full", "--ttl", "10m")
	m := regexp.MustCompile(`^queued message (\S+) for dev1 \(12 bytes\)\n$`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	q := h.PendingC2D("dev1")
	if len(q) != 1 {
		t.Fatalf("%d messages queued, want 1", len(q))
	}
	if b, _ := json.Marshal(q[0]); !strings.Contains(string(b), m[1]) || !strings.Contains(string(b), "hello device") && !strings.Contains(string(b), "aGVsbG8gZGV2aWNl") {
		t.Errorf("queued %s", b)
	}
	// The device gets it with its properties.
	got := make(chan c2dReceived, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := device.New(device.Config{ConnectionString: inv.env[envDeviceConnStr], Address: h.MQTTAddr().String(), RootCAs: h.CertPool(),
		OnC2D: func(ctx context.Context, m *device.C2DMessage) {
			got <- c2dReceived{payload: append([]byte(nil), m.Payload...), props: m.Properties}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	select {
	case rc := <-got:
		if string(rc.payload) != "hello device" || rc.props.MessageID != m[1] || rc.props.CorrelationID != "c-1" || rc.props.Ack != "full" || appProp(rc.props, "priority") != "high" {
			t.Errorf("device got %q %+v", rc.payload, rc.props)
		}
	case <-ctx.Done():
		t.Fatal("the device got no message")
	}
	wantOneLineError(t, inv.hubwire(t, "c2d", "send", "dev1", "x", "--ack", "maybe"), 2, `--ack "maybe"`)
	wantOneLineError(t, inv.hubwire(t, "c2d", "send", "dev1", "x", "--ttl", "3d"), 2, "--ttl 3d: want up to 48h")
	wantOneLineError(t, inv.hubwire(t, "c2d", "send", "ghost", "x"), 1, "404")
}

func TestMonitor(t *testing.T) {
	h := newTestHub(t)
	env := h.env(t, "dev1")
	// A message before the monitor starts: only --from earliest sees it.
	if r := (invocation{env: env}).hubwire(t, "send", "before"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	b := start(t, invocation{env: env}, "monitor", "--count", "2", "--json", "--system")
	// The stream starts at the latest message once it is open; keep
	// sending until the monitor has seen two.
	deadline := time.Now().Add(15 * time.Second)
	for n := 1; ; n++ {
		if r := (invocation{env: env}).hubwire(t, "send", `{"n":{seq}}`, "--property", "k=v"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		select {
		case code := <-b.done:
			b.done <- code
			if code != 0 {
				t.Fatalf("monitor exit code %d, stderr %s", code, b.stderr.String())
			}
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatalf("monitor printed only:\n%s", b.stdout.String())
			}
			continue
		}
		break
	}
	lines := strings.Split(strings.TrimSpace(b.stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), b.stdout.String())
	}
	for _, l := range lines {
		var e monitorEvent
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if e.Origin != "dev1" || !jsonEqual(e.Payload, []byte(`{"n":1}`)) || e.Properties["k"] != "v" || e.SystemProperties["iothub-connection-device-id"] != "dev1" || e.SequenceNumber < 1 {
			t.Errorf("event %s", l)
		}
	}
	r := invocation{env: env}.hubwire(t, "monitor", "--from", "earliest", "--no-follow", "--device", "dev1")
	if r.code != 0 || !regexp.MustCompile(`^#0 \d\d:\d\d:\d\d\.\d{3} dev1  before\n#1 \d\d:\d\d:\d\d\.\d{3} dev1  \{"n":1\}  \[k=v\]\n`).MatchString(r.stdout) {
		t.Errorf("monitor --from earliest: code %d, stdout:\n%s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if r := (invocation{env: env}).hubwire(t, "monitor", "--from", "1", "--no-follow", "--device", "nobody"); r.code != 0 || r.stdout != "" {
		t.Errorf("filtered monitor: code %d, stdout %q", r.code, r.stdout)
	}
	wantOneLineError(t, invocation{env: env}.hubwire(t, "monitor", "--from", "yesterday"), 2, `--from "yesterday"`)
}

func TestMonitorConnections(t *testing.T) {
	h := newTestHub(t)
	env := h.env(t, "dev1")
	b := start(t, invocation{env: env}, "monitor", "--connections", "--count", "2", "--device", "dev1")
	// Events are live only: keep connecting until the monitor has seen two.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if r := (invocation{env: env}).hubwire(t, "send", "x"); r.code != 0 {
			t.Fatal(r.stderr)
		}
		select {
		case code := <-b.done:
			b.done <- code
			if code != 0 {
				t.Fatalf("exit code %d, stderr %s", code, b.stderr.String())
			}
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatalf("monitor printed only:\n%s", b.stdout.String())
			}
			continue
		}
		break
	}
	if out := b.stdout.String(); !regexp.MustCompile(`^(#\d+ \d\d:\d\d:\d\d\.\d{3} dev1  (deviceConnected|deviceDisconnected( \(.+\))?)\n){2}$`).MatchString(out) {
		t.Errorf("stdout:\n%s", out)
	}
	if !strings.Contains(b.stderr.String(), "monitoring connections of localhost from latest") {
		t.Errorf("stderr %q", b.stderr.String())
	}
	wantOneLineError(t, invocation{env: env}.hubwire(t, "monitor", "--connections", "--from", "earliest"), 2, "connection events are live only")
}
