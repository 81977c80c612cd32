package iothub

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The tests in this file feed the package what the official device SDKs
// really send (their topic-building code, read in the public sources), so
// that the emulator built on it lets every one of them connect unchanged.
//
//	C      azure-iot-sdk-c iothub_client/src/iothubtransport_mqtt_common.c
//	Emb. C azure-sdk-for-c sdk/inc/azure/iot/az_iot_hub_client.h
//	C#     azure-iot-sdk-csharp MqttTransportHandler.cs, UrlEncodedDictionarySerializer.cs
//	Node   azure-iot-sdk-node device/transport/mqtt/src/mqtt.ts, mqtt_twin_client.ts
//	Python azure-iot-sdk-python iothub/pipeline/mqtt_topic_iothub.py
//	Java   azure-iot-sdk-java transport/mqtt/MqttMessaging.java, MqttTwin.java

// TestSDKFilters: every SUBSCRIBE filter an SDK sends to IoT Hub is
// accepted and allowed for the identity that sends it.
func TestSDKFilters(t *testing.T) {
	tests := []struct {
		sdk, filter string
		dev, mod    string // the subscribing identity
		want        FilterKind
	}{
		{"C/device-c2d", "devices/dev1/messages/devicebound/#", "dev1", "", FilterC2D},
		{"C/module-c2d", "devices/dev1/modules/m1/messages/devicebound/#", "dev1", "m1", FilterModuleC2D},
		{"C/module-inputs", "devices/dev1/modules/m1/#", "dev1", "m1", FilterModule},
		{"C/twin-res", "$iothub/twin/res/#", "dev1", "", FilterTwinResponses},
		{"C/twin-desired", "$iothub/twin/PATCH/properties/desired/#", "dev1", "", FilterTwinDesired},
		{"C/methods", "$iothub/methods/POST/#", "dev1", "m1", FilterMethods},
		{"EmbeddedC/c2d-wildcard", "devices/+/messages/devicebound/#", "dev1", "", FilterC2D},
		{"C#/module", "devices/dev1/modules/m1/#", "dev1", "m1", FilterModule},
		{"Node/module-inputs", "devices/dev1/modules/m1/inputs/#", "dev1", "m1", FilterModuleInputs},
		{"Python/module-inputs", "devices/dev1/modules/m1/inputs/#", "dev1", "m1", FilterModuleInputs},
		{"Python/c2d-encoded-id", "devices/00%3A11%3A22/messages/devicebound/#", "00:11:22", "", FilterC2D},
		{"Python/inputs-encoded-ids", "devices/a%40b/modules/m%24x/inputs/#", "a@b", "m$x", FilterModuleInputs},
		{"Java/module-c2d", "devices/dev1/modules/m1/messages/devicebound/#", "dev1", "m1", FilterModuleC2D},
		{"Java/module-inputs-edge", "devices/dev1/modules/m1/inputs/#", "dev1", "m1", FilterModuleInputs},
	}
	for _, tc := range tests {
		t.Run(tc.sdk, func(t *testing.T) {
			f, err := ParseFilter([]byte(tc.filter))
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tc.filter, err)
			}
			if f.Kind != tc.want {
				t.Errorf("kind %v, want %v", f.Kind, tc.want)
			}
			if !f.AllowedFor(tc.dev, tc.mod) {
				t.Errorf("%q not allowed for %s/%s", tc.filter, tc.dev, tc.mod)
			}
		})
	}
}

// TestFilterAllowedFor: per-identity filters must name the subscriber.
func TestFilterAllowedFor(t *testing.T) {
	tests := []struct {
		filter, dev, mod string
		want             bool
	}{
		{"devices/d1/messages/devicebound/#", "d1", "", true},
		{"devices/d2/messages/devicebound/#", "d1", "", false},
		{"devices/d1/messages/devicebound/#", "d1", "m", false}, // modules get no C2D
		{"devices/+/messages/devicebound/#", "d1", "", true},
		{"devices/+/messages/devicebound/#", "d1", "m", false},
		{"devices/d1/modules/m/#", "d1", "m", true},
		{"devices/d1/modules/m/#", "d1", "n", false},
		{"devices/d1/modules/m/#", "d1", "", false},
		{"devices/d1/modules/m/inputs/#", "d2", "m", false},
		{"devices/d1/modules/m/messages/devicebound/#", "d1", "m", true},
		{"devices/d1/modules/m/messages/devicebound/#", "d1", "x", false},
		{"devices/d%3A1/messages/devicebound/#", "d:1", "", true},
		{"devices/d%3A1/messages/devicebound/#", "d:2", "", false},
		{"devices/d%253A1/messages/devicebound/#", "d%3A1", "", true}, // Python encodes a literal '%'
		{"$iothub/twin/res/#", "d1", "", true},
		{"$iothub/methods/POST/#", "d1", "m", true},
	}
	for _, tc := range tests {
		f, err := ParseFilter([]byte(tc.filter))
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", tc.filter, err)
		}
		if got := f.AllowedFor(tc.dev, tc.mod); got != tc.want {
			t.Errorf("%q AllowedFor(%q, %q) = %v, want %v", tc.filter, tc.dev, tc.mod, got, tc.want)
		}
	}
	// Wildcards elsewhere stay unsupported.
	for _, s := range []string{"devices/+/modules/m/#", "devices/d/modules/+/#", "devices/+/messages/events/#",
		"devices/d/modules/m/messages/devicebound/+", "devices/+/messages/devicebound/+"} {
		if _, err := ParseFilter([]byte(s)); !errors.Is(err, ErrUnsupportedFilter) {
			t.Errorf("ParseFilter(%q) = %v, want ErrUnsupportedFilter", s, err)
		}
	}
}

