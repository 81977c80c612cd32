package emulator

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"iter"
	"sync"
	"time"

	"github.com/hubwire/hubwire/iothub"
	bolt "go.etcd.io/bbolt"
)

// MaxTelemetrySize is the largest device-to-cloud message, counted as
// contract §3 says: body, system-property values and application-property
// names and values. A larger one closes the connection.
const MaxTelemetrySize = 256 * 1024

// Message is a device-to-cloud message as the hub keeps it: what IoT Hub's
// built-in Event Hubs-compatible endpoint would deliver.
//
// SystemProperties use the hub's names: message-id, correlation-id,
// user-id, content-type, content-encoding, iothub-creation-time-utc,
// absolute-expiry-time, to, iothub-message-schema, dt-subject,
// iothub-interface-id, iothub-outputname, Diagnostic-Id,
// Correlation-Context, and the stamped iothub-connection-device-id,
// iothub-connection-module-id, iothub-connection-auth-method,
// iothub-connection-auth-generation-id, iothub-enqueuedtime,
// iothub-message-source (Telemetry) and dt-dataschema (the model id).
// Properties are the application properties, with mqtt-retain=true for a
// retained publish and iothub-MessageType=Will for a Will.
type Message struct {
	SequenceNumber   int64             `json:"sequenceNumber"`
	EnqueuedTime     time.Time         `json:"enqueuedTime"`
	DeviceID         string            `json:"deviceId"`
	ModuleID         string            `json:"moduleId,omitempty"`
	Body             []byte            `json:"body"`
	SystemProperties map[string]string `json:"systemProperties"`
	Properties       map[string]string `json:"properties"`
}

// sysNames maps the device-settable system properties to the hub's names.
var sysNames = []struct {
	p    iothub.SysProp
	name string
}{
	{iothub.SysMessageID, "message-id"},
	{iothub.SysCorrelationID, "correlation-id"},
	{iothub.SysUserID, "user-id"},
	{iothub.SysContentType, "content-type"},
	{iothub.SysContentEncoding, "content-encoding"},
	{iothub.SysCreationTime, "iothub-creation-time-utc"},
	{iothub.SysExpiry, "absolute-expiry-time"},
	{iothub.SysTo, "to"},
	{iothub.SysSchema, "iothub-message-schema"},
	{iothub.SysSubject, "dt-subject"},
	{iothub.SysInterfaceID, "iothub-interface-id"},
	{iothub.SysOutputName, "iothub-outputname"},
	{iothub.SysDiagID, "Diagnostic-Id"},
	{iothub.SysDiagContext, "Correlation-Context"},
}

// newTelemetry builds the stored message of a device publish: the bag
// decoded (leniently: an empty application key is dropped, a system key
// wins over an application key spelled like it), the size checked, the
// hub properties stamped. The error is the reason to close the connection.
func (h *Hub) newTelemetry(a *authInfo, r *iothub.Route, payload []byte, retain, will bool, now time.Time) (*Message, error) {
	var props iothub.Properties
	if err := props.ParseD2C(r.Bag); err != nil {
		return nil, errors.New("telemetry property bag: " + err.Error())
	}
	if n := len(payload) + props.CountedSize(); n > MaxTelemetrySize {
		return nil, errors.New("telemetry message over 256 KB (§3)")
	}
	m := &Message{
		DeviceID:         a.deviceID,
		ModuleID:         a.moduleID,
		Body:             append([]byte(nil), payload...),
		SystemProperties: make(map[string]string, 8),
		Properties:       make(map[string]string, len(props.App)+1),
	}
	for _, p := range props.App {
		if p.Key == "" {
			continue
		}
		m.Properties[p.Key] = p.Value
	}
	for _, sp := range sysNames {
		if v := props.Get(sp.p); v != "" {
			m.SystemProperties[sp.name] = v
		}
	}
	if retain {
		m.Properties["mqtt-retain"] = "true"
	}
	if will {
		m.Properties["iothub-MessageType"] = "Will"
	}
	sp := m.SystemProperties
	sp["iothub-connection-device-id"] = a.deviceID
	if a.moduleID != "" {
		sp["iothub-connection-module-id"] = a.moduleID
	}
	sp["iothub-connection-auth-method"] = a.authMethodJSON()
	sp["iothub-connection-auth-generation-id"] = a.generationID
	sp["iothub-message-source"] = "Telemetry"
	if a.modelID != "" {
		sp["dt-dataschema"] = a.modelID
	}
	return m, nil
}

// Position is where a telemetry read starts: Earliest, Latest or
// FromSequence.
type Position struct {
	kind uint8
	seq  int64
}

// Telemetry positions.
var (
	// Earliest starts at the oldest message still retained.
	Earliest = Position{kind: 1}
	// Latest starts after the newest message: only messages enqueued
	// after the read begins.
	Latest = Position{kind: 2}
)

// FromSequence starts at sequence number n (inclusive), or at the oldest
// retained message when n has been dropped.
func FromSequence(n int64) Position { return Position{kind: 3, seq: max(n, 0)} }

