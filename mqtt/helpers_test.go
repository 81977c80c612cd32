package mqtt_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/mosquitto"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 20 * time.Second

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func tcpDialer(addr string) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// newClient creates and connects a client to addr, closing it at cleanup.
func newClient(t *testing.T, addr string, cfg mqtt.Config) *mqtt.Client {
	t.Helper()
	if cfg.Dialer == nil {
		cfg.Dialer = tcpDialer(addr)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = clientID(t)
		cfg.CleanSession = true
	}
	if cfg.Reconnect.Min == 0 {
		cfg.Reconnect.Min = 20 * time.Millisecond
		cfg.Reconnect.Max = 200 * time.Millisecond
	}
	c, err := mqtt.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(ctxT(t)); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

// received is a copy of a delivered message.
type received struct {
	Topic   string
	Payload string
	QoS     packet.QoS
	Retain  bool
	Dup     bool
}

// sink collects messages from a handler.
type sink struct {
	ch chan received
}

func newSink(n int) *sink { return &sink{ch: make(chan received, n)} }

func (s *sink) handle(m *mqtt.Message) {
	s.ch <- received{Topic: string(m.Topic), Payload: string(m.Payload), QoS: m.QoS, Retain: m.Retain, Dup: m.Dup}
}

func (s *sink) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-s.ch:
		return r
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for a message")
		return received{}
	}
}

// none checks that no message arrives within d.
func (s *sink) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-s.ch:
		t.Fatalf("unexpected message %+v", r)
	case <-time.After(d):
	}
}

var idSeq atomic.Int64

// clientID returns a client id unique within the test binary.
func clientID(t *testing.T) string {
	return fmt.Sprintf("%s-%d", t.Name(), idSeq.Add(1))
}

func broker(t *testing.T) *mosquitto.Broker {
	return mosquitto.Start(t, mosquitto.Options{})
}

// connRecorder dials TCP and remembers the connections, so a test can cut
// them under the client.
type connRecorder struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (r *connRecorder) dialer(addr string) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		c, err := tcpDialer(addr)(ctx)
		if err == nil {
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
		}
		return c, err
	}
}

func (r *connRecorder) last() net.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[len(r.conns)-1]
}

// stateLog records state changes.
type stateLog struct {
	mu  sync.Mutex
	seq []mqtt.State
}

func (l *stateLog) record(_, to mqtt.State, _ error) {
	l.mu.Lock()
	l.seq = append(l.seq, to)
	l.mu.Unlock()
}

func (l *stateLog) count(s mqtt.State) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, x := range l.seq {
		if x == s {
			n++
		}
	}
	return n
}

func (l *stateLog) last() mqtt.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seq) == 0 {
		return -1
	}
	return l.seq[len(l.seq)-1]
}

// wireTap dials TCP and decodes, with package packet, every byte the client
// writes, counting the packets by type: tests observe the client on the
// wire instead of through counters inside it.
type wireTap struct {
	mu     sync.Mutex
	counts [16]int
}

func (w *wireTap) dialer(addr string) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		nc, err := tcpDialer(addr)(ctx)
		if err != nil {
			return nil, err
		}
		pr, pw := io.Pipe()
		go func() {
			r := packet.NewReader(pr, 0)
			for {
				f, err := r.Next()
				if err != nil {
					pr.CloseWithError(err)
					return
				}
				w.mu.Lock()
				w.counts[f.Type()]++
				w.mu.Unlock()
			}
		}()
		return &tappedConn{Conn: nc, w: pw}, nil
	}
}

func (w *wireTap) count(t packet.Type) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts[t]
}

type tappedConn struct {
	net.Conn
	w *io.PipeWriter
}

func (c *tappedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	_, _ = c.w.Write(b[:n])
	return n, err
}

func (c *tappedConn) Close() error {
	c.w.Close()
	return c.Conn.Close()
}
