package iothub

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMethodMuxDispatch(t *testing.T) {
	var mux MethodMux
	mux.Handle("reboot", func(ctx context.Context, req MethodRequest) (int, []byte, error) {
		return 200, []byte(`{"in":` + string(req.Payload) + `}`), nil
	})
	mux.Handle("empty", func(context.Context, MethodRequest) (int, []byte, error) { return 204, nil, nil })
	mux.Handle("fails", func(context.Context, MethodRequest) (int, []byte, error) {
		return 0, nil, errors.New(`disk "full"`)
	})
	mux.Handle("notjson", func(context.Context, MethodRequest) (int, []byte, error) { return 200, []byte("plain"), nil })
	mux.Handle("gone", func(context.Context, MethodRequest) (int, []byte, error) { return 200, nil, nil })
	mux.Handle("gone", nil)

	tests := []struct {
		name, topic, payload string
		wantTopic, wantBody  string
	}{
		{"known", "$iothub/methods/POST/reboot/?$rid=1", `{"delay":5}`,
			"$iothub/methods/res/200/?$rid=1", `{"in":{"delay":5}}`},
		{"empty-reply", "$iothub/methods/POST/empty/?$rid=2", "",
			"$iothub/methods/res/204/?$rid=2", ""},
		{"unknown-501", "$iothub/methods/POST/nope/?$rid=abc-9", "",
			"$iothub/methods/res/501/?$rid=abc-9", `{"message":"method not implemented: nope"}`},
		{"removed-501", "$iothub/methods/POST/gone/?$rid=3", "",
			"$iothub/methods/res/501/?$rid=3", `{"message":"method not implemented: gone"}`},
		{"handler-error-500", "$iothub/methods/POST/fails/?$rid=4", "",
			"$iothub/methods/res/500/?$rid=4", `{"message":"disk \"full\""}`},
		{"not-json-500", "$iothub/methods/POST/notjson/?$rid=5", "",
			"$iothub/methods/res/500/?$rid=5", `{"message":"method notjson returned a payload that is not JSON"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := parse(t, []byte(tc.topic))
			req, err := ParseMethodRequest(&r, []byte(tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			reply := mux.Dispatch(context.Background(), req)
			if string(reply.Topic) != tc.wantTopic || string(reply.Payload) != tc.wantBody {
				t.Errorf("reply %s %s\nwant  %s %s", reply.Topic, reply.Payload, tc.wantTopic, tc.wantBody)
			}
		})
	}

	// A default handler takes every unregistered name.
	mux.HandleDefault(func(_ context.Context, req MethodRequest) (int, []byte, error) {
		return 202, []byte(`"` + req.Name + `"`), nil
	})
	reply := mux.Dispatch(context.Background(), MethodRequest{Name: "other", RequestID: "7"})
	if string(reply.Topic) != "$iothub/methods/res/202/?$rid=7" || string(reply.Payload) != `"other"` {
		t.Errorf("default reply %s %s", reply.Topic, reply.Payload)
	}
	if mux.Lookup("reboot") == nil || mux.Lookup("anything") == nil {
		t.Error("Lookup")
	}
}

func TestParseMethodRequestCopies(t *testing.T) {
	topic := []byte("$iothub/methods/POST/reboot/?$rid=1")
	payload := []byte(`{"a":1}`)
	r := parse(t, topic)
	req, err := ParseMethodRequest(&r, payload)
	if err != nil {
		t.Fatal(err)
	}
	copy(topic, "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX")
	payload[0] = 'X'
	if req.Name != "reboot" || req.RequestID != "1" || string(req.Payload) != `{"a":1}` {
		t.Errorf("request aliases its input: %+v", req)
	}
	other := parse(t, []byte("$iothub/twin/GET/?$rid=1"))
	if _, err := ParseMethodRequest(&other, nil); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("err = %v", err)
	}
}

func TestMethodTableAnswer(t *testing.T) {
	clk := NewManualClock(epoch)
	tab := NewMethodTable(clk)
	req, w, err := tab.Invoke(MethodCall{DeviceID: "dev1", Name: "reboot", Payload: []byte(`{"delay":1}`)}, true)
	if err != nil {
		t.Fatal(err)
	}
	r := parse(t, req.Topic)
	if r.Kind != RouteMethodRequest || string(r.MethodName) != "reboot" || string(req.Payload) != `{"delay":1}` {
		t.Fatalf("request %s %s", req.Topic, req.Payload)
	}
	// The device answers through the real topic.
	devReq, _ := ParseMethodRequest(&r, req.Payload)
	reply := MethodResponse(devReq.RequestID, 200, []byte(`{"ok":true}`))
	rr := parse(t, reply.Topic)
	if err := tab.HandleResponse("other", "", &rr, reply.Payload); !errors.Is(err, ErrStaleResponse) {
		t.Fatalf("answer from another device: %v", err)
	}
	if err := tab.HandleResponse("dev1", "", &rr, reply.Payload); err != nil {
		t.Fatal(err)
	}
	res, err := w.Wait(waitCtx(t))
	if err != nil || res.Status != 200 || string(res.Payload) != `{"ok":true}` {
		t.Fatalf("result %+v err %v", res, err)
	}
	if got := string(res.AppendJSON(nil)); got != `{"status":200,"payload":{"ok":true}}` {
		t.Errorf("service JSON %s", got)
	}
	// A second answer is stale.
	if err := tab.HandleResponse("dev1", "", &rr, nil); !errors.Is(err, ErrStaleResponse) {
		t.Errorf("duplicate answer: %v", err)
	}
	if tab.Pending() != 0 {
		t.Errorf("Pending = %d", tab.Pending())
	}
}

func TestMethodTableTimeoutAndOffline(t *testing.T) {
	clk := NewManualClock(epoch)
	tab := NewMethodTable(clk)
	_, w, err := tab.Invoke(MethodCall{DeviceID: "d", ModuleID: "m", Name: "slow", ResponseTimeout: 10 * time.Second}, true)
	if err != nil {
		t.Fatal(err)
	}
	_, wDefault, err := tab.Invoke(MethodCall{DeviceID: "d", Name: "slow"}, true)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	if _, err := w.Wait(waitCtx(t)); !errors.Is(err, ErrTimeout) || StatusOf(err) != 504 {
		t.Fatalf("err = %v (status %d), want ErrTimeout/504", err, StatusOf(err))
	}
	select {
	case <-wDefault.Done():
		t.Fatal("default 30 s timeout fired after 10 s")
	default:
	}
	clk.Advance(20 * time.Second)
	if _, err := wDefault.Wait(waitCtx(t)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("default timeout err = %v", err)
	}
	// A late answer is dropped.
	late := parse(t, AppendMethodResponseTopic(nil, 200, w.RequestID()))
	if err := tab.HandleResponse("d", "m", &late, nil); !errors.Is(err, ErrStaleResponse) {
		t.Errorf("late answer: %v", err)
	}

	if _, _, err := tab.Invoke(MethodCall{DeviceID: "d", Name: "x"}, false); !errors.Is(err, ErrDeviceNotOnline) || StatusOf(err) != 404 {
		t.Errorf("offline: %v (status %d)", err, StatusOf(err))
	}
}

func TestMethodCallValidation(t *testing.T) {
	tab := NewMethodTable(nil)
	bad := []MethodCall{
		{Name: "x", ResponseTimeout: 4 * time.Second},
		{Name: "x", ResponseTimeout: 301 * time.Second},
		{Name: "x", ConnectTimeout: -time.Second},
		{Name: "x", ConnectTimeout: 301 * time.Second},
		{Name: ""},
		{Name: "a/b"},
		{Name: "a+b"},
		{Name: "a#"},
		{Name: "a\x00b"},  // U+0000 is not allowed in an MQTT topic [MQTT-1.5.3-2]
		{Name: "bad\xff"}, // nor is invalid UTF-8 [MQTT-1.5.3-1]
		{Name: "x", Payload: []byte("{nope")},
		{Name: "x", Payload: make([]byte, MaxMethodPayload+1)},
	}
	for _, c := range bad {
		if _, _, err := tab.Invoke(c, true); !errors.Is(err, ErrBadRequest) || StatusOf(err) != 400 {
			t.Errorf("%+v: err = %v", c.Name, err)
		}
	}
	c := MethodCall{Name: "x", ResponseTimeout: 5 * time.Second, ConnectTimeout: 300 * time.Second}
	if r, conn, err := c.Timeouts(); err != nil || r != 5*time.Second || conn != 300*time.Second {
		t.Errorf("Timeouts = %v %v %v", r, conn, err)
	}
	if tab.Pending() != 0 {
		t.Error("rejected calls must not be registered")
	}
}

func TestMethodResultJSON(t *testing.T) {
	tests := []struct {
		r    MethodResult
		want string
	}{
		{MethodResult{Status: 501}, `{"status":501,"payload":null}`},
		{MethodResult{Status: 200, Payload: []byte(`[1,2]`)}, `{"status":200,"payload":[1,2]}`},
		{MethodResult{Status: -3, Payload: []byte(`not "json"`)}, `{"status":-3,"payload":"not \"json\""}`},
	}
	for _, tc := range tests {
		if got := string(tc.r.AppendJSON(nil)); got != tc.want {
			t.Errorf("got %s, want %s", got, tc.want)
		}
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 200},
		{&StatusError{Status: 429}, 429},
		{ErrBadRequest, 400}, {ErrUnauthorized, 401}, {ErrDeviceNotFound, 404}, {ErrDeviceNotOnline, 404},
		{ErrPreconditionFailed, 412}, {ErrThrottled, 429}, {ErrTimeout, 504}, {errors.New("x"), 500},
	}
	for _, tc := range tests {
		if got := StatusOf(tc.err); got != tc.want {
			t.Errorf("StatusOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	se := &StatusError{Op: "twin GET", Status: 504, RequestID: "9"}
	if !errors.Is(se, ErrTimeout) || !errors.Is(se, ErrServerError) || errors.Is(se, ErrThrottled) {
		t.Error("504 classes")
	}
	if se.Error() != "iothub: twin GET (rid 9): status 504" {
		t.Errorf("Error() = %q", se.Error())
	}
}

// TestMethodMuxDispatchHandlerFaults: a handler that panics or answers more
// than the 128 KB a method reply may carry still gets the invoker a reply
// (500 with a JSON message) instead of taking the client down or leaving
// the invoker to time out.
func TestMethodMuxDispatchHandlerFaults(t *testing.T) {
	var mux MethodMux
	mux.Handle("panics", func(context.Context, MethodRequest) (int, []byte, error) { panic("boom") })
	mux.Handle("huge", func(context.Context, MethodRequest) (int, []byte, error) {
		return 200, []byte(`"` + strings.Repeat("x", MaxMethodPayload) + `"`), nil
	})
	mux.Handle("max", func(context.Context, MethodRequest) (int, []byte, error) {
		return 200, []byte(`"` + strings.Repeat("x", MaxMethodPayload-2) + `"`), nil
	})
	tests := []struct {
		name, wantTopic, wantBody string
	}{
		{"panics", "$iothub/methods/res/500/?$rid=1", `{"message":"method panics panicked: boom"}`},
		{"huge", "$iothub/methods/res/500/?$rid=1", `{"message":"method huge returned a payload over 128 KB"}`},
	}
	for _, tc := range tests {
		reply := mux.Dispatch(context.Background(), MethodRequest{Name: tc.name, RequestID: "1"})
		if string(reply.Topic) != tc.wantTopic || string(reply.Payload) != tc.wantBody {
			t.Errorf("%s: reply %s %.80s", tc.name, reply.Topic, reply.Payload)
		}
	}
	if reply := mux.Dispatch(context.Background(), MethodRequest{Name: "max", RequestID: "1"}); len(reply.Payload) != MaxMethodPayload ||
		string(reply.Topic) != "$iothub/methods/res/200/?$rid=1" {
		t.Errorf("128 KB reply: %s, %d bytes", reply.Topic, len(reply.Payload))
	}
}

// TestMethodTableCorrelation: every way an invocation can end, and what a
// reply that comes after it gets.
func TestMethodTableCorrelation(t *testing.T) {
	tests := []struct {
		name    string
		end     func(t *testing.T, clk *ManualClock, w *Waiter[MethodResult]) error
		wantErr error
	}{
		{"caller-gives-up", func(t *testing.T, _ *ManualClock, w *Waiter[MethodResult]) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := w.Wait(ctx)
			return err
		}, context.Canceled},
		{"timeout", func(t *testing.T, clk *ManualClock, w *Waiter[MethodResult]) error {
			clk.Advance(DefaultMethodTimeout)
			_, err := w.Wait(waitCtx(t))
			return err
		}, ErrTimeout},
		{"device-went-away", func(t *testing.T, _ *ManualClock, w *Waiter[MethodResult]) error {
			w.Cancel(ErrDeviceNotOnline)
			_, err := w.Wait(waitCtx(t))
			return err
		}, ErrDeviceNotOnline},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := NewManualClock(epoch)
			tab := NewMethodTable(clk)
			req, w, err := tab.Invoke(MethodCall{DeviceID: "d", ModuleID: "m", Name: "x"}, true)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.end(t, clk, w); !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tab.Pending() != 0 || clk.Pending() != 0 {
				t.Errorf("pending %d, timers %d after the end", tab.Pending(), clk.Pending())
			}
			r := parse(t, req.Topic)
			reply := parse(t, AppendMethodResponseTopic(nil, 200, r.RequestID))
			if err := tab.HandleResponse("d", "m", &reply, nil); !errors.Is(err, ErrStaleResponse) {
				t.Errorf("reply after the end: %v, want ErrStaleResponse", err)
			}
		})
	}
}
