package device

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubwire/hubwire/sas"
)

// stream sends n QoS 1 messages with ids 0..n-1, each Send in its own
// goroutine-limited window, and returns the errors.
func stream(ctx context.Context, c *Client, n int, pace time.Duration) []error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			m := &Message{Payload: []byte(strconv.Itoa(i))}
			m.Properties.MessageID = strconv.Itoa(i)
			if err := c.Send(ctx, m); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("message %d: %w", i, err))
				mu.Unlock()
			}
		}()
		if pace > 0 {
			time.Sleep(pace)
		}
	}
	wg.Wait()
	return errs
}

// countDelivered returns how many distinct ids 0..n-1 the hub has and how
// many duplicates it received.
func countDelivered(h *testHub, dev string, n int) (distinct, dups int) {
	seen := make(map[string]int)
	for _, m := range h.telemetryOf(dev) {
		seen[m.Payload]++
	}
	for i := range n {
		if k := seen[strconv.Itoa(i)]; k > 0 {
			distinct++
			dups += k - 1
		}
	}
	return distinct, dups
}

// TestRenewalMidStream streams telemetry while the token (TTL 3 s) is
// renewed by planned reconnects: nothing is lost, and the hub never had to
// close a connection because its token expired.
func TestRenewalMidStream(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newTestHub(t)
			cs := h.addDevice("dev1")
			cfg := h.config(cs, tr)
			cfg.TokenTTL = 3 * time.Second
			cfg.ReconnectMax = 200 * time.Millisecond
			var renewals atomic.Int32
			cfg.OnStateChange = func(from, to State, err error) {
				if errors.Is(err, errRenewal) {
					renewals.Add(1)
				}
			}
			c := mustClient(t, cfg)
			ctx := testCtx(t, 60*time.Second)
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			const n = 1500
			if errs := stream(ctx, c, n, 5*time.Millisecond); len(errs) > 0 {
				t.Fatalf("%d sends failed, first: %v", len(errs), errs[0])
			}
			distinct, dups := countDelivered(h, "dev1", n)
			t.Logf("%s: %d renewals, %d connects, %d delivered, %d duplicates", tr, renewals.Load(), h.connectCount(), distinct, dups)
			if distinct != n {
				t.Fatalf("%d of %d messages delivered", distinct, n)
			}
			if renewals.Load() < 2 {
				t.Fatalf("%d renewals in a stream of ~%v with a 3 s TTL", renewals.Load(), n*5*time.Millisecond)
			}
			h.mu.Lock()
			expired := h.expiredCloses
			h.mu.Unlock()
			if expired != 0 {
				t.Fatalf("the hub closed %d connections at token expiry: renewal came too late", expired)
			}
		})
	}
}

