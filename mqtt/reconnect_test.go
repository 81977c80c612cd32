package mqtt_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// changeLog records state changes with their errors.
type changeLog struct {
	mu  sync.Mutex
	seq []change
}

type change struct {
	from, to mqtt.State
	err      error
}

func (l *changeLog) record(from, to mqtt.State, err error) {
	l.mu.Lock()
	l.seq = append(l.seq, change{from, to, err})
	l.mu.Unlock()
}

func (l *changeLog) all() []change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]change(nil), l.seq...)
}

// TestReconnect checks a planned reconnect on the wire: DISCONNECT after
// what was queued, acknowledgements the broker sends before it closes are
// still read, the new CONNECT carries a fresh PasswordFunc result, the
// publish left unacknowledged is resent with DUP and its id on the resumed
// session, nothing acknowledged is resent, and the reconnection does not
// wait for the backoff (an hour here) however often it is planned.
func TestReconnect(t *testing.T) {
	fb := newFakeBroker(t)
	fb.sessionPresent.Store(true)
	var tokens atomic.Int32
	var changes changeLog
	c, fc := fakeClient(t, fb, mqtt.Config{
		Username: "device",
		PasswordFunc: func(context.Context) ([]byte, error) {
			return []byte("token-" + strconv.Itoa(int(tokens.Add(1)))), nil
		},
		Reconnect:     mqtt.Backoff{Min: time.Hour, Max: time.Hour},
		OnStateChange: changes.record,
	})
	if got := string(fc.connect.Password); got != "token-1" {
		t.Fatalf("first CONNECT password %q", got)
	}
	done1, done2 := make(chan error, 1), make(chan error, 1)
	if err := c.PublishAsync(ctxT(t), &mqtt.Message{Topic: []byte("a"), QoS: packet.QoS1, Payload: []byte("1")}, func(err error) { done1 <- err }); err != nil {
		t.Fatal(err)
	}
	if err := c.PublishAsync(ctxT(t), &mqtt.Message{Topic: []byte("a"), QoS: packet.QoS1, Payload: []byte("2")}, func(err error) { done2 <- err }); err != nil {
		t.Fatal(err)
	}
	p1, p2 := fc.publish(), fc.publish()

	for round := 2; round <= 3; round++ {
		reconnected := make(chan error, 1)
		go func() { reconnected <- c.Reconnect(ctxT(t)) }()
		if p := fc.next(); p.Type() != packet.TypeDisconnect {
			t.Fatalf("round %d: got %s, want DISCONNECT", round, p.Type())
		}
		if round == 2 {
			// Acknowledged after the DISCONNECT, before the close: read.
			fc.send(&packet.Puback{ID: p2.ID})
		}
		fc.c.Close()
		fc = fb.accept(t)
		if got, want := string(fc.connect.Password), "token-"+strconv.Itoa(round); got != want {
			t.Fatalf("round %d: CONNECT password %q, want %q", round, got, want)
		}
		re := fc.publish()
		if re.ID != p1.ID || !re.Dup || string(re.Payload) != "1" {
			t.Fatalf("round %d: resent id %d dup %v payload %q, want id %d dup true payload 1", round, re.ID, re.Dup, re.Payload, p1.ID)
		}
		if err := <-reconnected; err != nil {
			t.Fatalf("round %d: Reconnect: %v", round, err)
		}
		if round == 2 {
			if err := <-done2; err != nil {
				t.Fatalf("publish 2: %v", err)
			}
		}
	}
	// Nothing else was resent: the next publish is a new one.
	if err := c.PublishAsync(ctxT(t), &mqtt.Message{Topic: []byte("a"), QoS: packet.QoS1, Payload: []byte("3")}, nil); err != nil {
		t.Fatal(err)
	}
	p3 := fc.publish()
	if string(p3.Payload) != "3" || p3.Dup {
		t.Fatalf("after the resends got payload %q dup %v, want a new publish 3", p3.Payload, p3.Dup)
	}
	fc.send(&packet.Puback{ID: p3.ID})
	fc.send(&packet.Puback{ID: p1.ID})
	if err := <-done1; err != nil {
		t.Fatalf("publish 1: %v", err)
	}
	var planned int
	for _, ch := range changes.all() {
		if ch.from == mqtt.StateConnected && ch.to == mqtt.StateReconnecting {
			if ch.err != nil {
				t.Errorf("planned reconnect reported with error %v, want nil", ch.err)
			}
			planned++
		}
	}
	if planned != 2 {
		t.Errorf("%d changes to reconnecting reported, want 2: %v", planned, changes.all())
	}
}

