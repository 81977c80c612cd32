package emulator_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/testcert"
	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/emulator/emulatortest"
	"github.com/hubwire/hubwire/packet"
	"github.com/hubwire/hubwire/sas"
)

func TestRegistryETagsAndGenerations(t *testing.T) {
	h := newHub(t)
	ctx := testCtx(t)
	d, err := h.CreateDevice(ctx, emulator.Device{DeviceID: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	if d.ETag != "MA==" || d.Status != emulator.StatusEnabled || d.Authentication.Type != emulator.AuthSAS ||
		d.Authentication.SymmetricKey.PrimaryKey == "" || d.Authentication.SymmetricKey.SecondaryKey == "" || d.GenerationID == "" {
		t.Fatalf("created %+v", d)
	}
	if _, err := h.CreateDevice(ctx, emulator.Device{DeviceID: "d1"}); !errors.Is(err, emulator.ErrDeviceAlreadyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := h.CreateDevice(ctx, emulator.Device{DeviceID: "bad/id"}); !errors.Is(err, emulator.ErrInvalidArgument) {
		t.Fatalf("bad id: %v", err)
	}
	if _, err := h.UpdateDevice(ctx, d, `"nope"`); !errors.Is(err, emulator.ErrPreconditionFailed) {
		t.Fatalf("stale etag: %v", err)
	}
	d.StatusReason = "maintenance"
	d2, err := h.UpdateDevice(ctx, d, `"`+d.ETag+`"`)
	if err != nil || d2.ETag == d.ETag || d2.StatusReason != "maintenance" {
		t.Fatalf("update: %+v %v", d2, err)
	}
	if err := h.DeleteDevice(ctx, "d1", d.ETag); !errors.Is(err, emulator.ErrPreconditionFailed) {
		t.Fatalf("delete stale: %v", err)
	}
	if err := h.DeleteDevice(ctx, "d1", "*"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.GetDevice("d1"); !errors.Is(err, emulator.ErrDeviceNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	d3, _ := h.CreateDevice(ctx, emulator.Device{DeviceID: "d1"})
	if d3.GenerationID == d.GenerationID {
		t.Fatal("generationId unchanged on re-creation")
	}
	if _, err := h.CreateModule(ctx, emulator.Module{DeviceID: "ghost", ModuleID: "m"}); !errors.Is(err, emulator.ErrDeviceNotFound) {
		t.Fatalf("module on unknown device: %v", err)
	}
	m, err := h.CreateModule(ctx, emulator.Module{DeviceID: "d1", ModuleID: "m1"})
	if err != nil || m.Authentication.SymmetricKey.PrimaryKey == "" {
		t.Fatalf("module %+v %v", m, err)
	}
	if _, err := h.CreateModule(ctx, emulator.Module{DeviceID: "d1", ModuleID: "m1"}); !errors.Is(err, emulator.ErrModuleAlreadyExists) {
		t.Fatalf("duplicate module: %v", err)
	}
	if _, err := h.GetModule("d1", "m2"); !errors.Is(err, emulator.ErrModuleNotFound) {
		t.Fatalf("unknown module: %v", err)
	}
	if ms := h.ListModules("d1"); len(ms) != 1 || ms[0].ModuleID != "m1" {
		t.Fatalf("modules %+v", ms)
	}
	cs, _ := h.ModuleConnectionString("d1", "m1")
	if parsed, err := sas.ParseConnectionString(cs); err != nil || parsed.ModuleID != "m1" {
		t.Fatalf("module connection string %v", err)
	}
	if err := h.DeleteModule(ctx, "d1", "m1", ""); err != nil {
		t.Fatal(err)
	}
	// Disabling a connected device closes its connection.
	c := dialRaw(t, h, "tls")
	c.connect(h, "d1", "", true)
	d3, _ = h.GetDevice("d1")
	if d3.ConnectionState != emulator.Connected {
		t.Fatalf("state %s", d3.ConnectionState)
	}
	d3.Status = emulator.StatusDisabled
	if _, err := h.UpdateDevice(ctx, d3, "*"); err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
}

func TestPoliciesAndServiceTokens(t *testing.T) {
	h := newHub(t)
	names := []string{}
	for _, p := range h.Policies() {
		names = append(names, p.KeyName)
	}
	if got := strings.Join(names, ","); got != "device,iothubowner,registryRead,registryReadWrite,service" {
		t.Fatalf("policies %s", got)
	}
	cs, err := sas.ParseConnectionString(h.ServiceConnectionString())
	if err != nil || cs.SharedAccessKeyName != "iothubowner" {
		t.Fatalf("service connection string: %v", err)
	}
	owner, _ := h.Policy("iothubowner")
	now := time.Now().Unix()
	cases := []struct {
		name, tok string
		rights    emulator.Rights
		ok        bool
	}{
		{"node-raw-host", signRaw(owner.PrimaryKey, "localhost", now+3600, "iothubowner"), owner.Rights, true},
		{"csharp-encoded", signRaw(owner.PrimaryKey, "localhost%3A443", now+3600, "iothubowner"), owner.Rights, true},
		{"host-case", signRaw(owner.PrimaryKey, "LOCALHOST", now+3600, "iothubowner"), owner.Rights, true},
		{"other-host", signRaw(owner.PrimaryKey, "elsewhere", now+3600, "iothubowner"), 0, false},
		{"expired", signRaw(owner.PrimaryKey, "localhost", now-3600, "iothubowner"), 0, false},
		{"no-skn", signRaw(owner.PrimaryKey, "localhost", now+3600, ""), 0, false},
		{"wrong-key", signRaw(base64.StdEncoding.EncodeToString(make([]byte, 32)), "localhost", now+3600, "iothubowner"), 0, false},
		{"bearer", "Bearer abc", 0, false},
	}
	for _, c := range cases {
		_, rights, err := h.VerifyServiceToken(c.tok)
		if c.ok && (err != nil || rights != c.rights) {
			t.Errorf("%s: %v %v", c.name, rights, err)
		}
		if !c.ok && !errors.Is(err, emulator.ErrUnauthorized) {
			t.Errorf("%s: %v, want ErrUnauthorized", c.name, err)
		}
	}
	if got := emulator.Rights(emulator.RegistryRead | emulator.ServiceConnect).String(); got != "RegistryRead, ServiceConnect" {
		t.Fatalf("rights %q", got)
	}
	fixed := emulatortest.Start(t, emulator.Config{OwnerKey: owner.PrimaryKey})
	if fixed.ServiceConnectionString() != h.ServiceConnectionString() {
		t.Fatal("OwnerKey did not fix the service connection string")
	}
}

func TestServiceTwinMetadataETagsReplace(t *testing.T) {
	h := newHub(t, "d1")
	ctx := testCtx(t)
	tw, err := h.GetTwin("d1", "")
	if err != nil || tw.ETag != "AAAAAAAAAAE=" || tw.Version != 1 || tw.Properties.Desired["$version"] != int64(1) {
		t.Fatalf("new twin %+v %v", tw, err)
	}
	if _, ok := tw.Properties.Desired["$metadata"].(map[string]any)["$lastUpdated"]; !ok {
		t.Fatalf("no $metadata: %v", tw.Properties.Desired)
	}
	tw2, err := h.UpdateTwin(ctx, "d1", "", emulator.TwinPatch{Tags: map[string]any{"site": "a"}, Desired: map[string]any{"fw": "1", "cfg": map[string]any{"x": 1}}}, tw.ETag)
	if err != nil || tw2.Version != 2 || tw2.ETag == tw.ETag || tw2.Tags["site"] != "a" || tw2.Properties.Desired["$version"] != int64(2) {
		t.Fatalf("update %+v %v", tw2, err)
	}
	meta := tw2.Properties.Desired["$metadata"].(map[string]any)
	if _, ok := meta["cfg"].(map[string]any)["x"].(map[string]any)["$lastUpdated"]; !ok {
		t.Fatalf("nested $metadata missing: %v", meta)
	}
	if _, err := h.UpdateTwin(ctx, "d1", "", emulator.TwinPatch{Tags: map[string]any{"a": 1}}, tw.ETag); !errors.Is(err, emulator.ErrPreconditionFailed) {
		t.Fatalf("stale etag: %v", err)
	}
	if _, err := h.UpdateTwin(ctx, "d1", "", emulator.TwinPatch{Desired: map[string]any{"a.b": 1}}, ""); !errors.Is(err, emulator.ErrInvalidArgument) {
		t.Fatalf("bad key: %v", err)
	}
	if _, err := h.UpdateTwin(ctx, "d1", "", emulator.TwinPatch{Tags: map[string]any{"big": strings.Repeat("x", 4000), "big2": strings.Repeat("x", 4000), "big3": strings.Repeat("x", 1000)}}, ""); !errors.Is(err, emulator.ErrInvalidArgument) {
		t.Fatalf("tags over 8 KB: %v", err)
	}
	after, _ := h.GetTwin("d1", "")
	if after.Version != 2 {
		t.Fatalf("failed updates changed the twin: version %d", after.Version)
	}
	// A connected subscriber sees a replace as a patch with nulls.
	d := connect(t, h, "d1", devOpts{clean: true})
	d.sub("$iothub/twin/PATCH/properties/desired/#")
	tw3, err := h.ReplaceTwin(ctx, "d1", "", map[string]any{"new": true}, map[string]any{"fw": "2"}, "*")
	if err != nil || tw3.Tags["site"] != nil || tw3.Properties.Desired["cfg"] != nil || tw3.Properties.Desired["fw"] != "2" {
		t.Fatalf("replace %+v %v", tw3, err)
	}
	m := d.next("$iothub/twin/PATCH/properties/desired/")
	if !strings.Contains(string(m.Payload), `"cfg":null`) || !strings.Contains(string(m.Payload), `"fw":"2"`) {
		t.Fatalf("notification %s", m.Payload)
	}
	if _, err := h.GetTwin("ghost", ""); !errors.Is(err, emulator.ErrDeviceNotFound) {
		t.Fatalf("unknown twin: %v", err)
	}
}

func TestTelemetryStreamPositions(t *testing.T) {
	h := newHub(t, "d1")
	d := connect(t, h, "d1", devOpts{})
	for i := range 3 {
		d.pub("devices/d1/messages/events/", []byte(fmt.Sprint("m", i)), packet.QoS1)
	}
	first, next := h.TelemetryRange()
	if first != 0 || next != 3 {
		t.Fatalf("range %d..%d", first, next)
	}
	ms, _ := h.ReadTelemetry(emulator.FromSequence(1), 10)
	if len(ms) != 2 || string(ms[0].Body) != "m1" || ms[0].SequenceNumber != 1 {
		t.Fatalf("from 1: %+v", ms)
	}
	if ms, _ := h.ReadTelemetry(emulator.FromEnqueuedTime(ms[1].EnqueuedTime.Add(time.Hour)), 10); len(ms) != 0 {
		t.Fatalf("from a later time: %+v", ms)
	}
	if ms, _ := h.ReadTelemetry(emulator.FromEnqueuedTime(time.Time{}), 10); len(ms) != 3 {
		t.Fatalf("from the zero time: %d", len(ms))
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	got := make(chan string, 10)
	go func() {
		for m, err := range h.Telemetry(ctx, emulator.Latest) {
			if err != nil {
				close(got)
				return
			}
			got <- string(m.Body)
		}
	}()
	time.Sleep(50 * time.Millisecond) // let the stream reach its position before the next message
	d.pub("devices/d1/messages/events/", []byte("live"), packet.QoS1)
	select {
	case b := <-got:
		if b != "live" {
			t.Fatalf("latest stream got %q first", b)
		}
	case <-time.After(wait):
		t.Fatal("no live message")
	}
	var all []string
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	for m, err := range h.Telemetry(ctx2, emulator.Earliest) {
		if err != nil {
			break
		}
		all = append(all, string(m.Body))
	}
	if strings.Join(all, ",") != "m0,m1,m2,live" {
		t.Fatalf("earliest stream %v", all)
	}
}

func TestConnectionEvents(t *testing.T) {
	h := newHub(t, "d1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := h.WatchConnections(ctx)
	c := dialRaw(t, h, "wss")
	c.connect(h, "d1", "", true)
	c.nc.Close()
	var got []emulator.ConnectionEvent
	for len(got) < 2 {
		select {
		case e := <-ev:
			got = append(got, e)
		case <-time.After(wait):
			t.Fatalf("events %+v", got)
		}
	}
	if got[0].Type != emulator.EventConnected || got[1].Type != emulator.EventDisconnected ||
		got[0].DeviceID != "d1" || got[0].Transport != "wss" || got[1].Reason == "" {
		t.Fatalf("events %+v", got)
	}
}

func TestStatePersistsAcrossClose(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	cfg := emulator.Config{DataDir: dir, MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0"}
	h, err := emulator.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := h.CreateDevice(ctx, emulator.Device{DeviceID: "d1"})
	h.CreateModule(ctx, emulator.Module{DeviceID: "d1", ModuleID: "m1"})
	h.SetPolicy(ctx, emulator.Policy{KeyName: "custom", Rights: emulator.ServiceConnect})
	h.UpdateTwin(ctx, "d1", "", emulator.TwinPatch{Tags: map[string]any{"t": "v"}}, "")
	mid, _ := h.SendC2D(ctx, "d1", emulator.C2DMessage{Body: []byte("x"), Ack: emulator.AckFull})
	owner := h.ServiceConnectionString()
	ca := string(h.CAPEM())
	h.Close()

	h2, err := emulator.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	d2, err := h2.GetDevice("d1")
	if err != nil || d2.GenerationID != d.GenerationID || d2.Authentication != d.Authentication {
		t.Fatalf("device after restart %+v %v", d2, err)
	}
	if _, err := h2.GetModule("d1", "m1"); err != nil {
		t.Fatal(err)
	}
	if _, err := h2.Policy("custom"); err != nil {
		t.Fatal(err)
	}
	if tw, _ := h2.GetTwin("d1", ""); tw.Tags["t"] != "v" || tw.Version != 2 {
		t.Fatalf("twin %+v", tw)
	}
	if q := h2.PendingC2D("d1"); len(q) != 1 || q[0].MessageID != mid {
		t.Fatalf("queue %+v", q)
	}
	if h2.ServiceConnectionString() != owner || string(h2.CAPEM()) != ca {
		t.Fatal("keys or CA changed across restart")
	}
	if !strings.HasPrefix(h2.CAFile(), dir) {
		t.Fatalf("CA file %s", h2.CAFile())
	}
}

func TestBindErrorSaysHow(t *testing.T) {
	h := newHub(t)
	_, err := emulator.Start(testCtx(t), emulator.Config{MQTTAddr: h.MQTTAddr().String(), HTTPSAddr: "off"})
	if err == nil || !strings.Contains(err.Error(), "MQTTAddr") || !strings.Contains(err.Error(), h.MQTTAddr().String()) {
		t.Fatalf("error %v", err)
	}
}

func TestGivenCertificateFiles(t *testing.T) {
	ca := testcert.New(t, testcert.Options{RSA: true})
	dir := t.TempDir()
	certFile, keyFile, err := ca.MustServer(t, "myhub.example").WritePEM(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WritePEM(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := emulatortest.Start(t, emulator.Config{HostName: "myhub.example", CertFile: certFile, KeyFile: keyFile, CAFile: caFile})
	emulatortest.Device(t, h, "d1")
	if !bytes.Equal(h.CAPEM(), ca.RootPEM()) {
		t.Fatal("CAPEM is not the given CA")
	}
	for _, tr := range transports {
		connect(t, h, "d1", devOpts{transport: tr})
	}
}
