package emulator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/packet"
)

// C2D limits (contract §4).
const (
	MaxC2DQueue           = 50
	MaxC2DSize            = 64 * 1024
	DefaultC2DTTL         = time.Hour
	MaxC2DTTL             = 48 * time.Hour
	DefaultMaxDeliveries  = 10
	feedbackLockDuration  = time.Minute
	maxFeedbackBatchCount = 100
)

// AckMode is a C2D message's iothub-ack: which outcomes produce feedback.
type AckMode string

// Ack modes.
const (
	AckNone     AckMode = "none"
	AckPositive AckMode = "positive" // Success
	AckNegative AckMode = "negative" // Expired, DeliveryCountExceeded
	AckFull     AckMode = "full"     // both
)

// C2DMessage is a cloud-to-device message to send.
type C2DMessage struct {
	// MessageID is $.mid; empty means a generated id (letters, digits, -).
	MessageID       string
	CorrelationID   string // $.cid
	UserID          string // $.uid
	ContentType     string // $.ct
	ContentEncoding string // $.ce
	// Ack selects feedback; empty means AckNone.
	Ack AckMode
	// TTL is the time to live: zero means Config.C2DDefaultTTL (1 h), at
	// most MaxC2DTTL.
	TTL time.Duration
	// ExpiryTime, when set, is the absolute expiry ($.exp) instead of TTL.
	ExpiryTime time.Time
	// Properties are application properties (keys must be non-empty).
	Properties map[string]string
	// Body is the payload.
	Body []byte
}

// QueuedC2D is a message waiting in a device's queue.
type QueuedC2D struct {
	MessageID     string
	Enqueued      time.Time
	Expiry        time.Time
	DeliveryCount int
	InFlight      bool // sent to the live connection and not yet acknowledged
	Message       C2DMessage
}

// FeedbackRecord is one C2D delivery outcome, as IoT Hub's feedback
// endpoint reports it.
type FeedbackRecord struct {
	OriginalMessageID  string    `json:"originalMessageId"`
	EnqueuedTimeUTC    time.Time `json:"enqueuedTimeUtc"`
	StatusCode         string    `json:"statusCode"` // Success, Expired, DeliveryCountExceeded, Purged
	Description        string    `json:"description"`
	DeviceID           string    `json:"deviceId"`
	DeviceGenerationID string    `json:"deviceGenerationId"`
}

// FeedbackBatch is a locked set of feedback records: complete it to remove
// them, abandon it (or let the lock lapse after a minute) to see them again.
type FeedbackBatch struct {
	LockToken    string
	EnqueuedTime time.Time
	Records      []FeedbackRecord
}

// c2dRecord is a queued message as stored.
type c2dRecord struct {
	Seq           uint64     `json:"seq"`
	DeviceID      string     `json:"deviceId"`
	GenerationID  string     `json:"generationId"`
	Enqueued      time.Time  `json:"enqueued"`
	Expiry        time.Time  `json:"expiry"`
	DeliveryCount int        `json:"deliveryCount"`
	Msg           C2DMessage `json:"msg"`

	lockedBy *session
}

type feedbackEntry struct {
	Seq    uint64         `json:"seq"`
	Record FeedbackRecord `json:"record"`
	lock   string
	until  time.Time
}

// c2dStore holds every device's queue and the feedback records.
type c2dStore struct {
	h        *Hub
	mu       sync.Mutex
	queues   map[string][]*c2dRecord
	seq      uint64
	feedback []*feedbackEntry
	fbSeq    uint64
}

func newC2DStore(h *Hub) *c2dStore {
	return &c2dStore{h: h, queues: map[string][]*c2dRecord{}}
}

func c2dPrefix(deviceID string) []byte { return append([]byte(deviceID), 0) }

func (c *c2dStore) key(r *c2dRecord) []byte { return seqKey(c2dPrefix(r.DeviceID), r.Seq) }

