package iothub

import (
	"errors"
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
	if snap := h.Snapshot(); snap.Reported.Version != lastOK || len(appendObject(nil, snap.Reported.Props)) > MaxTwinSectionLen {
		t.Errorf("version %d (last ok %d), size %d", snap.Reported.Version, lastOK, len(appendObject(nil, snap.Reported.Props)))
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
