package iothub

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func parse(t *testing.T, topic []byte) Route {
	t.Helper()
	r, err := ParseTopic(topic)
	if err != nil {
		t.Fatalf("ParseTopic(%q): %v", topic, err)
	}
	return r
}

func TestHubTwinGet(t *testing.T) {
	h := NewHubTwin()
	if got := string(h.GetBody()); got != `{"desired":{"$version":1},"reported":{"$version":1}}` {
		t.Fatalf("new twin GET body %s", got)
	}
	r := parse(t, AppendTwinGetTopic(nil, "abc"))
	reply, ok := h.HandleRequest(&r, nil)
	if !ok || string(reply.Topic) != "$iothub/twin/res/200/?$rid=abc" {
		t.Fatalf("reply topic %q ok=%v", reply.Topic, ok)
	}
	if string(reply.Payload) != `{"desired":{"$version":1},"reported":{"$version":1}}` {
		t.Errorf("reply body %s", reply.Payload)
	}
}

func TestHubTwinPatchReported(t *testing.T) {
	h := NewHubTwin()
	steps := []struct {
		body      string
		wantTopic string
		wantGet   string
	}{
		{`{"fw":"1.0","net":{"ip":"10.0.0.2","mask":8}}`, "$iothub/twin/res/204/?$rid=1&$version=2",
			`{"desired":{"$version":1},"reported":{"fw":"1.0","net":{"ip":"10.0.0.2","mask":8},"$version":2}}`},
		{`{"net":{"mask":null},"up":true}`, "$iothub/twin/res/204/?$rid=2&$version=3",
			`{"desired":{"$version":1},"reported":{"fw":"1.0","net":{"ip":"10.0.0.2"},"up":true,"$version":3}}`},
		{`{"bad.key":1}`, "$iothub/twin/res/400/?$rid=3", // rejected: nothing changes
			`{"desired":{"$version":1},"reported":{"fw":"1.0","net":{"ip":"10.0.0.2"},"up":true,"$version":3}}`},
		{`not json`, "$iothub/twin/res/400/?$rid=4",
			`{"desired":{"$version":1},"reported":{"fw":"1.0","net":{"ip":"10.0.0.2"},"up":true,"$version":3}}`},
		{`{"fw":null,"net":null,"up":null}`, "$iothub/twin/res/204/?$rid=5&$version=4",
			`{"desired":{"$version":1},"reported":{"$version":4}}`},
	}
	for i, s := range steps {
		r := parse(t, AppendTwinPatchReportedTopic(nil, string(rune('1'+i))))
		reply, ok := h.HandleRequest(&r, []byte(s.body))
		if !ok || string(reply.Topic) != s.wantTopic || len(reply.Payload) != 0 {
			t.Fatalf("step %d: reply %q %q ok=%v, want %q", i, reply.Topic, reply.Payload, ok, s.wantTopic)
		}
		if got := string(h.GetBody()); got != s.wantGet {
			t.Fatalf("step %d: twin\n got %s\nwant %s", i, got, s.wantGet)
		}
	}
}

func TestHubTwinSectionLimit(t *testing.T) {
	h := NewHubTwin()
	chunk := strings.Repeat("x", 4000)
	var err error
	var v, lastOK int64
	for i := 0; i < 10 && err == nil; i++ {
		if v, err = h.PatchReported([]byte(`{"k` + string(rune('a'+i)) + `":"` + chunk + `"}`)); err == nil {
			lastOK = v
		}
	}
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("err = %v after filling the section, want ErrBadRequest", err)
	}
	if snap := h.Snapshot(); snap.Reported.Version != lastOK || TwinSectionSize(snap.Reported.Props) > MaxTwinSectionLen {
		t.Errorf("version %d (last ok %d), size %d", snap.Reported.Version, lastOK, TwinSectionSize(snap.Reported.Props))
	}
}