func (c *c2dStore) load(s *store) error {
	if err := loadJSON(s, bucketC2D, func(k []byte, v *c2dRecord) error {
		c.queues[v.DeviceID] = append(c.queues[v.DeviceID], v)
		c.seq = max(c.seq, v.Seq)
		return nil
	}); err != nil {
		return err
	}
	for _, q := range c.queues {
		sort.Slice(q, func(i, j int) bool { return q[i].Seq < q[j].Seq })
	}
	return loadJSON(s, bucketFeedback, func(k []byte, v *feedbackEntry) error {
		c.feedback = append(c.feedback, v)
		c.fbSeq = max(c.fbSeq, v.Seq)
		return nil
	})
}

// newMessageID returns a random id of lower-case hex and dashes (plain, as
// the SDKs need: contract notes).
func newMessageID() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand does not fail
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// SendC2D queues a cloud-to-device message for a device and returns its
// message id. It returns once the message is durable. The message is
// delivered at QoS 1 (or 0, as subscribed) to the device's connection and
// leaves the queue only when the device acknowledges it. Errors:
// ErrDeviceNotFound, ErrQueueFull (50 pending), ErrMessageTooLarge (over
// 64 KB of body and properties), ErrInvalidArgument (TTL over 48 h, an
// empty property key, an unknown ack mode).
func (h *Hub) SendC2D(ctx context.Context, deviceID string, m C2DMessage) (string, error) {
	switch m.Ack {
	case "":
		m.Ack = AckNone
	case AckNone, AckPositive, AckNegative, AckFull:
	default:
		return "", invalid("ack must be none, positive, negative or full")
	}
	if m.TTL < 0 || m.TTL > MaxC2DTTL {
		return "", invalid("TTL must be at most 48 hours")
	}
	size := len(m.Body) + len(m.MessageID) + len(m.CorrelationID) + len(m.UserID) + len(m.ContentType) + len(m.ContentEncoding)
	for k, v := range m.Properties {
		if k == "" {
			return "", invalid("empty application property name")
		}
		size += len(k) + len(v)
	}
	if size > MaxC2DSize {
		return "", ErrMessageTooLarge
	}
	if m.MessageID == "" {
		m.MessageID = newMessageID()
	}
	now := h.now().UTC()
	exp := m.ExpiryTime
	if exp.IsZero() {
		ttl := m.TTL
		if ttl == 0 {
			ttl = h.cfg.C2DDefaultTTL
		}
		exp = now.Add(ttl)
	} else if exp.Sub(now) > MaxC2DTTL {
		return "", invalid("expiry more than 48 hours ahead")
	}
	m.Properties = cloneMap(m.Properties)
	m.Body = slices.Clone(m.Body)
	h.reg.mu.RLock()
	d, ok := h.reg.devices[deviceID]
	var gen string
	if ok {
		gen = d.GenerationID
	}
	h.reg.mu.RUnlock()
	if !ok {
		return "", ErrDeviceNotFound
	}
	c := h.c2d
	c.mu.Lock()
	c.expireLocked(now)
	if len(c.queues[deviceID]) >= MaxC2DQueue {
		c.mu.Unlock()
		return "", ErrQueueFull
	}
	c.seq++
	rec := &c2dRecord{Seq: c.seq, DeviceID: deviceID, GenerationID: gen, Enqueued: now, Expiry: exp, Msg: m}
	if err := h.store.write(put(bucketC2D, c.key(rec), rec)); err != nil {
		c.mu.Unlock()
		return "", err
	}
	c.queues[deviceID] = append(c.queues[deviceID], rec)
	c.mu.Unlock()
	if s := h.liveSession(deviceID); s != nil {
		s.kickC2D()
	}
	return m.MessageID, nil
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// PendingC2D returns the messages queued for a device, oldest first.
func (h *Hub) PendingC2D(deviceID string) []QueuedC2D {
	c := h.c2d
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(h.now())
	var out []QueuedC2D
	for _, r := range c.queues[deviceID] {
		out = append(out, QueuedC2D{MessageID: r.Msg.MessageID, Enqueued: r.Enqueued, Expiry: r.Expiry,
			DeliveryCount: r.DeliveryCount, InFlight: r.lockedBy != nil, Message: r.Msg})
	}
	return out
}

// PurgeC2D removes every message queued for a device and returns how many
// there were. ErrDeviceNotFound for an unknown device.
func (h *Hub) PurgeC2D(ctx context.Context, deviceID string) (int, error) {
	if _, err := h.GetDevice(deviceID); err != nil {
		return 0, err
	}
	c := h.c2d
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.queues[deviceID])
	if err := h.store.deletePrefix(bucketC2D, c2dPrefix(deviceID)); err != nil {
		return 0, err
	}
	delete(c.queues, deviceID)
	return n, nil
}

