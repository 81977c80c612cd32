package mqtt_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// silentBroker accepts TCP connections and never answers: a CONNECT waits
// for its CONNACK until something ends the attempt.
func silentBroker(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { nc.Close() })
		}
	}()
	return l.Addr().String()
}

// TestConnectContextDeadline checks that a Connect ended by its context's
// deadline returns an error matching context.DeadlineExceeded every time
// (the connection's read deadline, set from the context, used to win the
// race against the context's timer and give a bare "i/o timeout"), and not
// ErrConnectTimeout.
func TestConnectContextDeadline(t *testing.T) {
	addr := silentBroker(t)
	c, err := mqtt.NewClient(mqtt.Config{Dialer: tcpDialer(addr), ClientID: clientID(t), ConnectTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		_, err := c.Connect(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, mqtt.ErrConnectTimeout) {
			t.Fatalf("attempt %d: Connect = %v, want context.DeadlineExceeded", i, err)
		}
	}
}

// TestConnectTimeout checks that Config.ConnectTimeout ending an attempt,
// while waiting for the CONNACK or inside the dialer, gives ErrConnectTimeout,
// a net.Error whose Timeout is true, every time.
func TestConnectTimeout(t *testing.T) {
	addr := silentBroker(t)
	dialers := map[string]func(ctx context.Context) (net.Conn, error){
		"CONNACK": tcpDialer(addr),
		"dial": func(ctx context.Context) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}
	for name, dial := range dialers {
		t.Run(name, func(t *testing.T) {
			c, err := mqtt.NewClient(mqtt.Config{Dialer: dial, ClientID: clientID(t), ConnectTimeout: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 20 {
				_, err := c.Connect(context.Background())
				var ne net.Error
				if !errors.Is(err, mqtt.ErrConnectTimeout) || !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatalf("attempt %d: Connect = %v, want ErrConnectTimeout, a net.Error timeout", i, err)
				}
			}
		})
	}
}

// TestPublishContextEnds checks that a QoS 1 Publish whose context ends
// tells the two cases apart: accepted and still pending (it stays in the
// Store and is sent), or never accepted because the window stayed full.
func TestPublishContextEnds(t *testing.T) {
	fb := newFakeBroker(t)
	store := mqtt.NewMemoryStore()
	c, fc := fakeClient(t, fb, mqtt.Config{InFlight: 1, Store: store})
	m := &mqtt.Message{Topic: []byte("p"), QoS: packet.QoS1}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err := c.Publish(ctx, m)
	cancel()
	if !errors.Is(err, mqtt.ErrPending) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, mqtt.ErrNotAccepted) {
		t.Fatalf("accepted publish = %v, want ErrPending and DeadlineExceeded", err)
	}
	if n := store.Len(); n != 1 {
		t.Fatalf("store holds %d packets, want the pending publish", n)
	}
	pub := fc.publish()

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	for name, err := range map[string]error{
		"Publish":      c.Publish(ctx, m),
		"PublishAsync": c.PublishAsync(ctx, m, nil),
	} {
		if !errors.Is(err, mqtt.ErrNotAccepted) || !errors.Is(err, context.Canceled) || errors.Is(err, mqtt.ErrPending) {
			t.Fatalf("%s into a full window = %v, want ErrNotAccepted and Canceled", name, err)
		}
	}
	if n := store.Len(); n != 1 {
		t.Fatalf("store holds %d packets, want only the accepted one", n)
	}
	fc.send(&packet.Puback{ID: pub.ID})
	ctx, cancel = context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.PublishAsync(ctx, m, nil); err != nil { // the slot came back
		t.Fatal(err)
	}
	if p := fc.publish(); p.ID == 0 {
		t.Fatal("no packet id")
	}
}

func TestSubscribeErrorQuotes(t *testing.T) {
	for _, tc := range []struct {
		filters []string
		want    string
	}{
		{[]string{"a/b"}, `mqtt: subscription refused for "a/b"`},
		{[]string{"a/b", "c"}, `mqtt: subscription refused for "a/b", "c"`},
		{[]string{`q"x`}, `mqtt: subscription refused for "q\"x"`},
	} {
		if got := (&mqtt.SubscribeError{Filters: tc.filters}).Error(); got != tc.want {
			t.Errorf("Error() = %s, want %s", got, tc.want)
		}
	}
}

// TestFailedReconnectsNotReported checks that failed reconnection attempts
// are not reported to OnStateChange as changes from reconnecting to
// reconnecting (they are logged).
func TestFailedReconnectsNotReported(t *testing.T) {
	fb := newFakeBroker(t)
	var mu sync.Mutex
	var same []mqtt.State
	log := &attemptLog{ch: make(chan int64, 16)}
	_, fc := fakeClient(t, fb, mqtt.Config{
		Logger:    slog.New(log),
		Reconnect: mqtt.Backoff{Min: time.Millisecond, Max: time.Millisecond},
		OnStateChange: func(from, to mqtt.State, _ error) {
			if from == to {
				mu.Lock()
				same = append(same, to)
				mu.Unlock()
			}
		},
	})
	fb.l.Close() // every reconnection attempt fails to dial
	fc.c.Close()
	for want := int64(1); want <= 4; want++ {
		select {
		case <-log.ch:
		case <-time.After(testTimeout):
			t.Fatalf("no reconnection attempt %d", want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(same) != 0 {
		t.Fatalf("OnStateChange reported %d changes from a state to itself: %v", len(same), same)
	}
}
