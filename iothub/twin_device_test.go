package iothub

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

// twinPair is a DeviceTwin talking to a HubTwin through topics only.
type twinPair struct {
	t   *testing.T
	clk *ManualClock
	dev *DeviceTwin
	hub *HubTwin
}

func newTwinPair(t *testing.T) *twinPair {
	clk := NewManualClock(epoch)
	return &twinPair{t: t, clk: clk, dev: NewDeviceTwin(DeviceTwinConfig{Clock: clk, Timeout: 5 * time.Second}), hub: NewHubTwin()}
}

// serve lets the hub answer a device request and returns the reply.
func (p *twinPair) serve(a Action) Action {
	p.t.Helper()
	r := parse(p.t, a.Topic)
	reply, ok := p.hub.HandleRequest(&r, a.Payload)
	if !ok {
		p.t.Fatalf("hub did not handle %q", a.Topic)
	}
	return reply
}

// deliver feeds a hub publish to the device.
func (p *twinPair) deliver(a Action) TwinEffects {
	p.t.Helper()
	r := parse(p.t, a.Topic)
	fx, err := p.dev.Handle(&r, a.Payload)
	if err != nil {
		p.t.Fatalf("Handle(%q): %v", a.Topic, err)
	}
	return fx
}

// desired makes the hub change desired properties and returns the
// notification (not yet delivered).
func (p *twinPair) desired(patch string) Action {
	p.t.Helper()
	a, _, err := p.hub.UpdateDesired([]byte(patch))
	if err != nil {
		p.t.Fatal(err)
	}
	return a
}

func (p *twinPair) sync() TwinEffects {
	p.t.Helper()
	get, w := p.dev.Get()
	fx := p.deliver(p.serve(get))
	if _, err := w.Wait(waitCtx(p.t)); err != nil {
		p.t.Fatalf("GET: %v", err)
	}
	return fx
}

func (p *twinPair) checkDesired(wantVersion int64, wantJSON string) {
	p.t.Helper()
	v, props, ok := p.dev.Desired()
	if !ok || v != wantVersion || js(p.t, props) != wantJSON {
		p.t.Fatalf("device desired v%d %s (ok=%v), want v%d %s", v, js(p.t, props), ok, wantVersion, wantJSON)
	}
}