// eventLog is the telemetry log's storage: records with consecutive
// sequence numbers, each an 8-byte enqueued time (unix nanoseconds) and the
// encoded Message. memLog serves the in-memory mode, boltLog the durable
// one.
type eventLog interface {
	// append stores recs durably as sequence numbers next, next+1, ….
	append(next uint64, recs [][]byte) error
	// scan calls fn for records from seq on, in order, until fn returns false.
	scan(from uint64, fn func(seq uint64, rec []byte) bool) error
	// drop deletes the records before seq.
	drop(before uint64) error
	// bounds returns the first retained sequence number, the next one to
	// assign and the retained bytes.
	bounds() (first, next uint64, size int64)
	close() error
}

// appendReq is one group-commit request.
type appendReq struct {
	msgs []*Message
	done chan error
}

// telemetry is the hub's retained telemetry log with group commit: one
// committer goroutine takes every pending append, stamps sequence numbers
// and enqueued times, writes them in one durable transaction and only then
// answers the callers (who send their PUBACKs).
type telemetry struct {
	h    *Hub
	log  eventLog
	reqs chan appendReq
	stop chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex
	wake chan struct{} // closed and replaced after each commit
}

func openTelemetry(h *Hub) (*telemetry, error) {
	var l eventLog
	if h.store == nil {
		l = &memLog{}
	} else {
		bl, err := openBoltLog(h.store.db)
		if err != nil {
			return nil, err
		}
		l = bl
	}
	t := &telemetry{h: h, log: l, reqs: make(chan appendReq, 1024), stop: make(chan struct{}), wake: make(chan struct{})}
	t.wg.Add(1)
	go t.committer()
	return t, nil
}

func (t *telemetry) close() {
	close(t.stop)
	t.wg.Wait()
	t.log.close()
}

// append stores msgs durably; it returns once they are.
func (t *telemetry) append(msgs []*Message) error {
	if len(msgs) == 0 {
		return nil
	}
	req := appendReq{msgs: msgs, done: make(chan error, 1)}
	select {
	case t.reqs <- req:
	case <-t.stop:
		return ErrClosed
	}
	select {
	case err := <-req.done:
		return err
	case <-t.stop:
		return ErrClosed
	}
}

func (t *telemetry) committer() {
	defer t.wg.Done()
	var pending []appendReq
	var recs [][]byte
	for {
		select {
		case <-t.stop:
			return
		case r := <-t.reqs:
			pending = append(pending[:0], r)
		}
	drain:
		for len(pending) < 4096 {
			select {
			case r := <-t.reqs:
				pending = append(pending, r)
			default:
				break drain
			}
		}
		_, next, _ := t.log.bounds()
		now := t.h.now().UTC()
		recs = recs[:0]
		seq := next
		for _, r := range pending {
			for _, m := range r.msgs {
				m.SequenceNumber = int64(seq)
				m.EnqueuedTime = now
				m.SystemProperties["iothub-enqueuedtime"] = now.Format(time.RFC3339Nano)
				recs = append(recs, encodeRecord(m))
				seq++
			}
		}
		err := t.log.append(next, recs)
		for _, r := range pending {
			r.done <- err
		}
		clear(pending)
		if err == nil {
			t.mu.Lock()
			close(t.wake)
			t.wake = make(chan struct{})
			t.mu.Unlock()
		}
	}
}

func encodeRecord(m *Message) []byte {
	body, _ := json.Marshal(m) // strings, bytes and times always marshal
	rec := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint64(rec, uint64(m.EnqueuedTime.UnixNano()))
	return append(rec, body...)
}

func decodeRecord(rec []byte) (Message, error) {
	var m Message
	if len(rec) < 8 {
		return m, errors.New("emulator: short telemetry record")
	}
	err := json.Unmarshal(rec[8:], &m)
	return m, err
}

// trim drops telemetry older than the retention or beyond the size cap.
func (t *telemetry) trim() {
	first, next, size := t.log.bounds()
	if first == next {
		return
	}
	cutoff := t.h.now().Add(-t.h.cfg.TelemetryRetention).UnixNano()
	over := size - t.h.cfg.TelemetryMaxBytes
	before := first
	t.log.scan(first, func(seq uint64, rec []byte) bool {
		if int64(binary.BigEndian.Uint64(rec)) >= cutoff && over <= 0 {
			return false
		}
		over -= int64(len(rec))
		before = seq + 1
		return true
	})
	if before > first {
		if err := t.log.drop(before); err != nil {
			t.h.log.Error("telemetry retention", "err", err)
		}
	}
}

func (t *telemetry) start(from Position) uint64 {
	first, next, _ := t.log.bounds()
	switch from.kind {
	case 2:
		return next
	case 3:
		return max(uint64(from.seq), first)
	}
	return first
}

