package iothub

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Tests named TestChecklistNN cover item NN of the conformance checklist in
// shared/iothub-mqtt.md §11 where this package decides the outcome. Items
// covered elsewhere: 24 (TestPropertiesParse, TestAppendEscape), 28
// (TestParseFilter, TestFilterAllowedFor, TestPublishableBy), 29
// (TestBuilders/c2d), 33 (TestHubTwinGet), 34 (TestHubTwinPatchReported), 35
// (TestParseTwinPatchLimits, TestTwinDepthDocsExample,
// TestTwinSectionSizeAsDocumented), 36 (TestDeviceTwinStatusErrors), 37
// (TestHubTwinUpdateDesired), 38 (TestDeviceTwinNotificationsDuringSync,
// TestDeviceTwinGapRecovery), 39 (TestMethodTableAnswer).

// TestChecklist02ClientIDMatchesUsername: the ClientId must name the
// identity of the username, else CONNACK 0x05.
func TestChecklist02ClientIDMatchesUsername(t *testing.T) {
	tests := []struct {
		username, clientID string
		want               bool
	}{
		{"h/dev1/?api-version=2021-04-12", "dev1", true},
		{"h/dev1/?api-version=2021-04-12", "dev2", false},
		{"h/dev1/?api-version=2021-04-12", "dev1/m1", false},
		{"h/dev1/?api-version=2021-04-12", "Dev1", false}, // ids are case-sensitive
		{"h/dev1/m1/?api-version=2021-04-12", "dev1/m1", true},
		{"h/dev1/m1/?api-version=2021-04-12", "dev1", false},
		{"h/dev1/m1/?api-version=2021-04-12", "dev1/m2", false},
		{"h/dev1/m1/?api-version=2021-04-12", "dev1/m1/x", false},
		{"h/a:b@c/?api-version=2021-04-12", "a:b@c", true}, // ids as-is in both
		{"h/dev1/api-version=2016-11-14", "dev1", true},
	}
	for _, tc := range tests {
		u, err := ParseUsername([]byte(tc.username))
		if err != nil {
			t.Fatalf("ParseUsername(%q): %v", tc.username, err)
		}
		if got := u.MatchesClientID([]byte(tc.clientID)); got != tc.want {
			t.Errorf("username %q, ClientId %q: match %v, want %v", tc.username, tc.clientID, got, tc.want)
		}
	}
}

