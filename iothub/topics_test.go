package iothub

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// routeView is Route with strings, for readable comparisons.
type routeView struct {
	Kind       RouteKind
	DeviceID   string
	ModuleID   string
	InputName  string
	MethodName string
	Status     int
	RequestID  string
	Version    int64
	HasVersion bool
	Bag        string
}

func view(r Route) routeView {
	return routeView{
		Kind: r.Kind, DeviceID: string(r.DeviceID), ModuleID: string(r.ModuleID),
		InputName: string(r.InputName), MethodName: string(r.MethodName),
		Status: r.Status, RequestID: string(r.RequestID), Version: r.Version,
		HasVersion: r.HasVersion, Bag: string(r.Bag),
	}
}

func TestParseTopic(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		want  routeView
	}{
		// §3 telemetry, device → hub.
		{"telemetry/empty-bag", "devices/dev1/messages/events/",
			routeView{Kind: RouteTelemetry, DeviceID: "dev1"}},
		{"telemetry/no-trailing-slash", "devices/dev1/messages/events",
			routeView{Kind: RouteTelemetry, DeviceID: "dev1"}},
		{"telemetry/contract-example", "devices/dev1/messages/events/%24.mid=42&%24.ct=application%2Fjson&%24.ce=utf-8&alert=high%20temp",
			routeView{Kind: RouteTelemetry, DeviceID: "dev1", Bag: "%24.mid=42&%24.ct=application%2Fjson&%24.ce=utf-8&alert=high%20temp"}},
		{"telemetry/slash-after-bag", "devices/dev1/messages/events/a=1/",
			routeView{Kind: RouteTelemetry, DeviceID: "dev1", Bag: "a=1"}},
		{"telemetry/leading-question-mark", "devices/dev1/messages/events/?a=1",
			routeView{Kind: RouteTelemetry, DeviceID: "dev1", Bag: "a=1"}},
		{"telemetry/dollar-keys", "devices/dev1/messages/events/$.mid=1",
			routeView{Kind: RouteTelemetry, DeviceID: "dev1", Bag: "$.mid=1"}},
		{"telemetry/module", "devices/dev1/modules/mod-a/messages/events/k=v",
			routeView{Kind: RouteTelemetry, DeviceID: "dev1", ModuleID: "mod-a", Bag: "k=v"}},
		{"telemetry/module-no-slash", "devices/dev1/modules/mod-a/messages/events",
			routeView{Kind: RouteTelemetry, DeviceID: "dev1", ModuleID: "mod-a"}},
		{"telemetry/odd-id-chars", "devices/a:b.c+d%e_f#g*h?i!j(k)l,m=n@o;p$q'r/messages/events/",
			routeView{Kind: RouteTelemetry, DeviceID: "a:b.c+d%e_f#g*h?i!j(k)l,m=n@o;p$q'r"}},

		// §4 C2D, hub → device.
		{"c2d/observed", "devices/dev1/messages/devicebound/%24.mid=2c2d&%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound&%24.ce=utf-8&iothub-ack=none",
			routeView{Kind: RouteC2D, DeviceID: "dev1", Bag: "%24.mid=2c2d&%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound&%24.ce=utf-8&iothub-ack=none"}},
		{"c2d/empty-bag", "devices/dev1/messages/devicebound/",
			routeView{Kind: RouteC2D, DeviceID: "dev1"}},
		{"c2d/docs-leading-question-mark", "devices/dev1/messages/devicebound/?k=v",
			routeView{Kind: RouteC2D, DeviceID: "dev1", Bag: "k=v"}},
		{"module-input", "devices/dev1/modules/m1/inputs/in1/%24.mid=7&k",
			routeView{Kind: RouteModuleInput, DeviceID: "dev1", ModuleID: "m1", InputName: "in1", Bag: "%24.mid=7&k"}},
		{"module-input/no-bag", "devices/dev1/modules/m1/inputs/in1",
			routeView{Kind: RouteModuleInput, DeviceID: "dev1", ModuleID: "m1", InputName: "in1"}},

		// §5 twin.
		{"twin/get", "$iothub/twin/GET/?$rid=1",
			routeView{Kind: RouteTwinGet, RequestID: "1"}},
		{"twin/get-no-question-mark", "$iothub/twin/GET/$rid=abc",
			routeView{Kind: RouteTwinGet, RequestID: "abc"}},
		{"twin/patch-reported", "$iothub/twin/PATCH/properties/reported/?$rid=9f2c-44",
			routeView{Kind: RouteTwinPatchReported, RequestID: "9f2c-44"}},
		{"twin/desired", "$iothub/twin/PATCH/properties/desired/?$version=8",
			routeView{Kind: RouteTwinDesired, Version: 8, HasVersion: true}},
		{"twin/res-get", "$iothub/twin/res/200/?$rid=1",
			routeView{Kind: RouteTwinResponse, Status: 200, RequestID: "1"}},
		{"twin/res-patch", "$iothub/twin/res/204/?$rid=2&$version=17",
			routeView{Kind: RouteTwinResponse, Status: 204, RequestID: "2", Version: 17, HasVersion: true}},
		{"twin/res-version-first", "$iothub/twin/res/204/?$version=3&$rid=x",
			routeView{Kind: RouteTwinResponse, Status: 204, RequestID: "x", Version: 3, HasVersion: true}},
		{"twin/res-encoded-keys", "$iothub/twin/res/429/?%24rid=5",
			routeView{Kind: RouteTwinResponse, Status: 429, RequestID: "5"}},
		{"twin/res-extra-param", "$iothub/twin/res/400/?$rid=5&foo=bar",
			routeView{Kind: RouteTwinResponse, Status: 400, RequestID: "5"}},

		// §6 methods.
		{"method/request", "$iothub/methods/POST/reboot/?$rid=42",
			routeView{Kind: RouteMethodRequest, MethodName: "reboot", RequestID: "42"}},
		{"method/response", "$iothub/methods/res/200/?$rid=42",
			routeView{Kind: RouteMethodResponse, Status: 200, RequestID: "42"}},
		{"method/response-negative-status", "$iothub/methods/res/-1/?$rid=42",
			routeView{Kind: RouteMethodResponse, Status: -1, RequestID: "42"}},
		{"method/request-guid-rid", "$iothub/methods/POST/getLog/?$rid=1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
			routeView{Kind: RouteMethodRequest, MethodName: "getLog", RequestID: "1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseTopic([]byte(tc.topic))
			if err != nil {
				t.Fatalf("ParseTopic(%q): %v", tc.topic, err)
			}
			if diff := cmp.Diff(tc.want, view(r)); diff != "" {
				t.Errorf("ParseTopic(%q) mismatch (-want +got):\n%s", tc.topic, diff)
			}
			if got := r.Kind.FromDevice(); got != (r.Kind == RouteTelemetry || r.Kind == RouteTwinGet || r.Kind == RouteTwinPatchReported || r.Kind == RouteMethodResponse) {
				t.Errorf("FromDevice = %v", got)
			}
			// parse → build → parse is stable.
			again, err := ParseTopic(r.AppendTopic(nil))
			if err != nil {
				t.Fatalf("reparse of %q: %v", r.AppendTopic(nil), err)
			}
			if diff := cmp.Diff(view(r), view(again)); diff != "" {
				t.Errorf("rebuild %q not stable (-first +second):\n%s", r.AppendTopic(nil), diff)
			}
		})
	}
}

