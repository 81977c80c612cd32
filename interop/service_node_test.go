package interop

// The official Azure IoT Node service SDK (azure-iothub, from npm,
// unchanged) against the emulator's service REST API on 443: registry,
// twins, query, a direct method to a device connected with hubwire's own
// device client, and the typed errors the SDK derives from the replies.

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub/device"
	"github.com/hubwire/hubwire/sas"
)

func TestNodeServiceSDK(t *testing.T) {
	h := startHub(t, true) // the SDK dials {HostName}:443 and nothing else
	owner, err := h.PolicyConnectionString("iothubowner")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := sas.ParseConnectionString(owner)
	if err != nil {
		t.Fatal(err)
	}
	wrong := cs.WithSharedAccessKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").FullString()

	// The device the SDK calls a method on, connected with hubwire's client.
	h.addDevice(t, "method-dev")
	dc, err := device.New(device.Config{
		ConnectionString: h.connString(t, "method-dev"),
		Address:          h.MQTTAddr().String(),
		RootCAs:          h.CertPool(),
		NoProxy:          true,
		Methods: map[string]device.MethodHandler{
			"echo": func(ctx context.Context, req device.MethodRequest) (int, []byte, error) {
				return 200, req.Payload, nil
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := dc.Connect(ctx); err != nil {
		t.Fatalf("device Connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dc.Close(ctx)
	})

	p := StartNode(t, "service/service_flow.js", ProcOptions{
		Env: map[string]string{
			"HUB_CS":              owner,
			"WRONG_CS":            wrong,
			"METHOD_DEVICE":       "method-dev",
			"NODE_EXTRA_CA_CERTS": h.caFile(t),
		},
		Timeout: 90 * time.Second,
	})
	const step = 20 * time.Second

	ev := p.Expect("created", step)
	pk, err1 := sas.DecodeKey(ev.Str("primaryKey"))
	sk, err2 := sas.DecodeKey(ev.Str("secondaryKey"))
	if ev.Str("deviceId") != "node-svc-1" || err1 != nil || err2 != nil || len(pk) != 32 || len(sk) != 32 ||
		ev.Str("generationId") == "" || ev.Str("etag") == "" || ev.Str("status") != "enabled" {
		t.Fatalf("created: %s", ev.Raw)
	}
	d, err := h.GetDevice("node-svc-1")
	if err != nil || d.Authentication.SymmetricKey.PrimaryKey != ev.Str("primaryKey") {
		t.Fatalf("hub's record of the created device: %+v, %v", d, err)
	}
	created := ev

	ev = p.Expect("got", step)
	if ev.Str("deviceId") != "node-svc-1" || ev.Str("etag") != created.Str("etag") || ev.Str("primaryKey") != created.Str("primaryKey") {
		t.Errorf("got: %s", ev.Raw)
	}
	ev = p.Expect("listed", step)
	if fmt.Sprint(ev.Fields["ids"]) != "[method-dev node-svc-1]" {
		t.Errorf("listed: %s", ev.Raw)
	}
	ev = p.Expect("twin", step)
	if ev.Str("deviceId") != "node-svc-1" || ev.Str("etag") == "" || ev.Num("desiredVersion") != 1 {
		t.Errorf("twin: %s", ev.Raw)
	}
	ev = p.Expect("twin_updated", step)
	tags, _ := ev.Fields["tags"].(map[string]any)
	if tags["region"] != "US" || tags["floor"] != 3.0 || ev.Num("interval") != 30 || ev.Num("desiredVersion") != 2 {
		t.Errorf("twin_updated: %s", ev.Raw)
	}
	tw, err := h.GetTwin("node-svc-1", "")
	if err != nil || tw.Tags["region"] != "US" {
		t.Errorf("hub's twin after Twin.update: %+v, %v", tw.Tags, err)
	}
	ev = p.Expect("stale_etag", step)
	if ev.Str("name") != "InvalidEtagError" {
		t.Errorf("updateTwin with a stale etag: %s", ev.Raw)
	}
	ev = p.Expect("twin_updated_again", step)
	if tags, _ := ev.Fields["tags"].(map[string]any); tags["owner"] != "node" || tags["region"] != "US" {
		t.Errorf("twin_updated_again: %s", ev.Raw)
	}
	ev = p.Expect("queried", step)
	if fmt.Sprint(ev.Fields["ids"]) != "[node-svc-1]" {
		t.Errorf("queried: %s", ev.Raw)
	}
	ev = p.Expect("queried_all", step)
	if fmt.Sprint(ev.Fields["ids"]) != "[method-dev node-svc-1]" || ev.Num("pages") != 2 {
		t.Errorf("queried_all (pages of 1, x-ms-continuation between them): %s", ev.Raw)
	}
	ev = p.Expect("counted", step)
	if want := []any{map[string]any{"n": 2.0}}; !reflect.DeepEqual(ev.Fields["result"], want) {
		t.Errorf("counted: %s", ev.Raw)
	}
	ev = p.Expect("invoked", step)
	if ev.Num("status") != 200 || fmt.Sprint(ev.Fields["payload"]) != "map[a:1]" {
		t.Errorf("invoked: %s", ev.Raw)
	}
	ev = p.Expect("not_found", step)
	if ev.Str("name") != "DeviceNotFoundError" {
		t.Errorf("get of an unknown id: %s", ev.Raw)
	}
	ev = p.Expect("deleted", step)
	if ev.Num("statusCode") != 204 {
		t.Errorf("deleted: %s", ev.Raw)
	}
	if _, err := h.GetDevice("node-svc-1"); err == nil {
		t.Error("the hub still has the deleted device")
	}
	ev = p.Expect("deleted_get", step)
	if ev.Str("name") != "DeviceNotFoundError" {
		t.Errorf("get after delete: %s", ev.Raw)
	}
	ev = p.Expect("refused", step)
	if ev.Str("name") != "UnauthorizedError" || !strings.Contains(ev.Str("message"), "Unauthorized") {
		t.Errorf("wrong policy key: %s", ev.Raw)
	}
	ev = p.Expect("device_updated", step)
	if ev.Str("statusReason") != "updated by node" {
		t.Errorf("device_updated: %s", ev.Raw)
	}
	ev = p.Expect("statistics", step)
	if ev.Num("totalDeviceCount") != 1 || ev.Num("enabledDeviceCount") != 1 || ev.Num("disabledDeviceCount") != 0 {
		t.Errorf("statistics: %s", ev.Raw)
	}
	ev = p.Expect("module_added", step)
	if ev.Str("moduleId") != "node-mod" || ev.Str("deviceId") != "method-dev" || ev.Str("primaryKey") == "" {
		t.Errorf("module_added: %s", ev.Raw)
	}
	ev = p.Expect("modules", step)
	if ev.Str("got") != "node-mod" || fmt.Sprint(ev.Fields["ids"]) != "[node-mod]" {
		t.Errorf("modules: %s", ev.Raw)
	}
	ev = p.Expect("module_twin", step)
	if tags, _ := ev.Fields["tags"].(map[string]any); ev.Str("moduleId") != "node-mod" || tags["kind"] != "module" {
		t.Errorf("module_twin: %s", ev.Raw)
	}
	ev = p.Expect("module_updated", step)
	if ev.Str("managedBy") != "node" {
		t.Errorf("module_updated: %s", ev.Raw)
	}
	ev = p.Expect("module_duplicate", step)
	if ev.Num("status") != 409 {
		t.Errorf("module_duplicate: %s", ev.Raw)
	}
	ev = p.Expect("module_removed", step)
	if ev.Num("statusCode") != 204 {
		t.Errorf("module_removed: %s", ev.Raw)
	}
	ev = p.Expect("bulk_added", step)
	if ev.Fields["isSuccessful"] != true {
		t.Errorf("addDevices: %s", ev.Raw)
	}
	ev = p.Expect("bulk_removed", step)
	if ev.Fields["isSuccessful"] != true {
		t.Errorf("removeDevices: %s", ev.Raw)
	}
	if _, err := h.GetDevice("bulk-1"); err == nil {
		t.Error("removeDevices left bulk-1")
	}
	p.Expect("done", step)
	if err := p.Wait(10 * time.Second); err != nil {
		t.Errorf("node exit: %v", err)
	}
}
