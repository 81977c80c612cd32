package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

func TestTwinReportAndGet(t *testing.T) {
	h := newTestHub(t)
	inv := invocation{env: h.env(t, "dev1")}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.UpdateDesired(ctx, "dev1", "", []byte(`{"interval":5}`)); err != nil {
		t.Fatal(err)
	}
	r := inv.hubwire(t, "twin", "report", `{"firmware":"1.4.2","battery":0.5}`)
	if r.code != 0 || r.stdout != "reported $version 2\n" {
		t.Fatalf("code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	twin, err := h.GetTwin("dev1", "")
	if err != nil {
		t.Fatal(err)
	}
	if twin.Properties.Reported["firmware"] != "1.4.2" {
		t.Errorf("hub's reported %v", twin.Properties.Reported)
	}
	// From stdin, deleting a member.
	r = invocation{env: inv.env, stdin: `{"battery":null}`}.hubwire(t, "twin", "report", "-", "--transport", "mqtt-ws")
	if r.code != 0 || r.stdout != "reported $version 3\n" {
		t.Fatalf("code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = inv.hubwire(t, "twin", "get")
	if r.code != 0 {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%q: %v", r.stdout, err)
	}
	want := `{"desired":{"$version":2,"interval":5},"reported":{"$version":3,"firmware":"1.4.2"}}`
	if b, _ := json.Marshal(got); !jsonEqual(b, []byte(want)) {
		t.Errorf("twin get printed %s, want %s", b, want)
	}
}

func TestTwinDeviceSideErrors(t *testing.T) {
	h := newTestHub(t)
	env := h.env(t, "dev1")
	wantOneLineError(t, invocation{env: env}.hubwire(t, "twin", "report", "[1,2]"), 2, "PATCH is not a JSON object")
	wantOneLineError(t, invocation{env: env}.hubwire(t, "twin", "report"), 2, "missing PATCH")
	wantOneLineError(t, invocation{env: env}.hubwire(t, "twin", "report", `{"$bad":1}`), 1, "invalid twin patch at $bad")
	wantOneLineError(t, invocation{env: env}.hubwire(t, "twin", "get", "extra"), 2, `unexpected argument "extra"`)
}