func TestParseTopicErrors(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		want  error
	}{
		{"empty", "", ErrUnknownTopic},
		{"other-family", "foo/bar", ErrUnknownTopic},
		{"devices-only", "devices/", ErrUnknownTopic},
		{"no-subpath", "devices/dev1", ErrUnknownTopic},
		{"unknown-subpath", "devices/dev1/messages/other", ErrUnknownTopic},
		{"events-suffix", "devices/dev1/messages/eventsX", ErrUnknownTopic},
		{"module-c2d", "devices/dev1/modules/m/messages/devicebound/", ErrUnknownTopic},
		{"empty-device-id", "devices//messages/events/", ErrMalformedTopic},
		{"bad-device-char", "devices/dev 1/messages/events/", ErrMalformedTopic},
		{"long-device-id", "devices/" + strings.Repeat("a", 129) + "/messages/events/", ErrMalformedTopic},
		{"empty-module-id", "devices/d/modules//messages/events/", ErrMalformedTopic},
		{"empty-input", "devices/d/modules/m/inputs//x", ErrMalformedTopic},
		{"iothub-unknown", "$iothub/twin/DELETE/?$rid=1", ErrUnknownTopic},
		{"iothub-bare", "$iothub/", ErrUnknownTopic},
		{"twin-get-no-rid", "$iothub/twin/GET/", ErrMalformedTopic},
		{"twin-get-empty-rid", "$iothub/twin/GET/?$rid=", ErrMalformedTopic},
		{"twin-get-bare-rid", "$iothub/twin/GET/?$rid", ErrMalformedTopic},
		{"twin-res-no-status-slash", "$iothub/twin/res/200", ErrMalformedTopic},
		{"twin-res-bad-status", "$iothub/twin/res/2x0/?$rid=1", ErrMalformedTopic},
		{"twin-res-empty-status", "$iothub/twin/res//?$rid=1", ErrMalformedTopic},
		{"twin-res-huge-status", "$iothub/twin/res/12345678901/?$rid=1", ErrMalformedTopic},
		{"twin-res-bad-version", "$iothub/twin/res/204/?$rid=1&$version=x", ErrMalformedTopic},
		{"desired-no-version", "$iothub/twin/PATCH/properties/desired/", ErrMalformedTopic},
		{"desired-negative-version", "$iothub/twin/PATCH/properties/desired/?$version=-1", ErrMalformedTopic},
		{"method-no-name", "$iothub/methods/POST//?$rid=1", ErrMalformedTopic},
		{"method-no-query", "$iothub/methods/POST/reboot", ErrMalformedTopic},
		{"method-res-no-rid", "$iothub/methods/res/200/?", ErrMalformedTopic},
		{"too-long", "devices/d/messages/events/" + strings.Repeat("k", MaxTopicLen), ErrMalformedTopic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseTopic([]byte(tc.topic))
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseTopic(%q) = %v, %v; want error %v", tc.topic, view(r), err, tc.want)
			}
			var te *TopicError
			if !errors.As(err, &te) {
				t.Errorf("error %T is not a *TopicError", err)
			}
		})
	}
}