func updatesJSON(t *testing.T, us []DesiredUpdate) []string {
	var out []string
	for _, u := range us {
		kind := "patch"
		switch {
		case u.Full:
			kind = "full"
		case u.Resync:
			kind = "resync"
		}
		out = append(out, kind+" v"+itoa(u.Version)+" "+js(t, u.Patch))
	}
	return out
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func wantUpdates(t *testing.T, fx TwinEffects, want ...string) {
	t.Helper()
	got := updatesJSON(t, fx.Updates)
	if len(got) != len(want) {
		t.Fatalf("updates %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("updates %q, want %q", got, want)
		}
	}
}

func TestDeviceTwinStartAndNotifications(t *testing.T) {
	p := newTwinPair(t)
	p.desired(`{"fw":"1.0"}`) // v2, before the device is online: never delivered
	fx := p.sync()
	wantUpdates(t, fx, `full v2 {"fw":"1.0"}`)
	p.checkDesired(2, `{"fw":"1.0"}`)

	// Next version: applied.
	fx = p.deliver(p.desired(`{"fw":"1.1","mode":{"a":1}}`))
	wantUpdates(t, fx, `patch v3 {"fw":"1.1","mode":{"a":1}}`)
	if len(fx.Publish) != 0 || fx.Sync != nil {
		t.Fatal("no GET expected")
	}
	n4 := p.desired(`{"mode":{"a":null,"b":2}}`)
	wantUpdates(t, p.deliver(n4), `patch v4 {"mode":{"a":null,"b":2}}`)
	p.checkDesired(4, `{"fw":"1.1","mode":{"b":2}}`)

	// A duplicate (same version) is dropped.
	wantUpdates(t, p.deliver(n4))
	p.checkDesired(4, `{"fw":"1.1","mode":{"b":2}}`)
}

func TestDeviceTwinGapRecovery(t *testing.T) {
	p := newTwinPair(t)
	p.sync()
	p.checkDesired(1, `{}`)
	p.deliver(p.desired(`{"a":1}`)) // v2
	p.desired(`{"b":2}`)            // v3: lost
	n4 := p.desired(`{"a":null}`)   // v4: arrives, gap
	fx := p.deliver(n4)
	wantUpdates(t, fx)
	if len(fx.Publish) != 1 || fx.Sync == nil {
		t.Fatalf("gap must start a GET: %+v", fx)
	}
	if r := parse(t, fx.Publish[0].Topic); r.Kind != RouteTwinGet {
		t.Fatalf("published %q", fx.Publish[0].Topic)
	}
	// v5 arrives while the GET is in flight: buffered.
	n5 := p.desired(`{"c":3}`)
	get := fx.Publish[0]
	reply := p.serve(get) // snapshot at v5
	wantUpdates(t, p.deliver(n5))
	// The snapshot holds v5; buffered v4 and v5 are dropped as contained.
	fx = p.deliver(reply)
	wantUpdates(t, fx, `resync v5 {"a":null,"b":2,"c":3}`)
	if len(fx.Publish) != 0 {
		t.Fatal("no further GET expected")
	}
	p.checkDesired(5, `{"b":2,"c":3}`)
	// Normal flow resumes.
	wantUpdates(t, p.deliver(p.desired(`{"d":4}`)), `patch v6 {"d":4}`)
}

func TestDeviceTwinNotificationsDuringSync(t *testing.T) {
	p := newTwinPair(t)
	get, _ := p.dev.Get()
	reply := p.serve(get) // snapshot at v1
	// Notifications after the snapshot but before its reply arrives.
	n2 := p.desired(`{"x":1}`)
	n3 := p.desired(`{"y":2}`)
	wantUpdates(t, p.deliver(n3)) // out of order, buffered
	wantUpdates(t, p.deliver(n2))
	fx := p.deliver(reply)
	wantUpdates(t, fx, `full v1 {}`, `patch v2 {"x":1}`, `patch v3 {"y":2}`)
	p.checkDesired(3, `{"x":1,"y":2}`)
}

func TestDeviceTwinBufferedGapAfterSnapshot(t *testing.T) {
	p := newTwinPair(t)
	get, _ := p.dev.Get()
	reply := p.serve(get) // v1
	p.desired(`{"x":1}`)  // v2 lost
	n3 := p.desired(`{"y":2}`)
	p.deliver(n3)
	fx := p.deliver(reply)
	wantUpdates(t, fx, `full v1 {}`)
	if fx.Sync == nil || len(fx.Publish) != 1 {
		t.Fatal("a gap after the snapshot must start another GET")
	}
	fx = p.deliver(p.serve(fx.Publish[0]))
	wantUpdates(t, fx, `resync v3 {"x":1,"y":2}`)
	p.checkDesired(3, `{"x":1,"y":2}`)
}

func TestDeviceTwinReconnect(t *testing.T) {
	p := newTwinPair(t)
	p.sync()
	p.deliver(p.desired(`{"a":1,"b":{"c":1}}`))
	patch, w, err := p.dev.ReportProperties([]byte(`{"r":1}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = patch // lost with the connection
	p.dev.Disconnected()
	if _, err := w.Wait(waitCtx(t)); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("in-flight PATCH err = %v", err)
	}
	// While offline the service changes desired; nothing is queued.
	p.desired(`{"a":null,"b":{"d":2}}`)
	// Notifications received before the reconnect GET completes are buffered.
	fx := p.sync()
	wantUpdates(t, fx, `resync v3 {"a":null,"b":{"d":2}}`)
	p.checkDesired(3, `{"b":{"c":1,"d":2}}`)
	// Reconnect with nothing changed: no update.
	p.dev.Disconnected()
	wantUpdates(t, p.sync())
}

func TestDeviceTwinReportProperties(t *testing.T) {
	p := newTwinPair(t)
	p.sync()
	a, w, err := p.dev.ReportProperties([]byte(`{"temp":21.5,"fw":{"v":"1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r := parse(t, a.Topic); r.Kind != RouteTwinPatchReported || string(r.RequestID) != w.RequestID() {
		t.Fatalf("topic %q", a.Topic)
	}
	p.deliver(p.serve(a))
	reply, err := w.Wait(waitCtx(t))
	if err != nil || reply.Status != 204 || reply.Version != 2 {
		t.Fatalf("reply %+v err %v", reply, err)
	}
	if v, props := p.dev.Reported(); v != 2 || js(t, props) != `{"fw":{"v":"1"},"temp":21.5}` {
		t.Errorf("reported v%d %s", v, js(t, props))
	}
	// Invalid locally: nothing to publish.
	if _, _, err := p.dev.ReportProperties([]byte(`{"$bad":1}`)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("err = %v", err)
	}
}

func TestDeviceTwinStatusErrors(t *testing.T) {
	tests := []struct {
		status int
		want   error
	}{
		{400, ErrBadRequest}, {401, ErrUnauthorized}, {404, ErrDeviceNotFound},
		{412, ErrPreconditionFailed}, {429, ErrThrottled}, {500, ErrServerError}, {503, ErrServerError},
	}
	for _, tc := range tests {
		p := newTwinPair(t)
		a, w, err := p.dev.ReportProperties([]byte(`{"x":1}`))
		if err != nil {
			t.Fatal(err)
		}
		rid := parse(t, a.Topic).RequestID
		p.deliver(Action{Topic: AppendTwinResponseTopic(nil, tc.status, rid, -1), Payload: []byte(`{"message":"no"}`)})
		_, err = w.Wait(waitCtx(t))
		var se *StatusError
		if !errors.Is(err, tc.want) || !errors.As(err, &se) {
			t.Fatalf("status %d: err = %v, want %v", tc.status, err, tc.want)
		}
		if se.Status != tc.status || se.RequestID != string(rid) || se.Op != "twin PATCH reported" || string(se.Body) != `{"message":"no"}` {
			t.Errorf("status %d: %+v", tc.status, se)
		}
	}
	// A failed GET leaves the twin unsynchronised; the caller retries.
	p := newTwinPair(t)
	get, w := p.dev.Get()
	rid := parse(t, get.Topic).RequestID
	p.deliver(Action{Topic: AppendTwinResponseTopic(nil, 429, rid, -1)})
	if _, err := w.Wait(waitCtx(t)); !errors.Is(err, ErrThrottled) {
		t.Fatalf("GET err = %v", err)
	}
	if _, _, ok := p.dev.Desired(); ok {
		t.Error("synchronised after a failed GET")
	}
	wantUpdates(t, p.sync(), `full v1 {}`)
}

func TestDeviceTwinTimeouts(t *testing.T) {
	p := newTwinPair(t)
	_, getW := p.dev.Get()
	_, patchW, err := p.dev.ReportProperties([]byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	p.clk.Advance(5 * time.Second)
	for _, w := range []*Waiter[TwinReply]{getW, patchW} {
		if _, err := w.Wait(waitCtx(t)); !errors.Is(err, ErrTimeout) {
			t.Errorf("err = %v, want ErrTimeout", err)
		}
	}
	if p.dev.Pending() != 0 {
		t.Errorf("Pending = %d", p.dev.Pending())
	}
	// The late reply is stale.
	r := parse(t, AppendTwinResponseTopic(nil, 200, getW.RequestID(), -1))
	if _, err := p.dev.Handle(&r, []byte(`{"desired":{"$version":1},"reported":{"$version":1}}`)); !errors.Is(err, ErrStaleResponse) {
		t.Errorf("late reply err = %v", err)
	}
}

func TestDeviceTwinLegacyAndOddReplies(t *testing.T) {
	p := newTwinPair(t)
	// Old hubs: PATCH success is 200 without $version.
	a, w, _ := p.dev.ReportProperties([]byte(`{"x":1}`))
	p.deliver(Action{Topic: AppendTwinResponseTopic(nil, 200, parse(t, a.Topic).RequestID, -1)})
	if reply, err := w.Wait(waitCtx(t)); err != nil || reply.Status != 200 || reply.Version != 0 {
		t.Errorf("legacy PATCH reply %+v %v", reply, err)
	}
	// A GET reply that is not a twin fails the GET.
	get, gw := p.dev.Get()
	p.deliver(Action{Topic: AppendTwinResponseTopic(nil, 200, parse(t, get.Topic).RequestID, -1), Payload: []byte("garbage")})
	if _, err := gw.Wait(waitCtx(t)); err == nil {
		t.Error("garbage GET body accepted")
	}
	// A bad desired notification starts a recovery GET and reports the error.
	p.sync()
	r := parse(t, AppendTwinDesiredTopic(nil, 2))
	fx, err := p.dev.Handle(&r, []byte("{oops"))
	if err == nil || fx.Sync == nil {
		t.Errorf("bad notification: fx %+v err %v", fx, err)
	}
	// Non-twin routes are refused.
	m := parse(t, []byte("$iothub/methods/POST/x/?$rid=1"))
	if _, err := p.dev.Handle(&m, nil); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("method route err = %v", err)
	}
}

func TestDeviceTwinBufferCap(t *testing.T) {
	clk := NewManualClock(epoch)
	dev := NewDeviceTwin(DeviceTwinConfig{Clock: clk, MaxBuffered: 2})
	hub := NewHubTwin()
	get, _ := dev.Get()
	gr := parse(t, get.Topic)
	reply, _ := hub.HandleRequest(&gr, nil) // v1
	for i := 0; i < 3; i++ {
		a, _, _ := hub.UpdateDesired([]byte(`{"k":` + itoa(int64(i)) + `}`)) // v2..v4
		r := parse(t, a.Topic)
		if _, err := dev.Handle(&r, a.Payload); err != nil {
			t.Fatal(err)
		}
	}
	r := parse(t, reply.Topic)
	fx, err := dev.Handle(&r, reply.Payload)
	if err != nil {
		t.Fatal(err)
	}
	// v2 was dropped from the full buffer: v3, v4 leave a gap → another GET.
	wantUpdates(t, fx, `full v1 {}`)
	if fx.Sync == nil {
		t.Fatal("expected a recovery GET")
	}
}

func TestDeviceTwinSelfHealsWithoutGet(t *testing.T) {
	p := newTwinPair(t)
	_, w := p.dev.Get()
	p.clk.Advance(5 * time.Second) // the GET times out and nobody retries
	if _, err := w.Wait(waitCtx(t)); !errors.Is(err, ErrTimeout) {
		t.Fatal(err)
	}
	fx := p.deliver(p.desired(`{"a":1}`))
	if fx.Sync == nil || len(fx.Publish) != 1 {
		t.Fatalf("a notification with no GET in flight must start one: %+v", fx)
	}
	wantUpdates(t, p.deliver(p.serve(fx.Publish[0])), `full v2 {"a":1}`)
	// With a GET in flight, notifications are only buffered.
	get, _ := p.dev.Get()
	if fx := p.deliver(p.desired(`{"b":1}`)); fx.Sync != nil || len(fx.Publish) != 0 {
		t.Fatalf("second GET started while one is in flight: %+v", fx)
	}
	wantUpdates(t, p.deliver(p.serve(get)), `resync v3 {"b":1}`)
}

// TestDeviceTwinHubReset: when the twin behind the device starts over at a
// lower $version (the emulator restarted without its state, or the identity
// was deleted and created again), the GET after the reconnect is the truth:
// the device adopts it, reports the difference, and applies the
// notifications that follow instead of dropping them as already seen.
func TestDeviceTwinHubReset(t *testing.T) {
	p := newTwinPair(t)
	p.sync()
	p.deliver(p.desired(`{"fw":"1.0"}`)) // v2
	p.deliver(p.desired(`{"mode":"eco"}`))
	p.deliver(p.desired(`{"level":3}`)) // v4
	rep, _, err := p.dev.ReportProperties([]byte(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	p.deliver(p.serve(rep)) // reported v2
	p.checkDesired(4, `{"fw":"1.0","level":3,"mode":"eco"}`)

	// The hub starts over; the device reconnects.
	p.dev.Disconnected()
	p.hub = NewHubTwin()
	p.desired(`{"fw":"2.0"}`) // v2 while the device is offline
	fx := p.sync()
	wantUpdates(t, fx, `resync v2 {"fw":"2.0","level":null,"mode":null}`)
	p.checkDesired(2, `{"fw":"2.0"}`)
	if v, props := p.dev.Reported(); v != 1 || len(props) != 0 {
		t.Errorf("reported v%d %v, want the new hub's v1 {}", v, props)
	}
	// The next notification is the next version, not a stale one.
	wantUpdates(t, p.deliver(p.desired(`{"fw":"2.1"}`)), `patch v3 {"fw":"2.1"}`)
	p.checkDesired(3, `{"fw":"2.1"}`)

	// A GET overtaken by a notification applied after it was sent is
	// still not allowed to roll the twin back.
	get, w := p.dev.Get()
	stale := p.serve(get) // the hub answers v3 ...
	p.deliver(p.desired(`{"fw":"2.2"}`))
	p.sync() // ... a later GET brings v4 first
	p.deliver(stale)
	if _, err := w.Wait(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	p.checkDesired(4, `{"fw":"2.2"}`)
}
