//go:build !race

package iothub

import "testing"

// The 0-alloc claims of topics.go and properties.go.
func TestAllocs(t *testing.T) {
	p := benchProps()
	sys := benchProps()
	sys.MessageID, sys.ContentType = "42", "application/json"
	buf := make([]byte, 0, 512)
	rid := []byte("1f0e2d3c")
	c2dRoute, _ := ParseTopic(benchC2D)
	u := Username{Host: "hub.azure-devices.net", DeviceID: "dev1", ClientType: "hubwire/1", ModelID: "dtmi:com:example:Thermostat;1"}
	tab := NewCorrelator[int]("bench", "", nil)
	unknown, malformed := []byte("foo/bar"), []byte("$iothub/twin/res/2x/?$rid=1")
	oddKey := []byte("%24%2Ediagctx")
	// The Python SDK's percent-encoded ids.
	encFilter, _ := ParseFilter([]byte("devices/00%3A11%3A22/messages/devicebound/#"))
	encRoute, _ := ParseTopic([]byte("devices/00:11:22/messages/devicebound/%24.mid=1"))
	encTelemetry, _ := ParseTopic([]byte("devices/00%3A11%3A22/messages/events/%24.mid=1"))
	cases := []struct {
		name string
		f    func()
	}{
		{"AppendTelemetryTopic/props=2", func() { buf = AppendTelemetryTopic(buf[:0], "dev1", "", p) }},
		{"AppendTelemetryTopic/module+sys", func() { buf = AppendTelemetryTopic(buf[:0], "dev1", "m1", sys) }},
		{"AppendC2DTopic", func() { buf = AppendC2DTopic(buf[:0], "dev1", sys) }},
		{"AppendModuleInputTopic", func() { buf = AppendModuleInputTopic(buf[:0], "d", "m", "in", p) }},
		{"AppendTwinResponseTopic", func() { buf = AppendTwinResponseTopic(buf[:0], 204, rid, 17) }},
		{"AppendTwinGetTopic", func() { buf = AppendTwinGetTopic(buf[:0], "123") }},
		{"AppendTwinPatchReportedTopic", func() { buf = AppendTwinPatchReportedTopic(buf[:0], "123") }},
		{"AppendTwinDesiredTopic", func() { buf = AppendTwinDesiredTopic(buf[:0], 8) }},
		{"AppendMethodRequestTopic", func() { buf = AppendMethodRequestTopic(buf[:0], "reboot", rid) }},
		{"AppendMethodResponseTopic", func() { buf = AppendMethodResponseTopic(buf[:0], 200, rid) }},
		{"AppendC2DFilter", func() { buf = AppendC2DFilter(buf[:0], "dev1") }},
		{"Username.Append", func() { buf = u.Append(buf[:0]) }},
		{"Route.AppendTopic", func() { buf = c2dRoute.AppendTopic(buf[:0]) }},
		{"ParseTopic/c2d", func() { _, _ = ParseTopic(benchC2D) }},
		{"ParseTopic/twin-response", func() { _, _ = ParseTopic(benchTwinResponse) }},
		{"ParseTopic/method-request", func() { _, _ = ParseTopic(benchMethodRequest) }},
		{"ParseTopic/telemetry", func() { _, _ = ParseTopic(benchTelemetry) }},
		{"ParseTopic/unknown", func() { _, _ = ParseTopic(unknown) }},
		{"ParseTopic/malformed", func() { _, _ = ParseTopic(malformed) }},
		{"ParseFilter", func() { _, _ = ParseFilter([]byte("devices/dev1/messages/devicebound/#")) }},
		{"BagIter+ClassifyKey", func() {
			it := ScanBag(c2dRoute.Bag)
			for pr, ok := it.Next(); ok; pr, ok = it.Next() {
				_ = ClassifyKey(pr.Key)
			}
		}},
		{"ClassifyKey/encoded", func() { _ = ClassifyKey(oddKey) }},
		{"LookupBag", func() { _, _ = LookupBag(c2dRoute.Bag, "iothub-ack") }},
		{"AppendUnescape", func() { buf = AppendUnescape(buf[:0], c2dRoute.Bag) }},
		{"Correlator.Take/unknown", func() { _ = tab.Take(rid) }},
		{"Filter.Matches/encoded-id", func() { _ = encFilter.Matches(&encRoute) }},
		{"Filter.AllowedFor/encoded-id", func() { _ = encFilter.AllowedFor("00:11:22", "") }},
		{"Route.PublishableBy/encoded-id", func() { _ = encTelemetry.PublishableBy("00:11:22", "") }},
	}
	for _, tc := range cases {
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", tc.name, n)
		}
	}
}