func TestBuilders(t *testing.T) {
	props := &Properties{MessageID: "42", ContentType: "application/json", ContentEncoding: "utf-8"}
	props.Add("alert", "high temp")
	c2d := &Properties{MessageID: "2c2d", To: "/devices/dev1/messages/devicebound", ContentEncoding: "utf-8", Ack: "none"}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"telemetry", AppendTelemetryTopic(nil, "dev1", "", props),
			"devices/dev1/messages/events/%24.mid=42&%24.ct=application%2Fjson&%24.ce=utf-8&alert=high%20temp"},
		{"telemetry/no-props", AppendTelemetryTopic(nil, "dev1", "", nil), "devices/dev1/messages/events/"},
		{"telemetry/module", AppendTelemetryTopic(nil, "dev1", "mod", nil), "devices/dev1/modules/mod/messages/events/"},
		{"telemetry/pairs", AppendPair(AppendTelemetryTopic(nil, "d", "", nil), "a b", "c+d"),
			"devices/d/messages/events/a%20b=c%2Bd"},
		{"c2d-filter", AppendC2DFilter(nil, "dev1"), "devices/dev1/messages/devicebound/#"},
		{"c2d", AppendC2DTopic(nil, "dev1", c2d),
			"devices/dev1/messages/devicebound/%24.mid=2c2d&%24.ce=utf-8&%24.to=%2Fdevices%2Fdev1%2Fmessages%2Fdevicebound&iothub-ack=none"},
		{"module-filter", AppendModuleFilter(nil, "d", "m"), "devices/d/modules/m/#"},
		{"module-input", AppendModuleInputTopic(nil, "d", "m", "in1", &Properties{MessageID: "1"}),
			"devices/d/modules/m/inputs/in1/%24.mid=1"},
		{"twin-get", AppendTwinGetTopic(nil, "1"), "$iothub/twin/GET/?$rid=1"},
		{"twin-patch", AppendTwinPatchReportedTopic(nil, []byte("2")), "$iothub/twin/PATCH/properties/reported/?$rid=2"},
		{"twin-desired", AppendTwinDesiredTopic(nil, 8), "$iothub/twin/PATCH/properties/desired/?$version=8"},
		{"twin-res-get", AppendTwinResponseTopic(nil, 200, "1", -1), "$iothub/twin/res/200/?$rid=1"},
		{"twin-res-patch", AppendTwinResponseTopic(nil, 204, "2", 17), "$iothub/twin/res/204/?$rid=2&$version=17"},
		{"method-req", AppendMethodRequestTopic(nil, "reboot", "42"), "$iothub/methods/POST/reboot/?$rid=42"},
		{"method-res", AppendMethodResponseTopic(nil, 501, []byte("42")), "$iothub/methods/res/501/?$rid=42"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Errorf("got  %s\nwant %s", tc.got, tc.want)
			}
		})
	}
	if TwinResponseFilter != "$iothub/twin/res/#" || TwinDesiredFilter != "$iothub/twin/PATCH/properties/desired/#" || MethodsFilter != "$iothub/methods/POST/#" {
		t.Error("filter constants differ from contract §7")
	}
}