// TestChecklist03UsernamesOfTheSDKs: the emulator accepts the usernames
// the SDKs send, current and legacy form.
func TestChecklist03UsernamesOfTheSDKs(t *testing.T) {
	tests := []struct {
		sdk, in string
		want    Username
	}{
		{"C", "hub.azure-devices.net/dev1/?api-version=2020-09-30&DeviceClientType=iothubclient%2F1.11.0%20%28native%3B%20Linux%3B%20x86_64%29&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1",
			Username{Host: "hub.azure-devices.net", DeviceID: "dev1", APIVersion: "2020-09-30",
				ClientType: "iothubclient/1.11.0 (native; Linux; x86_64)", ModelID: "dtmi:com:example:Thermostat;1"}},
		{"EmbeddedC", "hub/dev1/?api-version=2020-09-30&DeviceClientType=c%2F1.3.0(ard;esp32)",
			Username{Host: "hub", DeviceID: "dev1", APIVersion: "2020-09-30", ClientType: "c/1.3.0(ard;esp32)"}},
		{"Node-module", "hub/dev1/m1/?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F1.18.0%20(node%20v18.0.0%3B%20Linux%3B%20x64)",
			Username{Host: "hub", DeviceID: "dev1", ModuleID: "m1", APIVersion: "2021-04-12",
				ClientType: "azure-iot-device/1.18.0 (node v18.0.0; Linux; x64)"}},
		{"Python", "hub/dev1/?api-version=2019-10-01&DeviceClientType=py-azure-iot-device%2F2.12.0",
			Username{Host: "hub", DeviceID: "dev1", APIVersion: "2019-10-01", ClientType: "py-azure-iot-device/2.12.0"}},
		{"edge-auth-chain", "edgehub/d/m/?api-version=2018-06-30&DeviceClientType=x&auth-chain=m;d;parent",
			Username{Host: "edgehub", DeviceID: "d", ModuleID: "m", APIVersion: "2018-06-30", ClientType: "x"}},
		{"legacy", "hub/dev1/api-version=2016-11-14&DeviceClientType=old",
			Username{Host: "hub", DeviceID: "dev1", APIVersion: "2016-11-14", ClientType: "old", Legacy: true}},
	}
	for _, tc := range tests {
		t.Run(tc.sdk, func(t *testing.T) {
			got, err := ParseUsername([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestChecklist25SystemKeys: "$." and "%24." spellings of the keys a
// device may set map to system properties; every other key of a device's
// bag, including iothub-ack (which only the hub sets, on C2D), stays an
// application property.
func TestChecklist25SystemKeys(t *testing.T) {
	fields := []struct {
		name string
		get  func(*Properties) string
	}{
		{"mid", func(p *Properties) string { return p.MessageID }},
		{"cid", func(p *Properties) string { return p.CorrelationID }},
		{"uid", func(p *Properties) string { return p.UserID }},
		{"ct", func(p *Properties) string { return p.ContentType }},
		{"ce", func(p *Properties) string { return p.ContentEncoding }},
		{"ctime", func(p *Properties) string { return p.CreationTime }},
		{"exp", func(p *Properties) string { return p.Expiry }},
		{"schema", func(p *Properties) string { return p.Schema }},
		{"sub", func(p *Properties) string { return p.Subject }},
		{"ifid", func(p *Properties) string { return p.InterfaceID }},
		{"on", func(p *Properties) string { return p.OutputName }},
		{"to", func(p *Properties) string { return p.To }},
		{"diagid", func(p *Properties) string { return p.DiagID }},
		{"diagctx", func(p *Properties) string { return p.DiagContext }},
	}
	for _, f := range fields {
		for _, prefix := range []string{"$.", "%24.", "%24%2E"} {
			bag := prefix + f.name + "=v%2F1"
			var p Properties
			if err := p.ParseD2C([]byte(bag)); err != nil {
				t.Fatal(err)
			}
			if f.get(&p) != "v/1" || len(p.App) != 0 {
				t.Errorf("%q: field %q, app %v", bag, f.get(&p), p.App)
			}
		}
	}
	app := []struct{ bag, key, value string }{
		{"iothub-ack=full", "iothub-ack", "full"},
		{"%24.cdid=d", "$.cdid", "d"},
		{"%24.MID=1", "$.MID", "1"},
		{"mid=1", "mid", "1"},
		{"%24.=1", "$.", "1"},
	}
	for _, tc := range app {
		var p Properties
		if err := p.ParseD2C([]byte(tc.bag)); err != nil {
			t.Fatal(err)
		}
		want := Properties{App: []Property{{Key: tc.key, Value: tc.value}}}
		if diff := cmp.Diff(want, p, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.bag, diff)
		}
	}
	// On C2D iothub-ack is the hub's system property.
	if p, _ := ParseProperties([]byte("iothub-ack=full")); p.Ack != "full" || len(p.App) != 0 {
		t.Errorf("C2D iothub-ack: %+v", p)
	}
}

// TestChecklist40MethodTimeouts: responseTimeoutInSeconds is 5–300, default
// 30; connectTimeoutInSeconds 0–300.
func TestChecklist40MethodTimeouts(t *testing.T) {
	tests := []struct {
		response, connect time.Duration
		wantResp          time.Duration
		ok                bool
	}{
		{0, 0, 30 * time.Second, true},
		{5 * time.Second, 0, 5 * time.Second, true},
		{300 * time.Second, 300 * time.Second, 300 * time.Second, true},
		{5*time.Second - time.Millisecond, 0, 0, false},
		{300*time.Second + time.Millisecond, 0, 0, false},
		{-time.Second, 0, 0, false},
		{30 * time.Second, 300*time.Second + time.Millisecond, 0, false},
		{30 * time.Second, -time.Millisecond, 0, false},
	}
	for _, tc := range tests {
		c := MethodCall{Name: "m", ResponseTimeout: tc.response, ConnectTimeout: tc.connect}
		resp, conn, err := c.Timeouts()
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadRequest)) {
			t.Errorf("response %v connect %v: err %v, want ok=%v", tc.response, tc.connect, err, tc.ok)
			continue
		}
		if tc.ok && (resp != tc.wantResp || conn != tc.connect) {
			t.Errorf("response %v connect %v: got %v %v", tc.response, tc.connect, resp, conn)
		}
	}
	// The effective timeout is the one the table enforces: 504 just after it.
	for _, secs := range []int{5, 30, 300} {
		clk := NewManualClock(epoch)
		tab := NewMethodTable(clk)
		_, w, err := tab.Invoke(MethodCall{DeviceID: "d", Name: "m", ResponseTimeout: time.Duration(secs) * time.Second}, true)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Duration(secs)*time.Second - time.Millisecond)
		select {
		case <-w.Done():
			t.Fatalf("%d s call ended early", secs)
		default:
		}
		clk.Advance(time.Millisecond)
		if _, err := w.Wait(waitCtx(t)); StatusOf(err) != 504 {
			t.Errorf("%d s: err %v, status %d, want 504", secs, err, StatusOf(err))
		}
	}
}

// TestChecklist41MethodReplyEchoesRID: a device's reply carries the request
// id exactly as it came, an integer status, and a JSON or empty body.
func TestChecklist41MethodReplyEchoesRID(t *testing.T) {
	var mux MethodMux
	mux.HandleDefault(func(_ context.Context, req MethodRequest) (int, []byte, error) {
		if len(req.Payload) == 0 {
			return -7, nil, nil
		}
		return 201, req.Payload, nil
	})
	rids := []string{"1", "m42", "5e3b4d2f-8f4b-4c1e-9b1a-0d9f2c7e6a51", "a%2Bb", "a+b", "x=y", "~._-"}
	for _, rid := range rids {
		for _, body := range []string{"", `{"a":[1,2]}`} {
			r := parse(t, []byte("$iothub/methods/POST/any/?$rid="+rid))
			req, err := ParseMethodRequest(&r, []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			reply := mux.Dispatch(context.Background(), req)
			rr := parse(t, reply.Topic)
			wantStatus := 201
			if body == "" {
				wantStatus = -7
			}
			if rr.Kind != RouteMethodResponse || string(rr.RequestID) != rid || rr.Status != wantStatus ||
				string(reply.Payload) != body || string(reply.Topic) != "$iothub/methods/res/"+strconv.Itoa(wantStatus)+"/?$rid="+rid {
				t.Errorf("rid %q body %q: reply %s %s", rid, body, reply.Topic, reply.Payload)
			}
		}
	}
}

// TestChecklist42IDsUnencodedInTopics: the builders write ids as they are
// (only the SAS resource URI encodes them).
func TestChecklist42IDsUnencodedInTopics(t *testing.T) {
	const dev, mod = "a:b@c;d$e'f(g)!h*i", "m.1=2,3"
	tests := []struct{ got, want string }{
		{string(AppendTelemetryTopic(nil, dev, "", nil)), "devices/" + dev + "/messages/events/"},
		{string(AppendTelemetryTopic(nil, dev, mod, nil)), "devices/" + dev + "/modules/" + mod + "/messages/events/"},
		{string(AppendC2DFilter(nil, dev)), "devices/" + dev + "/messages/devicebound/#"},
		{string(AppendC2DTopic(nil, dev, nil)), "devices/" + dev + "/messages/devicebound/"},
		{string(AppendModuleFilter(nil, dev, mod)), "devices/" + dev + "/modules/" + mod + "/#"},
		{string(AppendModuleInputTopic(nil, dev, mod, "in", nil)), "devices/" + dev + "/modules/" + mod + "/inputs/in/"},
		{(&Username{Host: "h", DeviceID: dev, ModuleID: mod}).String(), "h/" + dev + "/" + mod + "/?api-version=2021-04-12"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got  %s\nwant %s", tc.got, tc.want)
		}
	}
	r := parse(t, AppendTelemetryTopic(nil, dev, mod, nil))
	if string(r.DeviceID) != dev || string(r.ModuleID) != mod || !r.PublishableBy(dev, mod) {
		t.Errorf("parsed back %q %q", r.DeviceID, r.ModuleID)
	}
}