// ReadTelemetry returns up to max (at least 1) messages available now from
// position from, oldest first.
func (h *Hub) ReadTelemetry(from Position, max int) ([]Message, error) {
	if max <= 0 {
		max = 1
	}
	var out []Message
	var derr error
	err := h.telemetry.log.scan(h.telemetry.start(from), func(seq uint64, rec []byte) bool {
		m, err := decodeRecord(rec)
		if err != nil {
			derr = err
			return false
		}
		out = append(out, m)
		return len(out) < max
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// TelemetryRange returns the sequence numbers of the oldest retained
// message and the one the next message will get.
func (h *Hub) TelemetryRange() (first, next int64) {
	f, n, _ := h.telemetry.log.bounds()
	return int64(f), int64(n)
}

// Telemetry streams telemetry from position from: the retained messages,
// then each new one as it is enqueued, until ctx is done or the hub
// closes; the last pair yielded then carries ctx.Err() or ErrClosed.
func (h *Hub) Telemetry(ctx context.Context, from Position) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		t := h.telemetry
		seq := t.start(from)
		for {
			t.mu.Lock()
			wake := t.wake
			t.mu.Unlock()
			var batch []Message
			var derr error
			if err := t.log.scan(seq, func(s uint64, rec []byte) bool {
				m, err := decodeRecord(rec)
				if err != nil {
					derr = err
					return false
				}
				batch = append(batch, m)
				seq = s + 1
				return len(batch) < 256
			}); err != nil && derr == nil {
				derr = err
			}
			for _, m := range batch {
				if !yield(m, nil) {
					return
				}
			}
			if derr != nil {
				yield(Message{}, derr)
				return
			}
			if len(batch) == 256 {
				continue
			}
			select {
			case <-wake:
			case <-ctx.Done():
				yield(Message{}, ctx.Err())
				return
			case <-t.stop:
				yield(Message{}, ErrClosed)
				return
			}
		}
	}
}

// memLog keeps telemetry in memory.
type memLog struct {
	mu    sync.RWMutex
	first uint64
	recs  [][]byte
	size  int64
}

func (l *memLog) append(next uint64, recs [][]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		l.recs = append(l.recs, r)
		l.size += int64(len(r))
	}
	return nil
}

func (l *memLog) scan(from uint64, fn func(uint64, []byte) bool) error {
	l.mu.RLock()
	first, recs := l.first, l.recs
	l.mu.RUnlock()
	if from < first {
		from = first
	}
	for i := from - first; i < uint64(len(recs)); i++ {
		if !fn(first+i, recs[i]) {
			break
		}
	}
	return nil
}

func (l *memLog) drop(before uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if before <= l.first {
		return nil
	}
	n := min(before-l.first, uint64(len(l.recs)))
	for _, r := range l.recs[:n] {
		l.size -= int64(len(r))
	}
	l.recs = append([][]byte(nil), l.recs[n:]...)
	l.first += n
	return nil
}

func (l *memLog) bounds() (uint64, uint64, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.first, l.first + uint64(len(l.recs)), l.size
}

func (l *memLog) close() error { return nil }

// boltLog keeps telemetry in the hub's bbolt file, one record per key
// (the 8-byte sequence number), all of a commit in one transaction.
type boltLog struct {
	db          *bolt.DB
	mu          sync.RWMutex
	first, next uint64
	size        int64
}

func openBoltLog(db *bolt.DB) (*boltLog, error) {
	l := &boltLog{db: db}
	err := db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTelemetry).Cursor()
		k, v := c.First()
		if k == nil {
			return nil
		}
		l.first = binary.BigEndian.Uint64(k)
		for ; k != nil; k, v = c.Next() {
			l.size += int64(len(v))
			l.next = binary.BigEndian.Uint64(k) + 1
		}
		return nil
	})
	return l, err
}

func (l *boltLog) append(next uint64, recs [][]byte) error {
	var n int64
	err := l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTelemetry)
		b.FillPercent = 1 // keys only grow
		for i, r := range recs {
			n += int64(len(r))
			if err := b.Put(seqKey(nil, next+uint64(i)), r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	l.mu.Lock()
	if l.first == l.next {
		l.first = next
	}
	l.next = next + uint64(len(recs))
	l.size += n
	l.mu.Unlock()
	return nil
}

func (l *boltLog) scan(from uint64, fn func(uint64, []byte) bool) error {
	return l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTelemetry).Cursor()
		for k, v := c.Seek(seqKey(nil, from)); k != nil; k, v = c.Next() {
			if !fn(binary.BigEndian.Uint64(k), v) {
				break
			}
		}
		return nil
	})
}

func (l *boltLog) drop(before uint64) error {
	var n int64
	err := l.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketTelemetry).Cursor()
		for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k) < before; k, v = c.First() {
			n += int64(len(v))
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.first = max(l.first, before)
	l.size -= n
	l.mu.Unlock()
	return nil
}

func (l *boltLog) bounds() (uint64, uint64, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.first, l.next, l.size
}

func (l *boltLog) close() error { return nil }