// TestHubRestartMidStream: the hub goes away (every connection dropped,
// listeners closed) and comes back on the same ports while the device
// streams: every accepted message arrives.
func TestHubRestartMidStream(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	cfg := h.config(cs, TransportMQTT)
	cfg.ReconnectMax = 300 * time.Millisecond
	c := mustClient(t, cfg)
	ctx := testCtx(t, 60*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 600
	done := make(chan []error)
	go func() { done <- stream(ctx, c, n, 2*time.Millisecond) }()
	time.Sleep(300 * time.Millisecond)
	h.restart(500 * time.Millisecond)
	if errs := <-done; len(errs) > 0 {
		t.Fatalf("%d sends failed, first: %v", len(errs), errs[0])
	}
	distinct, dups := countDelivered(h, "dev1", n)
	t.Logf("%d delivered, %d duplicates, %d connects", distinct, dups, h.connectCount())
	if distinct != n {
		t.Fatalf("%d of %d messages delivered", distinct, n)
	}
	if h.connectCount() < 2 {
		t.Fatal("the restart did not reconnect the device")
	}
}

// TestDesiredChangedTwiceWhileDisconnected: two desired changes made while
// the device is offline are not queued by the hub; after reconnecting the
// client subscribes, GETs, and reports one Resync update with both.
func TestDesiredChangedTwiceWhileDisconnected(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	updates := make(chan DesiredUpdate, 16)
	cfg := h.config(cs, TransportMQTT)
	cfg.ReconnectMin, cfg.ReconnectMax = 100*time.Millisecond, 300*time.Millisecond
	cfg.OnDesired = func(u DesiredUpdate) { updates <- u }
	c := mustClient(t, cfg)
	if err := c.Connect(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if u := nextUpdate(t, updates); !u.Full || u.Version != 1 {
		t.Fatalf("first update %+v", u)
	}
	h.updateDesired("dev1", `{"a":1,"gone":true}`)
	if u := nextUpdate(t, updates); u.Version != 2 || u.Resync {
		t.Fatalf("notification %+v", u)
	}
	tlsAddr, wssAddr := h.tlsAddr, h.wssAddr
	h.stop()
	h.updateDesired("dev1", `{"a":2}`)
	h.updateDesired("dev1", `{"b":"x","gone":null}`)
	h.listen(tlsAddr, wssAddr)
	u := nextUpdate(t, updates)
	if !u.Resync || u.Version != 4 {
		t.Fatalf("after reconnect: %+v, want a Resync to version 4", u)
	}
	if fmt.Sprint(u.Patch["a"]) != "2" || u.Patch["b"] != "x" || u.Patch["gone"] != nil {
		t.Fatalf("resync patch %v", u.Patch)
	}
	if _, ok := u.Patch["gone"]; !ok {
		t.Fatalf("resync patch %v does not delete gone", u.Patch)
	}
	v, props, ok := c.DesiredProperties()
	if !ok || v != 4 || props["b"] != "x" || props["gone"] != nil {
		t.Fatalf("desired %d %v %v", v, props, ok)
	}
	// A reconnect with nothing changed still signals the resync.
	h.restart(50 * time.Millisecond)
	u = nextUpdate(t, updates)
	if !u.Resync || u.Version != 4 || len(u.Patch) != 0 {
		t.Fatalf("unchanged resync %+v", u)
	}
	select {
	case u := <-updates:
		t.Fatalf("unexpected update %+v", u)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestSecondConnectionSameIdentity: two clients with one identity take the
// connection from each other; the war ends with ErrKicked instead of
// going on forever.
func TestSecondConnectionSameIdentity(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	cfg := h.config(cs, TransportMQTT)
	cfg.ReconnectMin, cfg.ReconnectMax = 50*time.Millisecond, 200*time.Millisecond
	a, b := mustClient(t, cfg), mustClient(t, cfg)
	ctx := testCtx(t, 30*time.Second)
	if err := a.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-b.Done():
	case <-ctx.Done():
		t.Fatal("neither client stopped")
	}
	stopped := a
	if b.Err() != nil {
		stopped = b
	}
	if !errors.Is(stopped.Err(), ErrKicked) {
		t.Fatalf("Err = %v, want ErrKicked", stopped.Err())
	}
	if err := stopped.Send(ctx, &Message{Payload: []byte("x")}); !errors.Is(err, ErrKicked) {
		t.Fatalf("Send after kick: %v", err)
	}
}

// TestDeadLinkWhileOnlyPublishing: the hub stops answering while the
// device only publishes at QoS 0 (so its writes never leave the link
// silent); the engine pings on silence received too, finds the dead link
// and reconnects once the hub answers again.
func TestDeadLinkWhileOnlyPublishing(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	cfg := h.config(cs, TransportMQTT)
	cfg.KeepAlive, cfg.PingTimeout = time.Second, 500*time.Millisecond
	cfg.ReconnectMin, cfg.ReconnectMax = 100*time.Millisecond, 300*time.Millisecond
	lost := make(chan error, 4)
	cfg.OnStateChange = func(from, to State, err error) {
		if from == StateConnected {
			select {
			case lost <- err:
			default:
			}
		}
	}
	c := mustClient(t, cfg)
	ctx := testCtx(t, 30*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	h.setBlackhole(true)
	stop := make(chan struct{})
	go func() {
		m := &Message{Payload: []byte("q0"), QoS0: true}
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				_ = c.Send(ctx, m)
			}
		}
	}()
	defer close(stop)
	select {
	case err := <-lost:
		if !errors.Is(err, ErrConnectionLost) {
			t.Fatalf("lost connection with %v, want the dead-link error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dead link not detected")
	}
	h.setBlackhole(false)
	waitFor(t, 10*time.Second, "reconnect", func() bool { return c.State() == StateConnected })
}

// TestConnectErrors: each way of failing to connect is its own typed error.
func TestConnectErrors(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	ctx := testCtx(t, 30*time.Second)
	connect := func(cfg Config) error {
		cfg.ReconnectMax = 100 * time.Millisecond
		cfg.ConnectTimeout = 3 * time.Second
		c, err := New(cfg)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		return c.Connect(ctx)
	}
	t.Run("wrong-key", func(t *testing.T) {
		bad := "HostName=" + testHost + ";DeviceId=dev1;SharedAccessKey=" + b64([]byte("not the key"))
		err := connect(h.config(bad, TransportMQTT))
		var ce *ConnectError
		if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &ce) || ce.Code != 5 {
			t.Fatalf("err = %v, want ErrUnauthorized with code 5", err)
		}
	})
	t.Run("unknown-device", func(t *testing.T) {
		bad := "HostName=" + testHost + ";DeviceId=nobody;SharedAccessKey=" + b64([]byte("k"))
		if err := connect(h.config(bad, TransportMQTTWebSocket)); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrUnauthorized", err)
		}
	})
	t.Run("expired-token", func(t *testing.T) {
		tok := sas.NewToken(sas.DeviceResource(testHost, "dev1"), []byte("key-of-dev1-0123456789abcdef"), "", time.Now().Add(-time.Minute))
		bad := "HostName=" + testHost + ";DeviceId=dev1;SharedAccessSignature=" + tok.String()
		if err := connect(h.config(bad, TransportMQTT)); !errors.Is(err, ErrTokenExpired) || !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrTokenExpired", err)
		}
	})
	t.Run("valid-token", func(t *testing.T) {
		tok := sas.NewToken(sas.DeviceResource(testHost, "dev1"), []byte("key-of-dev1-0123456789abcdef"), "", time.Now().Add(time.Hour))
		good := "HostName=" + testHost + ";DeviceId=dev1;SharedAccessSignature=" + tok.String()
		if err := connect(h.config(good, TransportMQTT)); err != nil {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		h.mu.Lock()
		h.refuse = true
		h.mu.Unlock()
		defer func() { h.mu.Lock(); h.refuse = false; h.mu.Unlock() }()
		err := connect(h.config(cs, TransportMQTT))
		var ce *ConnectError
		if !errors.As(err, &ce) || ce.Code != 3 || errors.Is(err, ErrUnauthorized) {
			t.Fatalf("err = %v, want a ConnectError with code 3", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cfg := h.config(cs, TransportMQTT)
		cfg.Address = addr
		if err := connect(cfg); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
	})
	t.Run("untrusted-server", func(t *testing.T) {
		cfg := h.config(cs, TransportMQTT)
		cfg.RootCAs = nil
		if err := connect(cfg); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
	})
	t.Run("x509", func(t *testing.T) {
		cert := h.addX509Device("xdev")
		cfg := h.config("HostName="+testHost+";DeviceId=xdev;x509=true", TransportMQTTWebSocket)
		cfg.Certificate = &cert.TLS
		if err := connect(cfg); err != nil {
			t.Fatalf("x509 connect: %v", err)
		}
		other := h.ca.MustClient(t, "xdev")
		cfg.Certificate = &other.TLS
		if err := connect(cfg); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("wrong certificate: %v, want ErrUnauthorized", err)
		}
	})
}

// TestUnauthorizedAfterRenewalStops: when the key is revoked while
// connected, the reconnect's CONNACK 5 renews the token once, then the
// client stops with ErrUnauthorized instead of retrying forever.
func TestUnauthorizedAfterRenewalStops(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	cfg := h.config(cs, TransportMQTT)
	cfg.ReconnectMin, cfg.ReconnectMax = 50*time.Millisecond, 100*time.Millisecond
	c := mustClient(t, cfg)
	ctx := testCtx(t, 20*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.ids["dev1"].key = []byte("rotated")
	h.mu.Unlock()
	h.restart(0)
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("client kept retrying")
	}
	if !errors.Is(c.Err(), ErrUnauthorized) {
		t.Fatalf("Err = %v, want ErrUnauthorized", c.Err())
	}
	if _, err := c.GetTwin(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("GetTwin after stop: %v", err)
	}
}

// TestStateChangesObservable: the callback sees connect, loss, reconnect
// and close in order.
func TestStateChangesObservable(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	cfg := h.config(cs, TransportMQTT)
	cfg.ReconnectMax = 100 * time.Millisecond
	var mu sync.Mutex
	var seen []string
	cfg.OnStateChange = func(from, to State, err error) {
		mu.Lock()
		seen = append(seen, to.String())
		mu.Unlock()
	}
	c := mustClient(t, cfg)
	ctx := testCtx(t, 10*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	h.restart(0)
	waitFor(t, 5*time.Second, "reconnect", func() bool { return h.connectCount() == 2 && c.State() == StateConnected })
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	mu.Lock()
	got := fmt.Sprint(seen)
	mu.Unlock()
	if got != "[connecting connected reconnecting connected closed]" {
		t.Fatalf("states %s", got)
	}
	if err := c.Send(ctx, &Message{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

// TestRenewalDuringMethodAndC2D: a token renewal that happens while a
// method handler runs and while C2D messages are being handled loses
// neither: the method answer goes out on the new connection, and C2D
// messages not yet acknowledged are delivered again. (The engine
// acknowledges a message only on the connection it came on, so a C2D
// backlog that takes longer to handle than a token lives would be
// redelivered again and again; with the 2 s TTL here the backlog is
// kept well under it.)
func TestRenewalDuringMethodAndC2D(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	cfg := h.config(cs, TransportMQTT)
	cfg.TokenTTL = 2 * time.Second
	cfg.ReconnectMax = 100 * time.Millisecond
	cfg.Methods = map[string]MethodHandler{
		"slow": func(ctx context.Context, req MethodRequest) (int, []byte, error) {
			time.Sleep(2500 * time.Millisecond) // outlives the connection
			return 200, []byte(`"ok"`), nil
		},
	}
	var mu sync.Mutex
	seen := map[string]int{}
	cfg.OnC2D = func(ctx context.Context, m *C2DMessage) {
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		seen[string(m.Payload)]++
		mu.Unlock()
	}
	c := mustClient(t, cfg)
	ctx := testCtx(t, 30*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	first := h.connectCount()
	res := make(chan error, 1)
	go func() {
		r, err := h.invoke("dev1", "slow", "", 10*time.Second)
		if err == nil && r.Status != 200 {
			err = fmt.Errorf("status %d", r.Status)
		}
		res <- err
	}()
	const n = 30
	for i := range n {
		h.sendC2D("dev1", strconv.Itoa(i), nil)
	}
	if err := <-res; err != nil {
		t.Fatalf("method across a renewal: %v", err)
	}
	if h.connectCount() == first {
		t.Fatal("no renewal happened during the method call")
	}
	waitFor(t, 10*time.Second, "every C2D message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
	waitFor(t, 5*time.Second, "C2D queue empty", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.ids["dev1"].session.c2d) == 0
	})
}

// TestMethodConcurrencyBounded: at most MaxConcurrentMethods handlers run
// at once; the others wait their turn and are all answered.
func TestMethodConcurrencyBounded(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	cfg := h.config(cs, TransportMQTT)
	cfg.MaxConcurrentMethods = 2
	var running, peak atomic.Int32
	cfg.DefaultMethod = func(ctx context.Context, req MethodRequest) (int, []byte, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
		running.Add(-1)
		return 200, nil, nil
	}
	c := mustClient(t, cfg)
	if err := c.Connect(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := h.invoke("dev1", "m"+strconv.Itoa(i), "", 10*time.Second)
			if err == nil && r.Status != 200 {
				err = fmt.Errorf("status %d", r.Status)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak concurrency %d, want 2", p)
	}
}

// TestNoGoroutineOutlivesClose: after Close, every goroutine the client
// started has ended.
func TestNoGoroutineOutlivesClose(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()
	cfg := h.config(cs, TransportMQTTWebSocket)
	cfg.OnC2D = func(ctx context.Context, m *C2DMessage) {}
	cfg.OnDesired = func(u DesiredUpdate) {}
	cfg.Methods = map[string]MethodHandler{"m": func(ctx context.Context, req MethodRequest) (int, []byte, error) { return 200, nil, nil }}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 10*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, &Message{Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.invoke("dev1", "m", "", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	h.sendC2D("dev1", "c", nil)
	h.updateDesired("dev1", `{"a":1}`)
	if _, err := c.GetTwin(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}
