package emulator

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/iothub/emulator/internal/eventlog"
)

func TestRecordRoundTrip(t *testing.T) {
	m := &Message{DeviceID: "d1", ModuleID: "m", Body: []byte("body\x00\xff"),
		SystemProperties: map[string]string{"message-id": "1", "iothub-connection-device-id": "d1"},
		Properties:       map[string]string{"a": "", "": "empty key kept by the codec"}}
	got, err := decodeRecord(eventlog.Record{Seq: 3, Data: appendRecord(nil, m)})
	if err != nil {
		t.Fatal(err)
	}
	want := *m
	want.SequenceNumber = 3
	want.SystemProperties = map[string]string{"message-id": "1", "iothub-connection-device-id": "d1", "iothub-enqueuedtime": got.SystemProperties["iothub-enqueuedtime"]}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatal(d)
	}
	// Records of the earlier JSON form still read.
	js, _ := json.Marshal(m)
	if old, err := decodeRecord(eventlog.Record{Data: js}); err != nil || old.DeviceID != "d1" || string(old.Body) != string(m.Body) {
		t.Fatalf("JSON record: %+v %v", old, err)
	}
	// Truncations fail cleanly.
	rec := appendRecord(nil, m)
	for i := 1; i < len(rec); i++ {
		if _, err := decodeRecord(eventlog.Record{Data: rec[:i]}); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
}

// TestAppendTelemetryMatchesMessage checks that the ingest path's direct
// encoding stores what newTelemetry's Message holds.
func TestAppendTelemetryMatchesMessage(t *testing.T) {
	h := &Hub{}
	auths := []authInfo{
		{deviceID: "d1", generationID: "g1", scope: "device", method: "sas"},
		{deviceID: "d2", moduleID: "m", generationID: "g2", scope: "module", method: "x509", modelID: "dtmi:x;1"},
	}
	bags := []string{"", "a=1", "a=1&b=2&a=3", "$.mid=7&$.ct=application%2Fjson&x=%20y", "=v&$.mid=1&$.mid=2&mqtt-retain=no", "k"}
	for _, a := range auths {
		for _, bag := range bags {
			for _, retain := range []bool{false, true} {
				topic := "devices/" + a.deviceID + "/messages/events/" + bag
				if a.moduleID != "" {
					topic = "devices/" + a.deviceID + "/modules/" + a.moduleID + "/messages/events/" + bag
				}
				r, err := iothub.ParseTopic([]byte(topic))
				if err != nil {
					t.Fatal(topic, err)
				}
				m, err := h.newTelemetry(&a, &r, []byte("body"), retain, false, time.Time{})
				if err != nil {
					t.Fatal(bag, err)
				}
				want, err := decodeRecord(eventlog.Record{Data: appendRecord(nil, m)})
				if err != nil {
					t.Fatal(err)
				}
				rec, err := appendTelemetry([]byte("prefix"), &a, a.authMethodJSON(), &r, []byte("body"), retain)
				if err != nil {
					t.Fatal(bag, err)
				}
				got, err := decodeRecord(eventlog.Record{Data: rec[len("prefix"):]})
				if err != nil {
					t.Fatal(bag, err)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("%s bag %q retain %v: %s", a.deviceID, bag, retain, d)
				}
			}
		}
	}
	r, _ := iothub.ParseTopic([]byte("devices/d1/messages/events/"))
	if _, err := appendTelemetry(nil, &auths[0], "", &r, make([]byte, MaxTelemetrySize+1), false); err == nil {
		t.Fatal("an oversized message was accepted")
	}
}