// count returns the number of messages queued for a device.
func (c *c2dStore) count(deviceID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queues[deviceID])
}

// drop forgets a deleted device's queue (the store's records are deleted
// by the caller).
func (c *c2dStore) drop(deviceID string) {
	c.mu.Lock()
	delete(c.queues, deviceID)
	c.mu.Unlock()
}

// expire dead-letters expired messages now.
func (c *c2dStore) expire() {
	c.mu.Lock()
	c.expireLocked(c.h.now())
	c.mu.Unlock()
}

// expireLocked removes expired messages that are not in flight, with
// Expired feedback for negative and full acks.
func (c *c2dStore) expireLocked(now time.Time) {
	var ops []op
	for dev, q := range c.queues {
		kept := q[:0]
		for _, r := range q {
			if r.lockedBy == nil && now.After(r.Expiry) {
				ops = append(ops, del(bucketC2D, c.key(r)))
				ops = c.feedbackLocked(ops, r, "Expired", "Message expired", AckNegative)
				continue
			}
			kept = append(kept, r)
		}
		clear(q[len(kept):])
		if len(kept) == 0 {
			delete(c.queues, dev)
		} else {
			c.queues[dev] = kept
		}
	}
	if err := c.h.store.write(ops...); err != nil {
		c.h.log.Error("C2D expiry not stored", "err", err)
	}
}

// feedbackLocked adds a feedback record for r when its ack mode asks for
// outcomes of kind want (AckPositive or AckNegative), and the op storing it.
func (c *c2dStore) feedbackLocked(ops []op, r *c2dRecord, status, desc string, want AckMode) []op {
	if r.Msg.Ack != want && r.Msg.Ack != AckFull {
		return ops
	}
	c.fbSeq++
	e := &feedbackEntry{Seq: c.fbSeq, Record: FeedbackRecord{
		OriginalMessageID: r.Msg.MessageID, EnqueuedTimeUTC: c.h.now().UTC(), StatusCode: status,
		Description: desc, DeviceID: r.DeviceID, DeviceGenerationID: r.GenerationID,
	}}
	c.feedback = append(c.feedback, e)
	return append(ops, put(bucketFeedback, seqKey(nil, e.Seq), e))
}

// kickC2D starts delivering the device's queue on this connection unless a
// delivery is already running (which then goes round once more).
func (s *session) kickC2D() {
	s.mu.Lock()
	if !s.c2dActive {
		s.mu.Unlock()
		return
	}
	if s.delivering {
		s.again = true
		s.mu.Unlock()
		return
	}
	s.delivering = true
	s.mu.Unlock()
	if !s.h.track() {
		s.mu.Lock()
		s.delivering = false
		s.mu.Unlock()
		return
	}
	go func() {
		defer s.h.wg.Done()
		s.deliverC2D()
	}()
}

