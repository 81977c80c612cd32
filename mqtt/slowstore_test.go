package mqtt_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// slowStore is a MemoryStore that sleeps on every call, like a disk-backed
// Store, and whose Puts can be held at a gate.
type slowStore struct {
	*mqtt.MemoryStore
	delay time.Duration

	mu      sync.Mutex
	gate    chan struct{} // Puts wait while not nil
	inPut   chan struct{} // receives when a Put reaches the gate
	calls   int
	running int // concurrent calls right now
	overlap bool
}

func newSlowStore(delay time.Duration) *slowStore {
	return &slowStore{MemoryStore: mqtt.NewMemoryStore(), delay: delay, inPut: make(chan struct{}, 16)}
}

func (s *slowStore) enter() {
	s.mu.Lock()
	s.calls++
	s.running++
	if s.running > 1 {
		s.overlap = true
	}
	s.mu.Unlock()
	time.Sleep(s.delay)
}

func (s *slowStore) leave() {
	s.mu.Lock()
	s.running--
	s.mu.Unlock()
}

func (s *slowStore) block() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

func (s *slowStore) unblock() {
	s.mu.Lock()
	close(s.gate)
	s.gate = nil
	s.mu.Unlock()
}

func (s *slowStore) Put(id packet.ID, pkt []byte) error {
	s.enter()
	defer s.leave()
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.inPut <- struct{}{}
		<-gate
	}
	return s.MemoryStore.Put(id, pkt)
}

func (s *slowStore) Delete(id packet.ID) error {
	s.enter()
	defer s.leave()
	return s.MemoryStore.Delete(id)
}

func (s *slowStore) Range(f func(packet.ID, []byte) bool) error {
	s.enter()
	defer s.leave()
	return s.MemoryStore.Range(f)
}

// storeIDs returns the packet ids in s, in its order.
func storeIDs(s mqtt.Store) []packet.ID {
	var ids []packet.ID
	_ = s.Range(func(id packet.ID, _ []byte) bool { ids = append(ids, id); return true })
	return ids
}

// TestSlowStoreDoesNotStall checks that the Store is not called under the
// client's lock: while a publisher's Put is held (on top of 5 ms per
// call), acknowledgements of earlier publishes complete, received QoS 1
// messages are acknowledged, QoS 0 publishes go out and keep-alive pings
// are sent and answered. Once the Put returns its publish goes out.
func TestSlowStoreDoesNotStall(t *testing.T) {
	fb := newFakeBroker(t)
	store := newSlowStore(5 * time.Millisecond)
	s := newSink(4)
	c, fc := fakeClient(t, fb, mqtt.Config{Store: store, KeepAlive: time.Second, OnMessage: s.handle})
	ctx := ctxT(t)
	res := newResultLog()
	if err := c.PublishAsync(ctx, &mqtt.Message{Topic: []byte("first"), QoS: packet.QoS1}, res.done); err != nil {
		t.Fatal(err)
	}
	first := fc.publish()

	store.block()
	held := make(chan error, 1)
	go func() { held <- c.PublishAsync(ctx, &mqtt.Message{Topic: []byte("held"), QoS: packet.QoS1}, res.done) }()
	select {
	case <-store.inPut:
	case <-time.After(testTimeout):
		t.Fatal("the Put never started")
	}

	fc.send(&packet.Puback{ID: first.ID})
	if errs := res.wait(t, 1); errs[0] != nil {
		t.Fatalf("first publish: %v", errs[0])
	}
	if err := c.Publish(ctx, &mqtt.Message{Topic: []byte("zero")}); err != nil {
		t.Fatal(err)
	}
	if p := fc.publish(); string(p.Topic) != "zero" {
		t.Fatalf("got PUBLISH %q, want the QoS 0 one", p.Topic)
	}
	fc.send(&packet.Publish{QoS: packet.QoS1, Topic: []byte("in"), ID: 5})
	if p, ok := fc.next().(*packet.Puback); !ok || p.ID != 5 {
		t.Fatalf("got %v, want PUBACK 5", p)
	}
	s.next(t)
	// Keep-alive: the next packet is a PINGREQ, read raw (next skips them).
	_ = fc.c.SetReadDeadline(time.Now().Add(testTimeout))
	f, err := fc.r.Next()
	if err != nil || f.Type() != packet.TypePingreq {
		t.Fatalf("got %v, %v, want PINGREQ", f, err)
	}
	fc.send(&packet.Pingresp{})

	store.unblock()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	p := fc.publish()
	if string(p.Topic) != "held" {
		t.Fatalf("got %q, want the held publish", p.Topic)
	}
	fc.send(&packet.Puback{ID: p.ID})
	if errs := res.wait(t, 1); errs[0] != nil {
		t.Fatalf("held publish: %v", errs[0])
	}
	deadline := time.Now().Add(testTimeout)
	for store.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("store still holds %v", storeIDs(store))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSlowStoreOrder checks, with a Store that takes 5 ms per call and
// several concurrent publishers, that the client calls the Store one call
// at a time, that the Store holds the packets in the order they went on the
// wire, and that after a reconnect to a resumed session every unacknowledged
// publish is resent in that order, with DUP, and completes once.
func TestSlowStoreOrder(t *testing.T) {
	fb := newFakeBroker(t)
	fb.sessionPresent.Store(true)
	store := newSlowStore(5 * time.Millisecond)
	c, fc := fakeClient(t, fb, mqtt.Config{Store: store, ClientID: "slow-order"})
	ctx := ctxT(t)
	res := newResultLog()
	const publishers, each = 4, 6
	var wg sync.WaitGroup
	for g := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m := &mqtt.Message{Topic: []byte(fmt.Sprintf("g%d/%d", g, i)), QoS: packet.QoS1}
				if err := c.PublishAsync(ctx, m, res.done); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var wire []packet.ID
	for range publishers * each {
		wire = append(wire, fc.publish().ID)
	}
	wg.Wait()
	if d := cmp.Diff(wire, storeIDs(store)); d != "" {
		t.Fatalf("store order differs from wire order (-wire +store):\n%s", d)
	}
	fc.c.Close()

	fc2 := fb.accept(t)
	var resent []packet.ID
	for range publishers * each {
		p := fc2.publish()
		if !p.Dup {
			t.Fatalf("resent PUBLISH %d without DUP", p.ID)
		}
		resent = append(resent, p.ID)
		fc2.send(&packet.Puback{ID: p.ID})
	}
	if d := cmp.Diff(wire, resent); d != "" {
		t.Fatalf("resend order differs from the original (-original +resent):\n%s", d)
	}
	for _, err := range res.wait(t, publishers*each) {
		if err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(testTimeout)
	for store.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("store still holds %v", storeIDs(store))
		}
		time.Sleep(time.Millisecond)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.overlap {
		t.Fatal("the client called the Store concurrently")
	}
}
