package service_test

// The Go service client against a running emulator (iothub/emulator) over
// real TLS on loopback: every call, and the error mapping of contract §8.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub/device"
	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/emulator/emulatortest"
	"github.com/hubwire/hubwire/iothub/service"
	"github.com/hubwire/hubwire/sas"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newClient returns a service client of the hub's policy name.
func newClient(t *testing.T, h *emulator.Hub, policy string) *service.Client {
	t.Helper()
	cs, err := h.PolicyConnectionString(policy)
	if err != nil {
		t.Fatal(err)
	}
	c, err := service.New(cs, &service.Options{Endpoint: "https://" + h.HTTPSAddr().String(), RootCAs: h.CertPool()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// connectDevice connects the device cs with our device client.
func connectDevice(t *testing.T, h *emulator.Hub, cs string, cfg device.Config) *device.Client {
	t.Helper()
	cfg.ConnectionString = cs
	cfg.Address = h.MQTTAddr().String()
	cfg.RootCAs = h.CertPool()
	cfg.NoProxy = true
	c, err := device.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 20*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("device Connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

func wantErr(t *testing.T, what string, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, targets)
	}
	var se *service.Error
	if !errors.As(err, &se) {
		t.Fatalf("%s: %T %v is not a *service.Error", what, err, err)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s: %v does not match %v", what, err, target)
		}
	}
}

func TestRegistry(t *testing.T) {
	h := emulatortest.New(t)
	c := newClient(t, h, "iothubowner")
	ctx := testCtx(t, 30*time.Second)

	d, err := c.CreateDevice(ctx, &service.Device{DeviceID: "dev#1"})
	if err != nil {
		t.Fatalf("CreateDevice: %v", err)
	}
	if d.DeviceID != "dev#1" || d.Status != service.StatusEnabled || d.GenerationID == "" || d.ETag == "" ||
		d.Authentication == nil || d.Authentication.Type != service.AuthSAS || d.Authentication.SymmetricKey == nil ||
		len(d.Authentication.SymmetricKey.PrimaryKey) != 44 || len(d.Authentication.SymmetricKey.SecondaryKey) != 44 ||
		d.ConnectionState != "Disconnected" {
		t.Fatalf("created %+v", d)
	}
	_, err = c.CreateDevice(ctx, &service.Device{DeviceID: "dev#1"})
	wantErr(t, "second create", err, service.ErrDeviceAlreadyExists, service.ErrAlreadyExists)

	got, err := c.GetDevice(ctx, "dev#1")
	if err != nil || got.ETag != d.ETag || got.Authentication.SymmetricKey.PrimaryKey != d.Authentication.SymmetricKey.PrimaryKey {
		t.Fatalf("GetDevice = %+v, %v", got, err)
	}
	_, err = c.GetDevice(ctx, "nope")
	wantErr(t, "get unknown", err, service.ErrDeviceNotFound, service.ErrNotFound)

	// Update with the current etag, then with the stale one.
	upd := *got
	upd.Status = service.StatusDisabled
	upd.StatusReason = "maintenance"
	u, err := c.UpdateDevice(ctx, &upd, "")
	if err != nil || u.Status != service.StatusDisabled || u.StatusReason != "maintenance" || u.ETag == d.ETag {
		t.Fatalf("UpdateDevice = %+v, %v", u, err)
	}
	_, err = c.UpdateDevice(ctx, &upd, d.ETag)
	wantErr(t, "stale update", err, service.ErrPreconditionFailed)
	if _, err := c.UpdateDevice(ctx, &upd, "*"); err != nil {
		t.Fatalf("forced update: %v", err)
	}
	_, err = c.UpdateDevice(ctx, &service.Device{DeviceID: "nope"}, "*")
	wantErr(t, "update unknown", err, service.ErrDeviceNotFound)

	// Given keys are kept; bad ones refused.
	k := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	d2, err := c.CreateDevice(ctx, &service.Device{DeviceID: "dev2", Authentication: &service.Authentication{Type: service.AuthSAS,
		SymmetricKey: &service.SymmetricKey{PrimaryKey: k, SecondaryKey: k}}})
	if err != nil || d2.Authentication.SymmetricKey.PrimaryKey != k {
		t.Fatalf("create with keys = %+v, %v", d2, err)
	}
	_, err = c.CreateDevice(ctx, &service.Device{DeviceID: "dev3", Authentication: &service.Authentication{Type: service.AuthSAS,
		SymmetricKey: &service.SymmetricKey{PrimaryKey: "not base64"}}})
	wantErr(t, "bad key", err, service.ErrBadRequest)
	_, err = c.CreateDevice(ctx, &service.Device{DeviceID: "bad/id"})
	wantErr(t, "bad id", err, service.ErrBadRequest)

	list, err := c.ListDevices(ctx, 0)
	if err != nil || len(list) != 2 || list[0].DeviceID != "dev#1" || list[1].DeviceID != "dev2" {
		t.Fatalf("ListDevices = %+v, %v", list, err)
	}
	if list, err := c.ListDevices(ctx, 1); err != nil || len(list) != 1 {
		t.Fatalf("ListDevices(1) = %d, %v", len(list), err)
	}
	st, err := c.Statistics(ctx)
	if err != nil || *st != (service.Statistics{TotalDeviceCount: 2, EnabledDeviceCount: 1, DisabledDeviceCount: 1}) {
		t.Fatalf("Statistics = %+v, %v", st, err)
	}

	// Delete: stale etag refused, then deleted; re-creation gets a new generation.
	err = c.DeleteDevice(ctx, "dev2", "bm90IGl0")
	wantErr(t, "stale delete", err, service.ErrPreconditionFailed)
	if err := c.DeleteDevice(ctx, "dev2", d2.ETag); err != nil {
		t.Fatalf("DeleteDevice: %v", err)
	}
	err = c.DeleteDevice(ctx, "dev2", "")
	wantErr(t, "delete again", err, service.ErrDeviceNotFound)
	d2b, err := c.CreateDevice(ctx, &service.Device{DeviceID: "dev2"})
	if err != nil || d2b.GenerationID == d2.GenerationID {
		t.Fatalf("re-created %+v (old generation %s), %v", d2b, d2.GenerationID, err)
	}
}

func TestModules(t *testing.T) {
	h := emulatortest.New(t)
	c := newClient(t, h, "registryReadWrite")
	ctx := testCtx(t, 30*time.Second)

	_, err := c.CreateModule(ctx, &service.Module{DeviceID: "dev1", ModuleID: "m1"})
	wantErr(t, "module of unknown device", err, service.ErrDeviceNotFound)
	if _, err := c.CreateDevice(ctx, &service.Device{DeviceID: "dev1"}); err != nil {
		t.Fatal(err)
	}
	m, err := c.CreateModule(ctx, &service.Module{DeviceID: "dev1", ModuleID: "m1", ManagedBy: "me"})
	if err != nil || m.ModuleID != "m1" || m.DeviceID != "dev1" || m.ManagedBy != "me" || m.ETag == "" ||
		m.Authentication == nil || m.Authentication.SymmetricKey == nil || m.Authentication.SymmetricKey.PrimaryKey == "" {
		t.Fatalf("CreateModule = %+v, %v", m, err)
	}
	_, err = c.CreateModule(ctx, &service.Module{DeviceID: "dev1", ModuleID: "m1"})
	wantErr(t, "duplicate module", err, service.ErrModuleAlreadyExists, service.ErrAlreadyExists)
	if _, err := c.CreateModule(ctx, &service.Module{DeviceID: "dev1", ModuleID: "m0"}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetModule(ctx, "dev1", "m1")
	if err != nil || got.ETag != m.ETag {
		t.Fatalf("GetModule = %+v, %v", got, err)
	}
	_, err = c.GetModule(ctx, "dev1", "zz")
	wantErr(t, "unknown module", err, service.ErrModuleNotFound, service.ErrNotFound)
	ms, err := c.ListModules(ctx, "dev1")
	if err != nil || len(ms) != 2 || ms[0].ModuleID != "m0" || ms[1].ModuleID != "m1" {
		t.Fatalf("ListModules = %+v, %v", ms, err)
	}
	_, err = c.ListModules(ctx, "nope")
	wantErr(t, "modules of unknown device", err, service.ErrDeviceNotFound)

	got.ManagedBy = "you"
	u, err := c.UpdateModule(ctx, got, "")
	if err != nil || u.ManagedBy != "you" || u.ETag == m.ETag {
		t.Fatalf("UpdateModule = %+v, %v", u, err)
	}
	_, err = c.UpdateModule(ctx, got, m.ETag)
	wantErr(t, "stale module update", err, service.ErrPreconditionFailed)
	err = c.DeleteModule(ctx, "dev1", "m1", m.ETag)
	wantErr(t, "stale module delete", err, service.ErrPreconditionFailed)
	if err := c.DeleteModule(ctx, "dev1", "m1", ""); err != nil {
		t.Fatalf("DeleteModule: %v", err)
	}
	_, err = c.GetModule(ctx, "dev1", "m1")
	wantErr(t, "deleted module", err, service.ErrModuleNotFound)
}

func TestTwins(t *testing.T) {
	h := emulatortest.New(t)
	c := newClient(t, h, "iothubowner")
	ctx := testCtx(t, 30*time.Second)
	cs := emulatortest.Device(t, h, "dev1")

	tw, err := c.GetTwin(ctx, "dev1")
	if err != nil || tw.DeviceID != "dev1" || tw.ETag == "" || tw.DesiredVersion() != 1 || tw.ReportedVersion() != 1 ||
		tw.Status != service.StatusEnabled || tw.ConnectionState != "Disconnected" || tw.AuthenticationType != service.AuthSAS {
		t.Fatalf("GetTwin = %+v, %v", tw, err)
	}
	_, err = c.GetTwin(ctx, "nope")
	wantErr(t, "unknown twin", err, service.ErrDeviceNotFound)

	// A connected device is told about desired changes.
	updates := make(chan device.DesiredUpdate, 8)
	dc := connectDevice(t, h, cs, device.Config{OnDesired: func(u device.DesiredUpdate) { updates <- u }})
	<-updates // the first synchronisation
	if _, err := dc.ReportProperties(ctx, map[string]any{"fw": "1.0"}); err != nil {
		t.Fatal(err)
	}
	// The report changed the twin: the etag read before it is stale.
	_, err = c.UpdateTwin(ctx, "dev1", &service.Twin{Tags: map[string]any{"x": 1}}, tw.ETag)
	wantErr(t, "etag from before the report", err, service.ErrPreconditionFailed)
	if tw, err = c.GetTwin(ctx, "dev1"); err != nil || tw.Properties.Reported["fw"] != "1.0" {
		t.Fatalf("GetTwin after report = %+v, %v", tw, err)
	}

	t1, err := c.UpdateTwin(ctx, "dev1", &service.Twin{
		Tags:       map[string]any{"loc": map[string]any{"region": "US", "floor": 3}},
		Properties: service.TwinProperties{Desired: map[string]any{"interval": 30, "mode": "eco"}},
	}, tw.ETag)
	if err != nil {
		t.Fatalf("UpdateTwin: %v", err)
	}
	if t1.ETag == tw.ETag || t1.Version <= tw.Version || t1.DesiredVersion() != 2 ||
		t1.Properties.Desired["interval"] != 30.0 || fmt.Sprint(t1.Tags["loc"]) != "map[floor:3 region:US]" ||
		t1.Properties.Reported["fw"] != "1.0" {
		t.Fatalf("updated twin %+v", t1)
	}
	meta, _ := t1.Properties.Desired["$metadata"].(map[string]any)
	if _, ok := meta["$lastUpdated"].(string); !ok {
		t.Errorf("desired $metadata %v has no $lastUpdated", meta)
	}
	if im, _ := meta["interval"].(map[string]any); im["$lastUpdated"] == nil {
		t.Errorf("desired.interval $metadata %v", meta["interval"])
	}
	select {
	case u := <-updates:
		if u.Patch["interval"] != 30.0 && fmt.Sprint(u.Patch["interval"]) != "30" {
			t.Errorf("notification %+v", u)
		}
	case <-ctx.Done():
		t.Fatal("no desired notification")
	}

	// Merge: nested tags merge, null deletes.
	t2, err := c.UpdateTwin(ctx, "dev1", &service.Twin{
		Tags:       map[string]any{"loc": map[string]any{"floor": nil, "room": "12"}},
		Properties: service.TwinProperties{Desired: map[string]any{"mode": nil}},
	}, "")
	if err != nil || fmt.Sprint(t2.Tags["loc"]) != "map[region:US room:12]" || t2.Properties.Desired["mode"] != nil ||
		t2.Properties.Desired["interval"] != 30.0 || t2.DesiredVersion() != 3 {
		t.Fatalf("merged twin %+v, %v", t2, err)
	}
	_, err = c.UpdateTwin(ctx, "dev1", &service.Twin{Tags: map[string]any{"x": 1}}, t1.ETag)
	wantErr(t, "stale twin update", err, service.ErrPreconditionFailed)
	_, err = c.UpdateTwin(ctx, "dev1", &service.Twin{Tags: map[string]any{"big": strings.Repeat("x", 9000)}}, "")
	wantErr(t, "tags over 8 KB", err, service.ErrBadRequest)
	_, err = c.UpdateTwin(ctx, "dev1", &service.Twin{Tags: map[string]any{"a.b": 1}}, "")
	wantErr(t, "key with a dot", err, service.ErrBadRequest)

	// Replace: wholesale.
	t3, err := c.ReplaceTwin(ctx, "dev1", &service.Twin{Tags: map[string]any{"only": true},
		Properties: service.TwinProperties{Desired: map[string]any{"fresh": "yes"}}}, t2.ETag)
	if err != nil || len(t3.Tags) != 1 || t3.Tags["only"] != true || t3.Properties.Desired["interval"] != nil ||
		t3.Properties.Desired["fresh"] != "yes" {
		t.Fatalf("replaced twin %+v, %v", t3, err)
	}
	_, err = c.ReplaceTwin(ctx, "dev1", &service.Twin{}, t2.ETag)
	wantErr(t, "stale replace", err, service.ErrPreconditionFailed)
	t4, err := c.ReplaceTwin(ctx, "dev1", nil, "*")
	if err != nil || len(t4.Tags) != 0 {
		t.Fatalf("replace with nothing = %+v, %v", t4, err)
	}

	// Module twins.
	emulatortest.Module(t, h, "dev1", "m1")
	mt, err := c.GetModuleTwin(ctx, "dev1", "m1")
	if err != nil || mt.DeviceID != "dev1" || mt.ModuleID != "m1" {
		t.Fatalf("GetModuleTwin = %+v, %v", mt, err)
	}
	mt2, err := c.UpdateModuleTwin(ctx, "dev1", "m1", &service.Twin{Tags: map[string]any{"role": "edge"}}, mt.ETag)
	if err != nil || mt2.Tags["role"] != "edge" {
		t.Fatalf("UpdateModuleTwin = %+v, %v", mt2, err)
	}
	mt3, err := c.ReplaceModuleTwin(ctx, "dev1", "m1", &service.Twin{Properties: service.TwinProperties{Desired: map[string]any{"k": 1}}}, "")
	if err != nil || len(mt3.Tags) != 0 || mt3.Properties.Desired["k"] != 1.0 {
		t.Fatalf("ReplaceModuleTwin = %+v, %v", mt3, err)
	}
	_, err = c.GetModuleTwin(ctx, "dev1", "zz")
	wantErr(t, "unknown module twin", err, service.ErrModuleNotFound)
}

func TestQuery(t *testing.T) {
	h := emulatortest.New(t)
	c := newClient(t, h, "iothubowner")
	ctx := testCtx(t, 30*time.Second)
	for i := range 7 {
		id := fmt.Sprintf("d%d", i)
		emulatortest.Device(t, h, id)
		region := "EU"
		if i%2 == 0 {
			region = "US"
		}
		if _, err := c.UpdateTwin(ctx, id, &service.Twin{Tags: map[string]any{"region": region, "n": i}}, ""); err != nil {
			t.Fatal(err)
		}
	}
	emulatortest.Module(t, h, "d1", "ma")
	emulatortest.Module(t, h, "d1", "mb")
	emulatortest.Module(t, h, "d4", "ma")

	collect := func(q string, pageSize int) []string {
		t.Helper()
		var ids []string
		for tw, err := range c.QueryTwins(ctx, q, pageSize) {
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			ids = append(ids, tw.DeviceID+"/"+tw.ModuleID)
		}
		return ids
	}
	if got := collect("SELECT * FROM devices", 2); strings.Join(got, ",") != "d0/,d1/,d2/,d3/,d4/,d5/,d6/" {
		t.Errorf("all devices in pages of 2: %v", got)
	}
	if got := collect("SELECT * FROM devices WHERE tags.region = 'US' AND tags.n > 0", 0); strings.Join(got, ",") != "d2/,d4/,d6/" {
		t.Errorf("US n>0: %v", got)
	}
	if got := collect("SELECT * FROM devices WHERE NOT (tags.region = 'US') OR deviceId = 'd0'", 1); strings.Join(got, ",") != "d0/,d1/,d3/,d5/" {
		t.Errorf("EU or d0: %v", got)
	}
	if got := collect("SELECT * FROM devices.modules", 2); strings.Join(got, ",") != "d1/ma,d1/mb,d4/ma" {
		t.Errorf("modules: %v", got)
	}
	if got := collect("SELECT * FROM devices.modules WHERE moduleId = 'ma'", 1); strings.Join(got, ",") != "d1/ma,d4/ma" {
		t.Errorf("modules ma: %v", got)
	}

	// Pages by hand: a continuation only while more remain.
	p, err := c.QueryPage(ctx, "SELECT * FROM devices WHERE tags.region = 'EU'", 2, "")
	if err != nil || len(p.Items) != 2 || p.Continuation == "" || p.ItemType != "Twin" {
		t.Fatalf("page 1 = %+v, %v", p, err)
	}
	p2, err := c.QueryPage(ctx, "SELECT * FROM devices WHERE tags.region = 'EU'", 2, p.Continuation)
	if err != nil || len(p2.Items) != 1 || p2.Continuation != "" {
		t.Fatalf("page 2 = %+v, %v", p2, err)
	}
	p3, err := c.QueryPage(ctx, "SELECT * FROM devices WHERE tags.region = 'EU'", 3, "")
	if err != nil || len(p3.Items) != 3 || p3.Continuation != "" {
		t.Fatalf("exact page = %d items, continuation %q, %v", len(p3.Items), p3.Continuation, err)
	}

	// COUNT.
	for raw, err := range c.Query(ctx, "SELECT COUNT() AS n FROM devices WHERE tags.region = 'US'", 0) {
		if err != nil || string(raw) != `{"n":4}` {
			t.Errorf("count = %s, %v", raw, err)
		}
	}

	// Stopping early fetches nothing more; an unsupported query is a 400
	// that says what is not supported.
	n := 0
	for range c.QueryTwins(ctx, "SELECT * FROM devices", 1) {
		n++
		if n == 2 {
			break
		}
	}
	for _, q := range []string{"SELECT * FROM devices WHERE deviceId IN ['a']", "SELECT deviceId FROM devices", "SELECT * FROM devices GROUP BY tags.region", "nonsense"} {
		for _, err := range c.QueryTwins(ctx, q, 0) {
			wantErr(t, q, err, service.ErrBadRequest)
			var se *service.Error
			if errors.As(err, &se) && !strings.Contains(se.Message, "query:") {
				t.Errorf("%s: message %q", q, se.Message)
			}
		}
	}
}

func TestMethods(t *testing.T) {
	h := emulatortest.New(t)
	c := newClient(t, h, "service")
	ctx := testCtx(t, 60*time.Second)
	cs := emulatortest.Device(t, h, "dev1")

	// Offline, connect timeout 0: at once.
	_, err := c.InvokeMethod(ctx, "dev1", service.MethodCall{Name: "reboot"})
	wantErr(t, "offline", err, service.ErrDeviceNotOnline, service.ErrNotFound)
	_, err = c.InvokeMethod(ctx, "nope", service.MethodCall{Name: "reboot"})
	wantErr(t, "unknown device", err, service.ErrDeviceNotFound)

	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	cfg := device.Config{Methods: map[string]device.MethodHandler{
		"echo": func(ctx context.Context, req device.MethodRequest) (int, []byte, error) {
			return 201, req.Payload, nil
		},
		"hang": func(ctx context.Context, req device.MethodRequest) (int, []byte, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return 200, nil, nil
		},
	}}

	// The connect timeout waits for the device to come online.
	connected := make(chan struct{})
	go func() {
		defer close(connected)
		time.Sleep(500 * time.Millisecond)
		connectDevice(t, h, cs, cfg)
	}()
	res, err := c.InvokeMethod(ctx, "dev1", service.MethodCall{Name: "echo", Payload: map[string]any{"a": 1}, ConnectTimeout: 20 * time.Second})
	<-connected
	if err != nil || res.Status != 201 || string(res.Payload) != `{"a":1}` {
		t.Fatalf("echo after connect = %+v, %v", res, err)
	}
	res, err = c.InvokeMethod(ctx, "dev1", service.MethodCall{Name: "echo", Payload: json.RawMessage(`"text"`)})
	if err != nil || string(res.Payload) != `"text"` {
		t.Fatalf("echo string = %+v, %v", res, err)
	}
	res, err = c.InvokeMethod(ctx, "dev1", service.MethodCall{Name: "missing"})
	if err != nil || res.Status != 501 {
		t.Fatalf("unknown method = %+v, %v", res, err)
	}
	_, err = c.InvokeMethod(ctx, "dev1", service.MethodCall{Name: "hang", ResponseTimeout: 5 * time.Second})
	wantErr(t, "no answer", err, service.ErrTimeout)
	once.Do(func() { close(release) })
	_, err = c.InvokeMethod(ctx, "dev1", service.MethodCall{Name: "echo", ResponseTimeout: 2 * time.Second})
	wantErr(t, "response timeout under 5 s", err, service.ErrBadRequest)

	// Module methods.
	mcs := emulatortest.Module(t, h, "dev1", "m1")
	_, err = c.InvokeModuleMethod(ctx, "dev1", "m1", service.MethodCall{Name: "echo"})
	wantErr(t, "offline module", err, service.ErrDeviceNotOnline)
	connectDevice(t, h, mcs, cfg)
	res, err = c.InvokeModuleMethod(ctx, "dev1", "m1", service.MethodCall{Name: "echo", Payload: []int{1, 2}})
	if err != nil || res.Status != 201 || string(res.Payload) != `[1,2]` {
		t.Fatalf("module echo = %+v, %v", res, err)
	}
}

func TestC2DAndFeedback(t *testing.T) {
	h := emulatortest.New(t)
	c := newClient(t, h, "service")
	ctx := testCtx(t, 60*time.Second)
	cs := emulatortest.Device(t, h, "dev1")

	// Queue while offline, purge.
	for i := range 3 {
		if _, err := c.SendC2D(ctx, "dev1", &service.C2DMessage{Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	pr, err := c.PurgeC2D(ctx, "dev1")
	if err != nil || pr.TotalMessagesPurged != 3 || pr.DeviceID != "dev1" {
		t.Fatalf("PurgeC2D = %+v, %v", pr, err)
	}
	_, err = c.PurgeC2D(ctx, "nope")
	wantErr(t, "purge unknown", err, service.ErrDeviceNotFound)
	_, err = c.SendC2D(ctx, "nope", &service.C2DMessage{Body: []byte("x")})
	wantErr(t, "send to unknown", err, service.ErrDeviceNotFound)
	_, err = c.SendC2D(ctx, "dev1", &service.C2DMessage{Body: make([]byte, service.MaxC2DSize+1)})
	wantErr(t, "too large", err, service.ErrMessageTooLarge)
	for i := range emulator.MaxC2DQueue {
		if _, err := c.SendC2D(ctx, "dev1", &service.C2DMessage{Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	_, err = c.SendC2D(ctx, "dev1", &service.C2DMessage{Body: []byte("one too many")})
	wantErr(t, "queue full", err, service.ErrQueueFull)
	if _, err := c.PurgeC2D(ctx, "dev1"); err != nil {
		t.Fatal(err)
	}
	if b, err := c.ReceiveFeedback(ctx); err != nil || b != nil {
		t.Fatalf("feedback before any = %+v, %v", b, err)
	}

	// Delivered to a connected device with its properties; full feedback.
	got := make(chan device.C2DMessage, 1)
	connectDevice(t, h, cs, device.Config{OnC2D: func(ctx context.Context, m *device.C2DMessage) {
		got <- device.C2DMessage{Payload: append([]byte(nil), m.Payload...), Properties: m.Properties}
	}})
	id, err := c.SendC2D(ctx, "dev1", &service.C2DMessage{Body: []byte("hello"), MessageID: "m-1", CorrelationID: "c-1",
		ContentType: "text/plain", Ack: service.AckFull, TTL: time.Minute, Properties: map[string]string{"k": "v"}})
	if err != nil || id != "m-1" {
		t.Fatalf("SendC2D = %q, %v", id, err)
	}
	select {
	case m := <-got:
		if string(m.Payload) != "hello" || m.Properties.MessageID != "m-1" || m.Properties.CorrelationID != "c-1" || m.Properties.ContentType != "text/plain" {
			t.Fatalf("delivered %+v", m)
		}
		if v, _ := m.Properties.Lookup("k"); v != "v" {
			t.Fatalf("delivered properties %+v", m.Properties)
		}
	case <-ctx.Done():
		t.Fatal("C2D not delivered")
	}
	var batch *service.FeedbackBatch
	for batch == nil {
		if batch, err = c.ReceiveFeedback(ctx); err != nil {
			t.Fatal(err)
		}
		if batch == nil {
			select {
			case <-ctx.Done():
				t.Fatal("no feedback")
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	if len(batch.Records) != 1 || batch.Records[0].OriginalMessageID != "m-1" || batch.Records[0].StatusCode != "Success" || batch.LockToken == "" {
		t.Fatalf("feedback %+v", batch)
	}
	if err := c.AbandonFeedback(ctx, batch.LockToken); err != nil {
		t.Fatalf("AbandonFeedback: %v", err)
	}
	again, err := c.ReceiveFeedback(ctx)
	if err != nil || again == nil || len(again.Records) != 1 {
		t.Fatalf("feedback after abandon = %+v, %v", again, err)
	}
	if err := c.CompleteFeedback(ctx, again.LockToken); err != nil {
		t.Fatalf("CompleteFeedback: %v", err)
	}
	if b, err := c.ReceiveFeedback(ctx); err != nil || b != nil {
		t.Fatalf("feedback after complete = %+v, %v", b, err)
	}
}

func TestStreams(t *testing.T) {
	h := emulatortest.New(t)
	c := newClient(t, h, "service")
	ctx := testCtx(t, 60*time.Second)
	cs := emulatortest.Device(t, h, "dev1")
	emulatortest.Device(t, h, "dev2")

	// Connection events: follow a stream, then connect.
	evCtx, evCancel := context.WithCancel(ctx)
	defer evCancel()
	events := make(chan *service.ConnectionEvent, 8)
	go func() {
		defer close(events)
		for ev, err := range c.ConnectionEvents(evCtx, service.StreamOptions{Follow: true, DeviceID: "dev1"}) {
			if err != nil {
				return
			}
			events <- ev
		}
	}()
	// The stream is open once the hub has its watcher; connecting before
	// that would miss the event, so retry the connection until one arrives.
	var dc *device.Client
	deadline := time.After(20 * time.Second)
	for dc == nil {
		time.Sleep(200 * time.Millisecond)
		dc = connectDevice(t, h, cs, device.Config{})
		select {
		case ev := <-events:
			if ev.DeviceID != "dev1" || ev.Event != "deviceConnected" || ev.Time.IsZero() {
				t.Fatalf("event %+v", ev)
			}
		case <-time.After(2 * time.Second):
			ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
			dc.Close(ctx2)
			cancel()
			dc = nil
			<-events // its disconnection, if the stream saw it
		case <-deadline:
			t.Fatal("no connection event")
		}
	}
	evCancel()

	for i := range 3 {
		m := &device.Message{Payload: []byte(fmt.Sprintf(`{"i":%d}`, i))}
		m.Properties.MessageID = fmt.Sprint("m", i)
		m.Properties.Add("k", "v")
		if err := dc.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []int64
	for m, err := range c.Telemetry(ctx, service.StreamOptions{}) {
		if err != nil {
			t.Fatalf("Telemetry: %v", err)
		}
		if m.DeviceID != "dev1" || m.Properties["k"] != "v" || m.SystemProperties["message-id"] != fmt.Sprint("m", len(seqs)) ||
			string(m.Body) != fmt.Sprintf(`{"i":%d}`, len(seqs)) || m.EnqueuedTime.IsZero() {
			t.Errorf("message %+v", m)
		}
		seqs = append(seqs, m.SequenceNumber)
	}
	if len(seqs) != 3 || seqs[1] != seqs[0]+1 || seqs[2] != seqs[0]+2 {
		t.Fatalf("sequence numbers %v", seqs)
	}
	n := 0
	for m, err := range c.Telemetry(ctx, service.StreamOptions{From: service.FromSequence(seqs[1])}) {
		if err != nil || m.SequenceNumber < seqs[1] {
			t.Fatalf("from %d: %+v, %v", seqs[1], m, err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("from sequence %d: %d messages", seqs[1], n)
	}
	for range c.Telemetry(ctx, service.StreamOptions{DeviceID: "dev2"}) {
		t.Error("a message of dev2")
	}
	checkSSE(t, h, seqs)

	// Follow from latest: only what arrives next.
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	next := make(chan *service.TelemetryMessage, 1)
	go func() {
		for m, err := range c.Telemetry(fctx, service.StreamOptions{From: service.FromLatest, Follow: true}) {
			if err == nil {
				next <- m
			}
			return
		}
	}()
	deadline = time.After(20 * time.Second)
	for sent := 0; ; sent++ {
		if err := dc.Send(ctx, &device.Message{Payload: []byte("live")}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-next:
			if string(m.Body) != "live" || m.SequenceNumber <= seqs[2] {
				t.Fatalf("followed %+v", m)
			}
			return
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
			t.Fatal("follow stream got nothing")
		}
	}
}

// checkSSE reads the telemetry log as server-sent events, then resumes
// after the first with Last-Event-ID.
func checkSSE(t *testing.T, h *emulator.Hub, seqs []int64) {
	t.Helper()
	p, _ := h.Policy("service")
	tok, _ := sas.NewTokenBase64(h.HostName(), p.PrimaryKey, "service", time.Now().Add(time.Hour))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: h.CertPool(), ServerName: "localhost"}}
	defer tr.CloseIdleConnections()
	get := func(hdr map[string]string) string {
		req, _ := http.NewRequest("GET", "https://"+h.HTTPSAddr().String()+"/emulator/telemetry?follow=false", nil)
		req.Header.Set("Authorization", tok.String())
		req.Header.Set("Accept", "text/event-stream")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
			t.Fatalf("SSE: %d %v", resp.StatusCode, resp.Header)
		}
		return string(b)
	}
	body := get(nil)
	events := strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n")
	if len(events) != 3 {
		t.Fatalf("SSE events %q", body)
	}
	for i, ev := range events {
		lines := strings.Split(ev, "\n")
		if len(lines) != 3 || lines[0] != fmt.Sprintf("id: %d", seqs[i]) || lines[1] != "event: telemetry" || !strings.HasPrefix(lines[2], "data: {") {
			t.Fatalf("SSE event %d: %q", i, ev)
		}
		var m service.TelemetryMessage
		if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[2], "data: ")), &m); err != nil || m.SequenceNumber != seqs[i] {
			t.Fatalf("SSE data %q: %v", lines[2], err)
		}
	}
	resumed := get(map[string]string{"Last-Event-ID": fmt.Sprint(seqs[0])})
	if strings.Count(resumed, "event: telemetry") != 2 || !strings.HasPrefix(resumed, fmt.Sprintf("id: %d\n", seqs[1])) {
		t.Fatalf("resumed SSE %q", resumed)
	}
}

func TestAuthErrors(t *testing.T) {
	h := emulatortest.New(t)
	ctx := testCtx(t, 30*time.Second)
	emulatortest.Device(t, h, "dev1")

	// Rights per policy.
	ro := newClient(t, h, "registryRead")
	if _, err := ro.GetDevice(ctx, "dev1"); err != nil {
		t.Fatalf("registryRead GetDevice: %v", err)
	}
	_, err := ro.CreateDevice(ctx, &service.Device{DeviceID: "x"})
	wantErr(t, "registryRead create", err, service.ErrUnauthorized)
	_, err = ro.GetTwin(ctx, "dev1")
	wantErr(t, "registryRead twin", err, service.ErrUnauthorized)
	svc := newClient(t, h, "service")
	_, err = svc.GetDevice(ctx, "dev1")
	wantErr(t, "service GetDevice", err, service.ErrUnauthorized)
	if _, err := svc.GetTwin(ctx, "dev1"); err != nil {
		t.Fatalf("service GetTwin: %v", err)
	}
	dev := newClient(t, h, "device")
	_, err = dev.GetTwin(ctx, "dev1")
	wantErr(t, "device policy", err, service.ErrUnauthorized)

	// A wrong key, an unknown policy.
	opts := &service.Options{Endpoint: "https://" + h.HTTPSAddr().String(), RootCAs: h.CertPool()}
	for _, cs := range []string{
		"HostName=" + h.HostName() + ";SharedAccessKeyName=iothubowner;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		"HostName=" + h.HostName() + ";SharedAccessKeyName=nobody;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	} {
		c, err := service.New(cs, opts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.GetDevice(ctx, "dev1")
		wantErr(t, "bad key", err, service.ErrUnauthorized)
		var se *service.Error
		if errors.As(err, &se) && (se.StatusCode != 401 || se.Code != "IotHubUnauthorizedAccess") {
			t.Errorf("bad key error %+v", se)
		}
	}
	// An expired token (the client's clock is two hours behind).
	owner, _ := h.PolicyConnectionString("iothubowner")
	old, err := service.New(owner, &service.Options{Endpoint: opts.Endpoint, RootCAs: opts.RootCAs, TokenTTL: time.Minute,
		Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = old.GetDevice(ctx, "dev1")
	wantErr(t, "expired token", err, service.ErrUnauthorized)

	// Not a service connection string.
	dcs, _ := h.DeviceConnectionString("dev1")
	if _, err := service.New(dcs, nil); !errors.Is(err, service.ErrConfig) {
		t.Errorf("device connection string: %v", err)
	}
}

// recorder is an http.RoundTripper that records Authorization headers.
type recorder struct {
	mu    sync.Mutex
	auths []string
	next  http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.auths = append(r.auths, req.Header.Get("Authorization"))
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func TestFreshTokenPerRequestAndCustomHTTPClient(t *testing.T) {
	h := emulatortest.New(t)
	ctx := testCtx(t, 30*time.Second)
	emulatortest.Device(t, h, "dev1")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = h.TLSConfig()
	tr.TLSClientConfig.RootCAs = h.CertPool()
	rec := &recorder{next: tr}
	var mu sync.Mutex
	now := time.Now()
	cs, _ := h.PolicyConnectionString("iothubowner")
	c, err := service.New(cs, &service.Options{Endpoint: "https://" + h.HTTPSAddr().String(), HTTPClient: &http.Client{Transport: rec},
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Second); return now }})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.GetDevice(ctx, "dev1"); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.auths) != 3 || rec.auths[0] == rec.auths[1] || rec.auths[1] == rec.auths[2] {
		t.Fatalf("tokens %q", rec.auths)
	}
	for _, a := range rec.auths {
		if !strings.HasPrefix(a, "SharedAccessSignature sr=") || !strings.Contains(a, "skn=iothubowner") {
			t.Errorf("Authorization %q", a)
		}
	}
}

func TestContextCancelled(t *testing.T) {
	h := emulatortest.New(t)
	c := newClient(t, h, "iothubowner")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.GetDevice(ctx, "dev1"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestBulkDevices(t *testing.T) {
	h := emulatortest.New(t)
	c := newClient(t, h, "iothubowner")
	ctx := testCtx(t, 30*time.Second)
	emulatortest.Device(t, h, "old")
	res, err := c.BulkDevices(ctx, []service.BulkOp{
		{Mode: service.ImportCreate, Device: service.Device{DeviceID: "b1"}},
		{Mode: service.ImportCreate, Device: service.Device{DeviceID: "b2", Status: service.StatusDisabled}},
		{Mode: service.ImportCreate, Device: service.Device{DeviceID: "old"}},
	})
	if err != nil || res.IsSuccessful || len(res.Errors) != 1 || res.Errors[0].DeviceID != "old" || res.Errors[0].ErrorCode != "DeviceAlreadyExists" {
		t.Fatalf("create = %+v, %v", res, err)
	}
	b2, err := c.GetDevice(ctx, "b2")
	if err != nil || b2.Status != service.StatusDisabled || b2.Authentication.SymmetricKey.PrimaryKey == "" {
		t.Fatalf("b2 = %+v, %v", b2, err)
	}
	stale := *b2
	stale.ETag = "bm9wZQ=="
	res, err = c.BulkDevices(ctx, []service.BulkOp{
		{Mode: service.ImportUpdateIfMatchETag, Device: service.Device{DeviceID: "b2", ETag: b2.ETag, Status: service.StatusEnabled}},
		{Mode: service.ImportDeleteIfMatchETag, Device: stale},
		{Mode: service.ImportCreateOrUpdate, Device: service.Device{DeviceID: "b1", StatusReason: "again"}},
		{Mode: service.ImportDelete, Device: service.Device{DeviceID: "old"}},
	})
	if err != nil || res.IsSuccessful || len(res.Errors) != 1 || res.Errors[0].ErrorCode != "PreconditionFailed" {
		t.Fatalf("update = %+v, %v", res, err)
	}
	if d, _ := c.GetDevice(ctx, "b1"); d == nil || d.StatusReason != "again" {
		t.Errorf("b1 after createOrUpdate = %+v", d)
	}
	if _, err := c.GetDevice(ctx, "old"); !errors.Is(err, service.ErrDeviceNotFound) {
		t.Errorf("old after delete: %v", err)
	}
	if _, err := c.BulkDevices(ctx, nil); !errors.Is(err, service.ErrBadRequest) {
		t.Errorf("empty bulk: %v", err)
	}
	_, err = newClient(t, h, "registryRead").BulkDevices(ctx, []service.BulkOp{{Mode: service.ImportCreate, Device: service.Device{DeviceID: "z"}}})
	wantErr(t, "bulk as registryRead", err, service.ErrUnauthorized)
}