// deliverC2D publishes every queued message not yet in flight, in order.
func (s *session) deliverC2D() {
	c := s.h.c2d
	for {
		s.mu.Lock()
		s.again = false
		qos := s.c2dQoS
		active := s.c2dActive
		s.mu.Unlock()
		var sends []*c2dRecord
		var ids []packet.ID
		var ops []op
		now := s.h.now()
		c.mu.Lock()
		c.expireLocked(now)
		select {
		case <-s.done:
			active = false
		default:
		}
		if active {
			for _, r := range c.queues[s.auth.deviceID] {
				if r.lockedBy != nil {
					continue
				}
				if qos == packet.QoS0 {
					// A QoS 0 subscription completes a message as it is
					// sent (the protocol gateway's model, §4).
					sends = append(sends, r)
					continue
				}
				id := s.nextPacketID()
				if id == 0 {
					break
				}
				r.lockedBy = s
				sends = append(sends, r)
				ids = append(ids, id)
			}
			if qos == packet.QoS0 && len(sends) > 0 {
				c.queues[s.auth.deviceID] = slices.DeleteFunc(c.queues[s.auth.deviceID], func(r *c2dRecord) bool {
					return slices.Contains(sends, r)
				})
				for _, r := range sends {
					ops = append(ops, del(bucketC2D, c.key(r)))
					ops = c.feedbackLocked(ops, r, "Success", "Success", AckPositive)
				}
			}
		}
		c.mu.Unlock()
		if err := s.h.store.write(ops...); err != nil {
			s.log.Error("C2D completion not stored", "err", err)
		}
		for i, r := range sends {
			var id packet.ID
			if qos == packet.QoS1 {
				id = ids[i]
				s.mu.Lock()
				s.inflight[id] = r.Seq
				s.mu.Unlock()
			}
			topic := appendC2DTopic(nil, r)
			if err := s.publish(topic, r.Msg.Body, qos, id); err != nil {
				break // the connection is closing; finish releases the rest
			}
		}
		s.mu.Lock()
		if !s.again {
			s.delivering = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// nextPacketID returns a packet id not in flight, or 0 when all are.
func (s *session) nextPacketID() packet.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range 65535 {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		if _, used := s.inflight[s.nextID]; !used {
			s.inflight[s.nextID] = 0 // reserved until the caller sets it
			return s.nextID
		}
	}
	return 0
}

// appendC2DTopic builds devices/{id}/messages/devicebound/{bag} for r: the
// system properties, iothub-ack, then the application properties in name
// order, every one with a value (never a bare key, which SDKs mis-read).
func appendC2DTopic(dst []byte, r *c2dRecord) []byte {
	m := &r.Msg
	props := iothub.Properties{
		MessageID:       m.MessageID,
		CorrelationID:   m.CorrelationID,
		UserID:          m.UserID,
		ContentType:     m.ContentType,
		ContentEncoding: m.ContentEncoding,
		To:              "/devices/" + r.DeviceID + "/messages/devicebound",
		Ack:             string(m.Ack),
	}
	if !m.ExpiryTime.IsZero() || m.TTL != 0 {
		props.Expiry = r.Expiry.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	keys := make([]string, 0, len(m.Properties))
	for k := range m.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		props.App = append(props.App, iothub.Property{Key: k, Value: m.Properties[k]})
	}
	return iothub.AppendC2DTopic(dst, r.DeviceID, &props)
}

// onC2DAck completes the C2D message a PUBACK acknowledges.
func (s *session) onC2DAck(id packet.ID) {
	s.mu.Lock()
	seq, ok := s.inflight[id]
	delete(s.inflight, id)
	s.mu.Unlock()
	if !ok || seq == 0 {
		s.log.Debug("PUBACK for no C2D message in flight", "packetId", id)
		return
	}
	c := s.h.c2d
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queues[s.auth.deviceID]
	i := slices.IndexFunc(q, func(r *c2dRecord) bool { return r.Seq == seq })
	if i < 0 {
		return // purged meanwhile
	}
	r := q[i]
	ops := []op{del(bucketC2D, c.key(r))}
	ops = c.feedbackLocked(ops, r, "Success", "Success", AckPositive)
	if err := s.h.store.write(ops...); err != nil {
		s.log.Error("C2D completion not stored", "err", err)
		return
	}
	c.queues[s.auth.deviceID] = slices.Delete(q, i, i+1)
	if len(c.queues[s.auth.deviceID]) == 0 {
		delete(c.queues, s.auth.deviceID)
	}
}

// release returns a closed connection's unacknowledged messages to the
// queue for the next session, counting the delivery (an abandon); a message
// delivered Config.C2DMaxDeliveryCount times is dead-lettered with
// DeliveryCountExceeded feedback. Then delivery restarts on the identity's
// live connection, if another one took over.
func (c *c2dStore) release(s *session, inflight map[packet.ID]uint64) {
	c.mu.Lock()
	var ops []op
	q := c.queues[s.auth.deviceID]
	kept := q[:0]
	for _, r := range q {
		if r.lockedBy != s {
			kept = append(kept, r)
			continue
		}
		r.lockedBy = nil
		r.DeliveryCount++
		if r.DeliveryCount >= c.h.cfg.C2DMaxDeliveryCount {
			ops = append(ops, del(bucketC2D, c.key(r)))
			ops = c.feedbackLocked(ops, r, "DeliveryCountExceeded", "Message delivery count exceeded", AckNegative)
			continue
		}
		ops = append(ops, put(bucketC2D, c.key(r), r))
		kept = append(kept, r)
	}
	if len(q) > 0 {
		clear(q[len(kept):])
		if len(kept) == 0 {
			delete(c.queues, s.auth.deviceID)
		} else {
			c.queues[s.auth.deviceID] = kept
		}
	}
	c.mu.Unlock()
	if err := c.h.store.write(ops...); err != nil {
		c.h.log.Error("C2D delivery counts not stored", "err", err)
	}
	if live := c.h.liveSession(s.auth.deviceID); live != nil && live != s {
		live.kickC2D()
	}
}

// ReceiveFeedback locks and returns up to 100 feedback records not locked
// by another receiver, or ok false when there are none. Complete the batch
// with CompleteFeedback; abandon it with AbandonFeedback or let the lock
// lapse (one minute).
func (h *Hub) ReceiveFeedback() (batch FeedbackBatch, ok bool) {
	c := h.c2d
	c.mu.Lock()
	defer c.mu.Unlock()
	now := h.now()
	c.expireLocked(now)
	token := newMessageID()
	for _, e := range c.feedback {
		if e.lock != "" && now.Before(e.until) {
			continue
		}
		e.lock, e.until = token, now.Add(feedbackLockDuration)
		batch.Records = append(batch.Records, e.Record)
		if len(batch.Records) == maxFeedbackBatchCount {
			break
		}
	}
	if len(batch.Records) == 0 {
		return FeedbackBatch{}, false
	}
	batch.LockToken, batch.EnqueuedTime = token, now.UTC()
	return batch, true
}

// CompleteFeedback removes the records of a locked batch.
// ErrInvalidArgument (a lock token that is unknown or lapsed) otherwise.
func (h *Hub) CompleteFeedback(ctx context.Context, lockToken string) error {
	c := h.c2d
	c.mu.Lock()
	defer c.mu.Unlock()
	now := h.now()
	var ops []op
	kept := c.feedback[:0]
	for _, e := range c.feedback {
		if lockToken != "" && e.lock == lockToken && now.Before(e.until) {
			ops = append(ops, del(bucketFeedback, seqKey(nil, e.Seq)))
			continue
		}
		kept = append(kept, e)
	}
	if len(ops) == 0 {
		return invalid("unknown or expired feedback lock token")
	}
	if err := h.store.write(ops...); err != nil {
		return err
	}
	clear(c.feedback[len(kept):])
	c.feedback = kept
	return nil
}

// AbandonFeedback unlocks a batch so its records are received again.
func (h *Hub) AbandonFeedback(ctx context.Context, lockToken string) error {
	c := h.c2d
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.feedback {
		if lockToken != "" && e.lock == lockToken {
			e.lock, n = "", n+1
		}
	}
	if n == 0 {
		return invalid("unknown feedback lock token")
	}
	return nil
}

// Feedback returns every feedback record not yet completed, oldest first.
func (h *Hub) Feedback() []FeedbackRecord {
	c := h.c2d
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(h.now())
	out := make([]FeedbackRecord, len(c.feedback))
	for i, e := range c.feedback {
		out[i] = e.Record
	}
	return out
}