// TestFilterMatchesSDKSpellings: a hub → device topic is delivered to the
// subscription the SDK made, whichever spelling of the id either side used.
func TestFilterMatchesSDKSpellings(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"devices/+/messages/devicebound/#", "devices/dev1/messages/devicebound/%24.mid=1", true},
		{"devices/+/messages/devicebound/#", "$iothub/twin/res/200/?$rid=1", false},
		{"devices/00%3A11/messages/devicebound/#", "devices/00:11/messages/devicebound/", true},
		{"devices/00%3A11/messages/devicebound/#", "devices/00%3A11/messages/devicebound/", true},
		{"devices/00%3A11/messages/devicebound/#", "devices/00:12/messages/devicebound/", false},
		{"devices/a%40b/modules/m/inputs/#", "devices/a@b/modules/m/inputs/in1/", true},
		{"devices/d/modules/m/messages/devicebound/#", "devices/d/modules/m/inputs/in1/", false},
	}
	for _, tc := range tests {
		f, err := ParseFilter([]byte(tc.filter))
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", tc.filter, err)
		}
		r, err := ParseTopic([]byte(tc.topic))
		if err != nil {
			t.Fatalf("ParseTopic(%q): %v", tc.topic, err)
		}
		if got := f.Matches(&r); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

// TestSDKDevicePublishes: every topic an SDK publishes parses to the right
// route, is publishable by the identity that sent it, and its bag decodes
// to what the application set.
func TestSDKDevicePublishes(t *testing.T) {
	tests := []struct {
		sdk, topic string
		dev, mod   string
		kind       RouteKind
		rid        string
		props      *Properties // telemetry: the decoded bag
	}{
		// C: system keys spelled %24., values raw unless OPTION_AUTO_URL_ENCODE_DECODE.
		{"C/telemetry-raw-values", "devices/dev1/messages/events/temp=high temp&%24.cid=c1&%24.mid=m1&%24.ct=application/json&%24.ce=utf-8",
			"dev1", "", RouteTelemetry, "", &Properties{MessageID: "m1", CorrelationID: "c1", ContentType: "application/json",
				ContentEncoding: "utf-8", App: []Property{{Key: "temp", Value: "high temp"}}}},
		{"C/telemetry-encoded-ct", "devices/dev1/messages/events/%24.ct=application%2fjson&%24.ce=utf-8",
			"dev1", "", RouteTelemetry, "", &Properties{ContentType: "application/json", ContentEncoding: "utf-8"}},
		{"C/module-output-trailing-slash", "devices/dev1/modules/m1/messages/events/k=v&%24.on=out1/",
			"dev1", "m1", RouteTelemetry, "", &Properties{OutputName: "out1", App: []Property{{Key: "k", Value: "v"}}}},
		{"C/diag", "devices/dev1/messages/events/%24.diagid=abc&%24.diagctx=creationtimeutc%3D2020-01-01T00%3A00%3A00.000Z",
			"dev1", "", RouteTelemetry, "", &Properties{DiagID: "abc", DiagContext: "creationtimeutc=2020-01-01T00:00:00.000Z"}},
		{"C/security-ifid", "devices/dev1/messages/events/%24.ifid=urn%3Aazureiot%3ASecurity%3ASecurityAgent%3A1",
			"dev1", "", RouteTelemetry, "", &Properties{InterfaceID: "urn:azureiot:Security:SecurityAgent:1"}},
		{"C/twin-get", "$iothub/twin/GET/?$rid=3", "dev1", "", RouteTwinGet, "3", nil},
		{"C/twin-patch", "$iothub/twin/PATCH/properties/reported/?$rid=4", "dev1", "", RouteTwinPatchReported, "4", nil},
		{"C/method-res-negative", "$iothub/methods/res/-1/?$rid=7", "dev1", "", RouteMethodResponse, "7", nil},
		// Embedded C: system keys spelled $. unencoded.
		{"EmbeddedC/telemetry-pnp", "devices/dev1/messages/events/$.sub=thermostat1&$.ct=application%2Fjson&$.ce=utf-8",
			"dev1", "", RouteTelemetry, "", &Properties{Subject: "thermostat1", ContentType: "application/json", ContentEncoding: "utf-8"}},
		// C#: the bag is followed by '/'; a null value is a bare key.
		{"C#/telemetry", "devices/dev1/messages/events/%24.mid=a1&%24.ctime=2020-01-01T00%3A00%3A00.0000000Z&flag&k=v%20w/",
			"dev1", "", RouteTelemetry, "", &Properties{MessageID: "a1", CreationTime: "2020-01-01T00:00:00.0000000Z",
				App: []Property{{Key: "flag", Null: true}, {Key: "k", Value: "v w"}}}},
		{"C#/module-telemetry", "devices/dev1/modules/m1/messages/events/%24.on=o/", "dev1", "m1", RouteTelemetry, "",
			&Properties{OutputName: "o"}},
		{"C#/twin-get-guid", "$iothub/twin/GET/?$rid=5e3b4d2f-8f4b-4c1e-9b1a-0d9f2c7e6a51", "dev1", "", RouteTwinGet,
			"5e3b4d2f-8f4b-4c1e-9b1a-0d9f2c7e6a51", nil},
		// Node: querystring.stringify for system keys, encodeURIComponent for the rest ('!*()' raw).
		{"Node/telemetry", "devices/dev1/messages/events/%24.mid=m&%24.to=%2Fdevices%2Fdev1&%24.exp=2030-01-01T00%3A00%3A00.000Z&a!b=(c)*",
			"dev1", "", RouteTelemetry, "", &Properties{MessageID: "m", To: "/devices/dev1", Expiry: "2030-01-01T00:00:00.000Z",
				App: []Property{{Key: "a!b", Value: "(c)*"}}}},
		{"Node/output-event", "devices/dev1/modules/m1/messages/events/%24.on=out&%24.mid=x/", "dev1", "m1", RouteTelemetry, "",
			&Properties{OutputName: "out", MessageID: "x"}},
		// Python: ids and values percent-encoded with quote(safe=""), '+' encoded, space %20.
		{"Python/telemetry-encoded-id", "devices/00%3A11%3A22/messages/events/%24.mid=1&a%2Bb=c%20d",
			"00:11:22", "", RouteTelemetry, "", &Properties{MessageID: "1", App: []Property{{Key: "a+b", Value: "c d"}}}},
		{"Python/module-telemetry-encoded-ids", "devices/a%40b/modules/m%24x/messages/events/%24.on=out",
			"a@b", "m$x", RouteTelemetry, "", &Properties{OutputName: "out"}},
		{"Python/method-res", "$iothub/methods/res/200/?$rid=m1", "00:11:22", "", RouteMethodResponse, "m1", nil},
		// Java: system keys $. raw, values URLEncoder with '+' turned into %20; modules end with '/'.
		{"Java/telemetry", "devices/dev1/messages/events/$.mid=1&$.ct=application%2Fjson&$.sub=c1&k=a%20b%2Bc",
			"dev1", "", RouteTelemetry, "", &Properties{MessageID: "1", ContentType: "application/json", Subject: "c1",
				App: []Property{{Key: "k", Value: "a b+c"}}}},
		{"Java/module-telemetry", "devices/dev1/modules/m1/messages/events/$.on=o/", "dev1", "m1", RouteTelemetry, "",
			&Properties{OutputName: "o"}},
		{"Java/twin-patch-with-version", "$iothub/twin/PATCH/properties/reported/?$rid=12&$version=0",
			"dev1", "", RouteTwinPatchReported, "12", nil},
		{"Java/twin-patch-version-minus-1", "$iothub/twin/PATCH/properties/reported/?$rid=13&$version=-1",
			"dev1", "", RouteTwinPatchReported, "13", nil},
		{"any/twin-get-extra-params", "$iothub/twin/GET/?$rid=1&foo=bar&flag", "dev1", "", RouteTwinGet, "1", nil},
		{"any/twin-patch-version-first", "$iothub/twin/PATCH/properties/reported/?$version=3&$rid=abc", "dev1", "", RouteTwinPatchReported, "abc", nil},
		{"any/twin-patch-encoded-keys", "$iothub/twin/PATCH/properties/reported/?%24rid=7&%24version=3", "dev1", "", RouteTwinPatchReported, "7", nil},
		{"any/method-res-extra-params", "$iothub/methods/res/200/?$rid=9&x=1", "dev1", "", RouteMethodResponse, "9", nil},
		{"any/method-status-int32-max", "$iothub/methods/res/2147483647/?$rid=9", "dev1", "", RouteMethodResponse, "9", nil},
		{"any/method-status-int32-min", "$iothub/methods/res/-2147483648/?$rid=9", "dev1", "", RouteMethodResponse, "9", nil},
	}
	for _, tc := range tests {
		t.Run(tc.sdk, func(t *testing.T) {
			r, err := ParseTopic([]byte(tc.topic))
			if err != nil {
				t.Fatalf("ParseTopic(%q): %v", tc.topic, err)
			}
			if r.Kind != tc.kind || string(r.RequestID) != tc.rid {
				t.Errorf("route %v rid %q, want %v %q", r.Kind, r.RequestID, tc.kind, tc.rid)
			}
			if !r.PublishableBy(tc.dev, tc.mod) {
				t.Errorf("not publishable by %s/%s", tc.dev, tc.mod)
			}
			if tc.props == nil {
				return
			}
			var got Properties
			if err := got.ParseD2C(r.Bag); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(*tc.props, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("properties (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPublishableByForeignEncodedID: the lenient id comparison does not let
// a device publish as another one.
func TestPublishableByForeignEncodedID(t *testing.T) {
	tests := []struct {
		topic, dev, mod string
	}{
		{"devices/00%3A11/messages/events/", "00:12", ""},
		{"devices/a%40b/modules/m%24y/messages/events/", "a@b", "m$x"},
		{"devices/a%40b/modules/m/messages/events/", "a@b", ""},
		{"devices/a/messages/events/", "a", "m"},
	}
	for _, tc := range tests {
		r, err := ParseTopic([]byte(tc.topic))
		if err != nil {
			t.Fatal(err)
		}
		if r.PublishableBy(tc.dev, tc.mod) {
			t.Errorf("%q publishable by %s/%s", tc.topic, tc.dev, tc.mod)
		}
	}
}

// TestMethodStatusRange: a device may answer with any 32-bit status.
func TestMethodStatusRange(t *testing.T) {
	for _, s := range []string{"2147483648", "-2147483649", "99999999999", "1e3", "+200", ""} {
		topic := "$iothub/methods/res/" + s + "/?$rid=1"
		if _, err := ParseTopic([]byte(topic)); !errors.Is(err, ErrMalformedTopic) {
			t.Errorf("ParseTopic(%q) = %v, want ErrMalformedTopic", topic, err)
		}
	}
	r, err := ParseTopic([]byte("$iothub/methods/res/1000000000/?$rid=1"))
	if err != nil || r.Status != 1000000000 {
		t.Fatalf("status %d err %v", r.Status, err)
	}
	if got := string(r.AppendTopic(nil)); !strings.HasPrefix(got, "$iothub/methods/res/1000000000/") {
		t.Errorf("rebuilt %q", got)
	}
}

// TestPythonEncodedLongIDs: an id of up to 128 characters stays valid when
// the Python SDK percent-encodes it in topics and filters (each ':' becomes
// three bytes), while an id that decodes to more than 128 does not.
func TestPythonEncodedLongIDs(t *testing.T) {
	id := strings.Repeat("a:", 64) // 128 characters, 256 once encoded
	enc := strings.ReplaceAll(id, ":", "%3A")
	r, err := ParseTopic([]byte("devices/" + enc + "/messages/events/k=v"))
	if err != nil {
		t.Fatalf("ParseTopic: %v", err)
	}
	if !r.PublishableBy(id, "") {
		t.Error("not publishable by its own device")
	}
	f, err := ParseFilter([]byte("devices/" + enc + "/messages/devicebound/#"))
	if err != nil {
		t.Fatalf("ParseFilter: %v", err)
	}
	if !f.AllowedFor(id, "") {
		t.Error("filter not allowed for its own device")
	}
	mod := strings.Repeat("m@", 64)
	encMod := strings.ReplaceAll(mod, "@", "%40")
	if r, err := ParseTopic([]byte("devices/" + enc + "/modules/" + encMod + "/messages/events/")); err != nil || !r.PublishableBy(id, mod) {
		t.Errorf("module topic: %v", err)
	}

	tooLong := strings.ReplaceAll(id+"a", ":", "%3A") // decodes to 129
	if _, err := ParseTopic([]byte("devices/" + tooLong + "/messages/events/")); !errors.Is(err, ErrMalformedTopic) {
		t.Errorf("129-character id: err = %v, want ErrMalformedTopic", err)
	}
	if _, err := ParseFilter([]byte("devices/" + tooLong + "/messages/devicebound/#")); !errors.Is(err, ErrUnsupportedFilter) {
		t.Errorf("129-character id filter: err = %v, want ErrUnsupportedFilter", err)
	}
	if _, err := ParseTopic([]byte("devices/" + strings.Repeat("a", 129) + "/messages/events/")); !errors.Is(err, ErrMalformedTopic) {
		t.Errorf("129-byte raw id: err = %v", err)
	}
}
