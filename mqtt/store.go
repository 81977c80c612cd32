package mqtt

import (
	"slices"
	"sync"

	"github.com/hubwire/hubwire/packet"
)

// Store holds the client's unacknowledged outgoing packets: each QoS 1 or 2
// PUBLISH from the moment Publish accepts it until its PUBACK or PUBCOMP,
// and the PUBREL that replaces a QoS 2 PUBLISH once its PUBREC arrived. After
// a reconnect the client resends them in the order they were first put.
//
// Packets are stored encoded, exactly as they go on the wire. A Store that
// survives the process (a file, a database) lets a new Client with the same
// ClientID resume: NewClient reads it back with Range.
//
// Concurrency contract: the client never calls the Store while holding its
// own lock, so a slow Store (a disk, a database) delays neither
// acknowledgements, nor keep-alive, nor QoS 0 publishes, nor the handling
// of received messages. The client makes one Store call at a time (from
// whichever of its goroutines or its publishers' runs the queue of calls),
// in the order the packets' states changed, so a Store need not be safe
// for concurrent use as long as it may be called from different
// goroutines. A QoS 1 or 2 Publish or PublishAsync returns only after its
// Put returned, and the packet goes on the wire only then (a failing Put
// rejects the publish with its error), so its acknowledgement and Delete
// always follow the Put. The Delete of an acknowledged packet and the Put
// of a PUBREL may run after the acknowledgement was reported: a process
// that stops in between finds the packet again and resends it, which
// at-least-once delivery allows. Publishers of QoS 1 and 2 wait for the
// Store calls queued before theirs, so their rate is bounded by the
// Store's. Range is called only by NewClient: the client resends from its
// own copies.
type Store interface {
	// Put records pkt under id, replacing any packet already stored under
	// id without changing its position in the order. pkt is valid only
	// during the call: the Store copies what it keeps.
	Put(id packet.ID, pkt []byte) error
	// Delete forgets the packet stored under id, if any.
	Delete(id packet.ID) error
	// Range calls f for every stored packet in the order they were first
	// put, until f returns false. pkt is valid only during the call to f.
	Range(f func(id packet.ID, pkt []byte) bool) error
	// Reset forgets every packet.
	Reset() error
}

// MemoryStore is the default Store: packets live in memory and are lost with
// the process. It reuses its buffers, so a steady stream of publishes makes
// no allocations. It is safe for concurrent use.
type MemoryStore struct {
	mu      sync.Mutex
	entries map[packet.ID]*storeEntry
	free    []*storeEntry
	seq     uint64
}

type storeEntry struct {
	seq uint64
	pkt []byte
}

// maxPooledEntry bounds the size of buffers a MemoryStore keeps for reuse.
const maxPooledEntry = 64 << 10

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{}
}

// Put implements Store.
func (s *MemoryStore) Put(id packet.ID, pkt []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		s.entries = make(map[packet.ID]*storeEntry)
	}
	e := s.entries[id]
	if e == nil {
		if n := len(s.free); n > 0 {
			e = s.free[n-1]
			s.free = s.free[:n-1]
		} else {
			e = new(storeEntry)
		}
		s.seq++
		e.seq = s.seq
		s.entries[id] = e
	}
	e.pkt = append(e.pkt[:0], pkt...)
	return nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(id packet.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		return nil
	}
	delete(s.entries, id)
	if cap(e.pkt) <= maxPooledEntry {
		e.pkt = e.pkt[:0]
		s.free = append(s.free, e)
	}
	return nil
}

// Range implements Store. Allocates (it sorts a snapshot).
func (s *MemoryStore) Range(f func(id packet.ID, pkt []byte) bool) error {
	type item struct {
		id  packet.ID
		seq uint64
		pkt []byte
	}
	s.mu.Lock()
	items := make([]item, 0, len(s.entries))
	for id, e := range s.entries {
		items = append(items, item{id, e.seq, slices.Clone(e.pkt)})
	}
	s.mu.Unlock()
	slices.SortFunc(items, func(a, b item) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	for _, it := range items {
		if !f(it.id, it.pkt) {
			break
		}
	}
	return nil
}

// Reset implements Store.
func (s *MemoryStore) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.entries)
	s.free = nil
	return nil
}

// Len returns the number of stored packets.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}
