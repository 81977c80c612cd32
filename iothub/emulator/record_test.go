package emulator

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
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
