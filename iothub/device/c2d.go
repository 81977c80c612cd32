package device

import (
	"fmt"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/mqtt"
)

// C2DMessage is a cloud-to-device message, or, for a module, a message
// routed to one of its inputs (IoT Edge). It and its Payload are valid
// only until the handler returns; copy what you keep.
type C2DMessage struct {
	// Payload is the body.
	Payload []byte
	// Properties are the decoded properties: MessageID, CorrelationID,
	// UserID, To, ContentType, ContentEncoding, Expiry, Ack (iothub-ack:
	// none, positive, negative or full) and the application properties.
	Properties iothub.Properties
	// InputName is the module input the message was routed to; empty for
	// C2D.
	InputName string
	// Redelivered is set when the hub marked the message as sent before
	// (its earlier delivery was not acknowledged).
	Redelivered bool
}

// deliverC2D runs Config.OnC2D for m. The engine acknowledges m (PUBACK:
// the hub then completes the message) after this returns, in arrival
// order; a panic in the handler is logged and the message still completed,
// as IoT Hub's MQTT has no way to reject it.
func (c *Client) deliverC2D(r *iothub.Route, m *mqtt.Message) {
	h := c.cfg.OnC2D
	if h == nil {
		c.log.Warn("device: C2D message without a handler; acknowledged and dropped")
		return
	}
	msg := &c.c2d
	msg.Payload, msg.InputName, msg.Redelivered = m.Payload, "", m.Dup
	if err := msg.Properties.Parse(r.Bag); err != nil {
		c.log.Warn("device: C2D message with a malformed property bag", "err", err)
	}
	if r.Kind == iothub.RouteModuleInput {
		msg.InputName = string(r.InputName)
	}
	c.c2dBusy.Store(true)
	defer func() {
		c.c2dBusy.Store(false)
		if p := recover(); p != nil {
			c.log.Error("device: C2D handler panicked", "panic", fmt.Sprint(p))
		}
		msg.Payload = nil
	}()
	h(c.ctx, msg)
}
