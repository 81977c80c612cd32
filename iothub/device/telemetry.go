package device

import (
	"context"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// MaxMessageSize is the most a device-to-cloud message may count (contract
// §3): body plus system-property values plus application-property names
// and values. IoT Hub closes the connection for a larger one, so Send
// refuses it.
const MaxMessageSize = 256 * 1024

// creationTimeLayout is ISO-8601 UTC with milliseconds, as the SDKs write
// $.ctime.
const creationTimeLayout = "2006-01-02T15:04:05.000Z"

// Message is a device-to-cloud (telemetry) message.
//
// A Message may be reused for the next Send once Send returned: the client
// keeps a topic buffer in it, so a loop that reuses one Message (and its
// Properties) sends without allocating. A Message must not be given to two
// Sends at once.
type Message struct {
	// Payload is the body, any bytes.
	Payload []byte
	// Properties holds the system properties a device may set (MessageID,
	// CorrelationID, UserID, ContentType, ContentEncoding, CreationTime as
	// text, Expiry, Schema, Subject — the Plug and Play component — and
	// OutputName for Edge modules) and the application properties (App,
	// in order; Properties.Add appends one).
	Properties iothub.Properties
	// CreationTime, when not zero and Properties.CreationTime is empty, is
	// sent as $.ctime (ISO-8601 UTC, milliseconds).
	CreationTime time.Time
	// QoS0 sends the message at QoS 0: no acknowledgement, so it is lost
	// if the connection drops, and Send fails with ErrNotConnected while
	// the client is reconnecting. The default is QoS 1.
	QoS0 bool

	topic []byte       // reused topic buffer
	mm    mqtt.Message // reused engine message
}

// Send sends m as telemetry. At QoS 1 (the default) it returns once the hub
// acknowledged it, or when ctx ends: the message was then still accepted
// and is delivered at least once, across reconnects and token renewals
// (with a file Store, across restarts); only the wait was abandoned. While
// Config.QueueSize messages await their acknowledgement, Send waits for
// room within ctx. At QoS 0 it returns once the message is queued for the
// network.
//
// Errors: ErrInvalidMessage (nil, too large, a property that cannot be
// encoded), ErrClosed (or the error in Err), ErrNotConnected (QoS 0 while
// not connected), ctx's error.
func (c *Client) Send(ctx context.Context, m *Message) error {
	if ctx == nil {
		ctx = context.Background()
	}
	mm, err := c.prepare(ctx, m)
	if err != nil {
		return err
	}
	return c.mapErr(c.mq.Publish(ctx, mm))
}

// SendAsync queues m and returns without waiting for the acknowledgement:
// done (if not nil) is called exactly once, with nil when the hub
// acknowledged the message, or with an error when the client closed
// first. It lets one goroutine keep many messages in flight. done runs on
// the connection's reader goroutine and must not block; a function value
// made once (not a closure per call) keeps sending allocation-free. ctx
// bounds only the wait for room in the queue. m may be reused as soon as
// SendAsync returns.
func (c *Client) SendAsync(ctx context.Context, m *Message, done func(error)) error {
	if ctx == nil {
		ctx = context.Background()
	}
	mm, err := c.prepare(ctx, m)
	if err != nil {
		return err
	}
	return c.mapErr(c.mq.PublishAsync(ctx, mm, done))
}

// prepare builds m's topic into its buffer and returns the engine message.
func (c *Client) prepare(ctx context.Context, m *Message) (*mqtt.Message, error) {
	if m == nil {
		return nil, classErr(ErrInvalidMessage, "device: nil message", nil)
	}
	size := len(m.Payload) + m.Properties.CountedSize()
	if size > MaxMessageSize {
		return nil, classErr(ErrInvalidMessage, "device: message over 256 KB (IoT Hub would close the connection)", nil)
	}
	t := iothub.AppendTelemetryTopic(m.topic[:0], c.id.deviceID, c.id.moduleID, &m.Properties)
	if !m.CreationTime.IsZero() && m.Properties.CreationTime == "" {
		var tb [32]byte
		t = iothub.AppendPair(t, "$.ctime", m.CreationTime.UTC().AppendFormat(tb[:0], creationTimeLayout))
	}
	if len(t) > iothub.MaxTopicLen {
		return nil, classErr(ErrInvalidMessage, "device: properties make the topic longer than 65535 bytes", nil)
	}
	m.topic = t
	m.mm = mqtt.Message{Topic: t, Payload: m.Payload, QoS: packet.QoS1}
	if m.QoS0 {
		m.mm.QoS = packet.QoS0
	}
	return &m.mm, nil
}