func TestBuildersAppend(t *testing.T) {
	// Builders append: existing bytes of dst are kept.
	got := AppendTwinGetTopic([]byte("x|"), "7")
	if string(got) != "x|$iothub/twin/GET/?$rid=7" {
		t.Errorf("got %q", got)
	}
}

func TestParseFilter(t *testing.T) {
	ok := []struct {
		filter string
		want   FilterKind
		dev    string
		mod    string
	}{
		{"devices/dev1/messages/devicebound/#", FilterC2D, "dev1", ""},
		{"$iothub/twin/res/#", FilterTwinResponses, "", ""},
		{"$iothub/twin/PATCH/properties/desired/#", FilterTwinDesired, "", ""},
		{"$iothub/methods/POST/#", FilterMethods, "", ""},
		{"devices/d/modules/m/#", FilterModule, "d", "m"},
		{"devices/d/modules/m/inputs/#", FilterModuleInputs, "d", "m"},
	}
	for _, tc := range ok {
		t.Run("ok/"+tc.filter, func(t *testing.T) {
			f, err := ParseFilter([]byte(tc.filter))
			if err != nil {
				t.Fatal(err)
			}
			if f.Kind != tc.want || string(f.DeviceID) != tc.dev || string(f.ModuleID) != tc.mod {
				t.Errorf("got %v %q %q", f.Kind, f.DeviceID, f.ModuleID)
			}
		})
	}
	bad := []string{
		"#", "+", "devices/#", "devices/+/modules/m/#",
		"devices/dev1/messages/devicebound/+", "devices/dev1/messages/devicebound",
		"devices/dev1/messages/devicebound/%24.mid=1", "devices/dev1/messages/events/",
		"$iothub/twin/res/200/#", "$iothub/twin/#", "$iothub/methods/POST/reboot/#",
		"$iothub/twin/PATCH/properties/reported/#", "devices/d/modules/m/inputs/in1/#",
		"devices/a#b/messages/devicebound/#", "devices/a+b/messages/devicebound/#",
		"devices/d/modules/m+/#", "devices/d/modules//#", "$iothub/methods/res/#", "",
	}
	for _, f := range bad {
		t.Run("bad/"+f, func(t *testing.T) {
			if _, err := ParseFilter([]byte(f)); !errors.Is(err, ErrUnsupportedFilter) {
				t.Errorf("ParseFilter(%q) = %v, want ErrUnsupportedFilter", f, err)
			}
		})
	}
}

