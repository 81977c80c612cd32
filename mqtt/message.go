package mqtt

import (
	"bytes"
	"sync"

	"github.com/hubwire/hubwire/internal/bufpool"
	"github.com/hubwire/hubwire/packet"
)

// Message is an application message, published or received.
//
// A Message given to Publish or PublishAsync is not retained: its topic and
// payload are encoded (and, for QoS 1 and 2, copied into the Store) before
// the call returns, so the caller may reuse it at once.
//
// A received Message belongs to the client: it, its Topic and its Payload
// are valid only until its handler returns. Use Clone to keep it.
type Message struct {
	// Topic is the topic name; it may hold no wildcards [MQTT-3.3.2-2].
	// It is bytes, like Payload, so that a caller can build topics into a
	// reused buffer (see package iothub's Append functions) and publish
	// without allocating. On a received message it is a view into the
	// client's buffer, valid until the handler returns.
	Topic []byte
	// Payload is the application message, any bytes (nil is empty).
	Payload []byte
	// QoS is the quality of service: 0, 1 or 2. A received message has
	// the QoS it was delivered with (at most the one subscribed).
	QoS packet.QoS
	// Retain asks the broker to keep the message for future subscribers;
	// on a received message it marks one the broker had retained.
	Retain bool
	// Dup is set on received messages the broker marked as a re-delivery.
	// It is ignored when publishing.
	Dup bool
	// ID is the packet identifier of a received QoS 1 or 2 message.
	// It is ignored when publishing.
	ID packet.ID

	// Set on received messages that are acknowledged after their handler
	// (Config.AckAfterHandler): the connection they arrived on.
	ackConn *conn
	buf     *[]byte // owns Topic and Payload of received messages (from internal/bufpool)
}

// Clone returns a copy of m that shares no memory with it. Allocates.
func (m *Message) Clone() *Message {
	return &Message{Topic: bytes.Clone(m.Topic), Payload: bytes.Clone(m.Payload), QoS: m.QoS, Retain: m.Retain, Dup: m.Dup, ID: m.ID}
}

// Handler processes a received message. It runs on the client's delivery
// goroutine, one message at a time in arrival order; m is valid until it
// returns. A slow handler delays later messages; acknowledgements of
// outgoing publishes are not delayed as long as Config.HandlerQueue has
// room (once it is full the reader stops reading, see the package
// documentation), and keep-alive never is.
//
// A handler may publish, but should not wait for an acknowledgement (a
// QoS 1 or 2 Publish, Subscribe, Unsubscribe) without a short context: when
// the handler queue is full the reader stops reading, and the awaited
// acknowledgement would sit unread behind the queued messages. Use
// PublishAsync from handlers, with a context that ends or with
// Config.FailWhenFull: for the same reason a full in-flight window may not
// free a slot until the handler returns. A handler may call Close.
type Handler func(m *Message)

// Subscription is one topic filter of a Subscribe call.
type Subscription struct {
	// Filter is the topic filter, wildcards allowed [MQTT-4.7.1].
	Filter string
	// QoS is the maximum QoS requested.
	QoS packet.QoS
	// Handler receives the messages whose topic matches Filter. When
	// several subscriptions match, the first subscribed one wins; nil
	// leaves matching messages to a later subscription or Config.OnMessage.
	Handler Handler
}

// SubackFailure is the granted QoS reported for a refused filter.
const SubackFailure packet.QoS = packet.QoS(packet.SubackFailure)

// messagePool recycles received Messages; their topic and payload bytes
// come from internal/bufpool, shared with the reader and writer buffers.
var messagePool = sync.Pool{New: func() any { return new(Message) }}

// newIncoming copies p out of the reader's frame into a pooled Message: its
// topic and payload share one buffer.
func newIncoming(p *packet.Publish) *Message {
	m := messagePool.Get().(*Message)
	n := len(p.Topic)
	bp := bufpool.Get(n + len(p.Payload))
	buf := append(append(*bp, p.Topic...), p.Payload...)
	*bp = buf
	*m = Message{Topic: buf[:n:n], Payload: buf[n:], QoS: p.QoS, Retain: p.Retain, Dup: p.Dup, ID: p.ID, buf: bp}
	return m
}

func releaseIncoming(m *Message) {
	bufpool.Put(m.buf)
	*m = Message{}
	messagePool.Put(m)
}