func TestHubTwinUpdateDesired(t *testing.T) {
	h := NewHubTwin()
	act, v, err := h.UpdateDesired([]byte(`{"fw":"1.2","old":{"x":1}}`))
	if err != nil || v != 2 {
		t.Fatalf("v=%d err=%v", v, err)
	}
	if string(act.Topic) != "$iothub/twin/PATCH/properties/desired/?$version=2" ||
		string(act.Payload) != `{"fw":"1.2","old":{"x":1},"$version":2}` {
		t.Errorf("notification %s %s", act.Topic, act.Payload)
	}
	act, v, err = h.UpdateDesired([]byte(`{"old":null}`))
	if err != nil || v != 3 || string(act.Payload) != `{"old":null,"$version":3}` {
		t.Fatalf("v=%d err=%v body %s", v, err, act.Payload)
	}
	if got := string(h.GetBody()); got != `{"desired":{"fw":"1.2","$version":3},"reported":{"$version":1}}` {
		t.Errorf("twin %s", got)
	}
	if _, _, err := h.UpdateDesired([]byte(`{"$x":1}`)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("err = %v", err)
	}
	act, v, err = h.ReplaceDesired([]byte(`{"mode":"eco","z":null}`))
	if err != nil || v != 4 || string(act.Payload) != `{"fw":null,"mode":"eco","$version":4}` {
		t.Fatalf("replace: v=%d err=%v body %s", v, err, act.Payload)
	}
	if got := string(h.GetBody()); got != `{"desired":{"mode":"eco","$version":4},"reported":{"$version":1}}` {
		t.Errorf("twin after replace %s", got)
	}
}

func TestHubTwinRestore(t *testing.T) {
	h := NewHubTwin()
	if _, _, err := h.UpdateDesired([]byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	h2 := RestoreHubTwin(h.Snapshot())
	if string(h2.GetBody()) != string(h.GetBody()) {
		t.Errorf("restored %s, want %s", h2.GetBody(), h.GetBody())
	}
	if string(RestoreHubTwin(Twin{}).GetBody()) != `{"desired":{"$version":0},"reported":{"$version":0}}` {
		t.Error("zero restore")
	}
	r := parse(t, []byte("$iothub/methods/POST/x/?$rid=1"))
	if _, ok := h.HandleRequest(&r, nil); ok {
		t.Error("HandleRequest accepted a method route")
	}
}

// TestTwinSectionSizeAsDocumented: the 32 KB limit of a section is counted
// the way the device-twins guide says (keys and string values by their
// UTF-8 bytes without control characters, numbers 8 bytes, booleans 4,
// nested objects as the sum of their members, $-members excluded), not by
// the length of the JSON text, and only operations that grow a section past
// it are refused.
func TestTwinSectionSizeAsDocumented(t *testing.T) {
	many := func(n int, value string) string { // n members "k0000": value
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"k%04d":%s`, i, value)
		}
		b.WriteString("}")
		return b.String()
	}
	sizes := []struct {
		name string
		doc  string
		want int
	}{
		{"empty", `{}`, 0},
		{"string", `{"ab":"xyz"}`, 5},
		{"utf8", `{"é":"日本"}`, 2 + 6},
		{"number", `{"n":1.5}`, 1 + 8},
		{"bool", `{"b":true}`, 1 + 4},
		{"nested", `{"o":{"a":"x","b":2}}`, 1 + (1 + 1) + (1 + 8)},
		{"array", `{"a":[1,"xy",true]}`, 1 + 8 + 2 + 4},
	}
	for _, tc := range sizes {
		if got := TwinSectionSize(obj(t, tc.doc)); got != tc.want {
			t.Errorf("%s: TwinSectionSize(%s) = %d, want %d", tc.name, tc.doc, got, tc.want)
		}
	}

	// 2000 members of 5-byte keys and 10-byte strings: 30,000 bytes as IoT
	// Hub counts them (about 42,000 bytes of JSON).
	fits := many(2000, `"0123456789"`)
	over := many(2200, `"0123456789"`) // 33,000
	h := NewHubTwin()
	if _, err := h.PatchReported([]byte(fits)); err != nil {
		t.Fatalf("a 30,000-byte section was refused: %v", err)
	}
	if _, _, err := h.UpdateDesired([]byte(fits)); err != nil {
		t.Fatalf("a 30,000-byte desired section was refused: %v", err)
	}
	if _, err := NewHubTwin().PatchReported([]byte(over)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("a 33,000-byte section: err = %v, want ErrBadRequest", err)
	}
	if _, _, err := NewHubTwin().ReplaceDesired([]byte(over)); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("replace with a 33,000-byte section: err = %v, want ErrBadRequest", err)
	}

	// A twin already over the limit (restored state) may still shrink.
	big := RestoreHubTwin(Twin{
		Desired:  TwinSection{Version: 1, Props: obj(t, over)},
		Reported: TwinSection{Version: 1, Props: obj(t, over)},
	})
	if _, err := big.PatchReported([]byte(`{"k0000":null}`)); err != nil {
		t.Errorf("shrinking an oversized section was refused: %v", err)
	}
	if _, err := big.PatchReported([]byte(`{"k0001":"01234567890"}`)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("growing an oversized section: err = %v, want ErrBadRequest", err)
	}
}
