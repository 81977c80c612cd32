package mqtt_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/mosquitto"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// counter counts deliveries of numbered payloads.
type counter struct {
	mu   sync.Mutex
	seen map[int]int
	all  chan struct{}
	n    int
}

func newCounter(n int) *counter { return &counter{seen: map[int]int{}, all: make(chan struct{}), n: n} }

func (c *counter) handle(m *mqtt.Message) {
	i, err := strconv.Atoi(string(m.Payload))
	if err != nil {
		return
	}
	c.mu.Lock()
	c.seen[i]++
	if len(c.seen) == c.n && c.seen[i] == 1 {
		close(c.all)
	}
	c.mu.Unlock()
}

func (c *counter) report(t *testing.T) (missing, dups int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.n {
		switch k := c.seen[i]; {
		case k == 0:
			missing++
		case k > 1:
			dups += k - 1
		}
	}
	return missing, dups
}

// publishAll publishes n numbered QoS 1 messages from one goroutine with
// PublishAsync and calls between(i) after each.
func publishAll(t *testing.T, ctx context.Context, c *mqtt.Client, topic string, n int, between func(i int)) *atomic.Int64 {
	var acked atomic.Int64
	done := func(err error) {
		if err == nil {
			acked.Add(1)
		}
	}
	for i := range n {
		if err := c.PublishAsync(ctx, &mqtt.Message{Topic: []byte(topic), Payload: []byte(strconv.Itoa(i)), QoS: packet.QoS1}, done); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		between(i)
	}
	return &acked
}

func waitAll(t *testing.T, ctx context.Context, c *counter, acked *atomic.Int64, n int) {
	t.Helper()
	select {
	case <-c.all:
	case <-ctx.Done():
		missing, _ := c.report(t)
		t.Fatalf("subscriber missing %d of %d messages", missing, n)
	}
	for acked.Load() != int64(n) {
		select {
		case <-ctx.Done():
			t.Fatalf("publisher acked %d of %d", acked.Load(), n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestBrokerRestart stops mosquitto (SIGTERM, persistence on) in the middle
// of a QoS 1 stream and starts it again on the same port. Both clients
// reconnect by themselves; the persistent subscriber must get every message
// at least once.
func TestBrokerRestart(t *testing.T) {
	b := mosquitto.Start(t, mosquitto.Options{Persistence: true})
	ctx := ctxT(t)
	const n = 2000
	cnt := newCounter(n)
	var subStates stateLog
	sub := newClient(t, b.Addr, mqtt.Config{ClientID: clientID(t), OnMessage: cnt.handle, OnStateChange: subStates.record})
	if _, err := sub.Subscribe(ctx, mqtt.Subscription{Filter: "restart/#", QoS: packet.QoS1}); err != nil {
		t.Fatal(err)
	}
	var pubStates stateLog
	pub := newClient(t, b.Addr, mqtt.Config{ClientID: clientID(t), OnStateChange: pubStates.record})
	acked := publishAll(t, ctx, pub, "restart/x", n, func(i int) {
		if i == n/2 {
			if err := b.Restart(); err != nil {
				t.Fatal(err)
			}
		}
	})
	waitAll(t, ctx, cnt, acked, n)
	missing, dups := cnt.report(t)
	t.Logf("delivered %d messages across a broker restart: %d missing, %d duplicates", n, missing, dups)
	if subStates.count(mqtt.StateReconnecting) == 0 || pubStates.count(mqtt.StateReconnecting) == 0 {
		t.Fatal("clients did not notice the restart")
	}
}

// resetProxy forwards TCP connections to a target and can reset all of them
// (RST via SO_LINGER 0) while the broker stays up.
type resetProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	conns  []*net.TCPConn
	resets atomic.Int64
}

func newResetProxy(t *testing.T, target string) *resetProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &resetProxy{l: l, target: target}
	t.Cleanup(func() { l.Close(); p.reset() })
	go p.serve()
	return p
}

func (p *resetProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c.(*net.TCPConn), u.(*net.TCPConn))
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); u.Close() }()
		go func() { _, _ = io.Copy(c, u); c.Close() }()
	}
}

// reset aborts every proxied connection on both sides.
func (p *resetProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.SetLinger(0)
		c.Close()
	}
	p.conns = nil
	p.resets.Add(1)
}

// TestConnectionReset cuts the TCP connections under both clients (the
// broker stays up) twice during a QoS 1 stream.
func TestConnectionReset(t *testing.T) {
	b := broker(t)
	ctx := ctxT(t)
	proxy := newResetProxy(t, b.Addr)
	const n = 2000
	cnt := newCounter(n)
	sub := newClient(t, b.Addr, mqtt.Config{Dialer: tcpDialer(proxy.l.Addr().String()), ClientID: clientID(t), OnMessage: cnt.handle})
	if _, err := sub.Subscribe(ctx, mqtt.Subscription{Filter: "reset/#", QoS: packet.QoS1}); err != nil {
		t.Fatal(err)
	}
	pub := newClient(t, b.Addr, mqtt.Config{Dialer: tcpDialer(proxy.l.Addr().String()), ClientID: clientID(t)})
	acked := publishAll(t, ctx, pub, "reset/x", n, func(i int) {
		if i == n/3 || i == 2*n/3 {
			proxy.reset()
		}
	})
	waitAll(t, ctx, cnt, acked, n)
	missing, dups := cnt.report(t)
	t.Logf("delivered %d messages across 2 connection resets: %d missing, %d duplicates", n, missing, dups)
}

// TestConnackRefused checks that a CONNACK return code becomes a typed
// error, using a fake broker that refuses every connection.
func TestConnackRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(testTimeout))
				r := packet.NewReader(c, 0)
				if _, err := r.Next(); err != nil {
					return
				}
				_, _ = c.Write([]byte{0x20, 2, 0, byte(packet.ConnackNotAuthorized)})
			}()
		}
	}()
	var calls atomic.Int64
	c, err := mqtt.NewClient(mqtt.Config{
		Dialer:       tcpDialer(l.Addr().String()),
		ClientID:     "refused",
		Username:     "dev",
		CleanSession: true,
		PasswordFunc: func(context.Context) ([]byte, error) { calls.Add(1); return []byte("token"), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Connect(ctxT(t))
	if !errors.Is(err, packet.ConnackNotAuthorized) {
		t.Fatalf("Connect = %v, want ConnackNotAuthorized", err)
	}
	var code packet.ConnackCode
	if !errors.As(err, &code) || code != packet.ConnackNotAuthorized {
		t.Fatalf("errors.As = %v", code)
	}
	if calls.Load() != 1 {
		t.Fatalf("PasswordFunc called %d times, want 1", calls.Load())
	}
	if st := c.State(); st != mqtt.StateDisconnected {
		t.Fatalf("state = %v", st)
	}
}