// TestReconnectNotConnected checks Reconnect's errors without a connection.
func TestReconnectNotConnected(t *testing.T) {
	c, err := mqtt.NewClient(mqtt.Config{URL: "tcp://127.0.0.1:1", ClientID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Reconnect(ctxT(t)); !errors.Is(err, mqtt.ErrNotConnected) {
		t.Fatalf("Reconnect before Connect: %v, want ErrNotConnected", err)
	}
	_ = c.Close(ctxT(t))
	if err := c.Reconnect(ctxT(t)); !errors.Is(err, mqtt.ErrClosed) {
		t.Fatalf("Reconnect after Close: %v, want ErrClosed", err)
	}
}

// TestReconnectWhenAutomaticOff checks that Reconnect reconnects even with
// automatic reconnection off.
func TestReconnectWhenAutomaticOff(t *testing.T) {
	fb := newFakeBroker(t)
	c, fc := fakeClient(t, fb, mqtt.Config{Reconnect: mqtt.Backoff{Disabled: true}})
	fc.autoAck()
	if err := c.Reconnect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	fb.accept(t).autoAck()
	if st := c.State(); st != mqtt.StateConnected {
		t.Fatalf("state %v after Reconnect, want connected", st)
	}
}

// TestConnectHooks checks the per-attempt hooks: OnConnect gets every
// CONNACK's session-present flag before StateConnected is reported, and
// OnConnectError every failed reconnection with the CONNACK's refusal code
// (which OnStateChange does not report), so that a caller can stop after
// a refusal by calling Close from it.
func TestConnectHooks(t *testing.T) {
	fb := newFakeBroker(t)
	type event struct {
		what string
		sp   bool
		err  error
	}
	events := make(chan event, 16)
	var refusals atomic.Int32
	var c *mqtt.Client
	c, fc := fakeClient(t, fb, mqtt.Config{
		OnConnect: func(sp bool) { events <- event{what: "connect", sp: sp} },
		OnConnectError: func(err error) {
			events <- event{what: "error", err: err}
			if refusals.Add(1) == 1 {
				fb.refuse.Store(0) // the next attempt succeeds
				return
			}
			_ = c.Close(context.Background()) // a second refusal: stop
		},
		OnStateChange: func(_, to mqtt.State, err error) {
			if to == mqtt.StateConnected {
				events <- event{what: "connected"}
			}
		},
	})
	next := func() event {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(testTimeout):
			t.Fatal("no event")
			return event{}
		}
	}
	if e := next(); e.what != "connect" || e.sp {
		t.Fatalf("first event %+v, want connect without session", e)
	}
	if e := next(); e.what != "connected" {
		t.Fatalf("then %+v, want connected", e)
	}

	// A refused reconnection, then one resuming the session.
	fb.sessionPresent.Store(true)
	fb.refuse.Store(uint32(packet.ConnackNotAuthorized))
	fc.c.Close()
	if e := next(); e.what != "error" || !errors.Is(e.err, packet.ConnackNotAuthorized) {
		t.Fatalf("after a refusal got %+v, want error ConnackNotAuthorized", e)
	}
	fc = fb.accept(t)
	if e := next(); e.what != "connect" || !e.sp {
		t.Fatalf("got %+v, want connect with session present", e)
	}
	if e := next(); e.what != "connected" {
		t.Fatalf("then %+v, want connected", e)
	}

	// A second refusal: the hook closes the client.
	fb.refuse.Store(uint32(packet.ConnackBadUsernameOrPassword))
	fc.c.Close()
	e := next()
	var code packet.ConnackCode
	if e.what != "error" || !errors.As(e.err, &code) || code != packet.ConnackBadUsernameOrPassword {
		t.Fatalf("got %+v, want error ConnackBadUsernameOrPassword", e)
	}
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatal("Close from OnConnectError did not stop the client")
	}
	if st := c.State(); st != mqtt.StateClosed {
		t.Fatalf("state %v, want closed", st)
	}
}

// TestConnectErrorHookOnConnect checks that Connect's own failed attempt is
// reported to OnConnectError too.
func TestConnectErrorHookOnConnect(t *testing.T) {
	fb := newFakeBroker(t)
	fb.refuse.Store(uint32(packet.ConnackServerUnavailable))
	got := make(chan error, 1)
	c, err := mqtt.NewClient(mqtt.Config{Dialer: fb.dialer(), ClientID: clientID(t), OnConnectError: func(err error) { got <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctxT(t))
	_, err = c.Connect(ctxT(t))
	if !errors.Is(err, packet.ConnackServerUnavailable) {
		t.Fatalf("Connect: %v", err)
	}
	select {
	case herr := <-got:
		if !errors.Is(herr, packet.ConnackServerUnavailable) {
			t.Fatalf("hook got %v", herr)
		}
	default:
		t.Fatal("OnConnectError not called for Connect's attempt")
	}
}