func TestFilterMatches(t *testing.T) {
	route := func(s string) *Route {
		r, err := ParseTopic([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return &r
	}
	filter := func(s string) *Filter {
		f, err := ParseFilter([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return &f
	}
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"devices/d1/messages/devicebound/#", "devices/d1/messages/devicebound/a=1", true},
		{"devices/d1/messages/devicebound/#", "devices/d2/messages/devicebound/a=1", false},
		{TwinResponseFilter, "$iothub/twin/res/200/?$rid=1", true},
		{TwinResponseFilter, "$iothub/twin/PATCH/properties/desired/?$version=2", false},
		{TwinDesiredFilter, "$iothub/twin/PATCH/properties/desired/?$version=2", true},
		{MethodsFilter, "$iothub/methods/POST/x/?$rid=1", true},
		{MethodsFilter, "$iothub/methods/res/200/?$rid=1", false},
		{"devices/d/modules/m/#", "devices/d/modules/m/inputs/i/", true},
		{"devices/d/modules/m/inputs/#", "devices/d/modules/m/inputs/i/", true},
		{"devices/d/modules/m/#", "devices/d/modules/n/inputs/i/", false},
	}
	for _, tc := range tests {
		if got := filter(tc.filter).Matches(route(tc.topic)); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func TestRouteKindString(t *testing.T) {
	if RouteTwinResponse.String() != "twin-response" || RouteKind(200).String() != "RouteKind(200)" {
		t.Errorf("got %q %q", RouteTwinResponse.String(), RouteKind(200).String())
	}
	if FilterMethods.String() != "methods" || FilterKind(99).String() != "FilterKind(99)" {
		t.Errorf("got %q", FilterMethods.String())
	}
}

func TestPublishableBy(t *testing.T) {
	tests := []struct {
		topic, dev, mod string
		want            bool
	}{
		{"devices/d1/messages/events/", "d1", "", true},
		{"devices/d2/messages/events/", "d1", "", false},
		{"devices/d1/modules/m/messages/events/", "d1", "", false},
		{"devices/d1/modules/m/messages/events/", "d1", "m", true},
		{"devices/d1/messages/events/", "d1", "m", false},
		{"$iothub/twin/GET/?$rid=1", "d1", "", true},
		{"$iothub/twin/PATCH/properties/reported/?$rid=1", "d1", "m", true},
		{"$iothub/methods/res/200/?$rid=1", "d1", "", true},
		{"devices/d1/messages/devicebound/", "d1", "", false},
		{"$iothub/twin/res/200/?$rid=1", "d1", "", false},
		{"$iothub/twin/PATCH/properties/desired/?$version=1", "d1", "", false},
		{"$iothub/methods/POST/x/?$rid=1", "d1", "", false},
		{"devices/d1/modules/m/inputs/i/", "d1", "m", false},
	}
	for _, tc := range tests {
		r, err := ParseTopic([]byte(tc.topic))
		if err != nil {
			t.Fatal(err)
		}
		if got := r.PublishableBy(tc.dev, tc.mod); got != tc.want {
			t.Errorf("%q by %s/%s = %v, want %v", tc.topic, tc.dev, tc.mod, got, tc.want)
		}
	}
}
