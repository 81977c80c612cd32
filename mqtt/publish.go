package mqtt

import (
	"bytes"
	"context"
	"sync"

	"github.com/hubwire/hubwire/internal/bufpool"
	"github.com/hubwire/hubwire/packet"
)

// Publish sends m. At QoS 0 it returns once the message is queued for the
// writer (ErrNotConnected when no connection is up). At QoS 1 and 2 it
// returns when the broker's PUBACK or PUBCOMP arrives.
//
// When the in-flight window is full Publish waits for a slot within ctx, or
// returns ErrInFlightFull at once with Config.FailWhenFull. When ctx ends
// first, the error matches ctx's error and tells the caller which of two
// things happened:
//
//   - ErrNotAccepted: ctx ended while Publish waited for a slot. The message
//     was not stored and will not be sent; publish it again if it must go.
//   - ErrPending: the message was accepted (it is in the Store) and only
//     the wait for its acknowledgement was abandoned. It will be delivered
//     at least once (QoS 1) or exactly once (QoS 2), across reconnects, or
//     fail with ErrClosed if Close gives up on it. Do not publish it again;
//     use PublishAsync to learn the outcome.
//
// m is not retained after Publish returns. Steady-state publishing makes no
// allocations.
func (c *Client) Publish(ctx context.Context, m *Message) error {
	if m == nil {
		return errNilMessage
	}
	if m.QoS == packet.QoS0 {
		return c.publish0(ctx, m)
	}
	w := waiterPool.Get().(*waiter)
	if err := c.publishQ(ctx, m, w.fn); err != nil {
		waiterPool.Put(w)
		return err
	}
	select {
	case err := <-w.ch:
		waiterPool.Put(w)
		return err
	case <-ctx.Done():
		// w stays referenced by the pending publish; it is not reused.
		return &wrapped{msg: "mqtt: publish accepted, acknowledgement pending: " + ctx.Err().Error(), err: ErrPending, cause: ctx.Err()}
	}
}

// PublishAsync queues m and returns without waiting for the acknowledgement:
// done (if not nil) is called exactly once with nil when the PUBACK (QoS 1)
// or PUBCOMP (QoS 2) arrives, or with ErrClosed when the client closes
// first. At QoS 0 done is called before PublishAsync returns. done runs on
// the connection's reader goroutine: it must not block (count, or send to a
// buffered channel). A method value or function created once, rather than
// a closure per call, keeps publishing allocation-free.
//
// ctx bounds only the wait for a slot in the in-flight window: when it ends
// first the error matches both ErrNotAccepted and ctx's error, and the
// message was not stored. m is not retained after PublishAsync returns. It lets one goroutine keep the whole
// window busy.
func (c *Client) PublishAsync(ctx context.Context, m *Message, done func(error)) error {
	if m == nil {
		return errNilMessage
	}
	if m.QoS == packet.QoS0 {
		err := c.publish0(ctx, m)
		if err == nil && done != nil {
			done(nil)
		}
		return err
	}
	return c.publishQ(ctx, m, done)
}

// publish0 encodes a QoS 0 publish straight into the connection's pending
// buffer, waiting while the buffer is over Config.WriteBufferSize.
func (c *Client) publish0(ctx context.Context, m *Message) error {
	p := packet.Publish{Topic: m.Topic, Payload: m.Payload, Retain: m.Retain}
	waited := false
	c.mu.Lock()
	for {
		cn := c.cur
		switch {
		case c.closing:
			c.mu.Unlock()
			return ErrClosed
		case cn == nil || cn.closing: // closing: Reconnect queued DISCONNECT
			c.mu.Unlock()
			return ErrNotConnected
		case cn.wbuf != nil && len(*cn.wbuf) >= c.cfg.WriteBufferSize:
			c.mu.Unlock()
			select {
			case <-cn.space:
			case <-cn.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			waited = true
			c.mu.Lock()
			continue
		}
		if err := c.checkTopicLocked(m.Topic); err != nil {
			c.mu.Unlock()
			return err
		}
		bp := c.reserveLocked(cn, p.Size())
		var err error
		*bp, err = p.AppendBinary(*bp)
		if waited && len(*bp) < c.cfg.WriteBufferSize {
			// Pass the wake-up on to another waiting publisher.
			select {
			case cn.space <- struct{}{}:
			default:
			}
		}
		c.mu.Unlock()
		if err != nil {
			return invalid("publish", err)
		}
		return nil
	}
}

// publishQ accepts a QoS 1 or 2 publish: takes a window slot, allocates a
// packet id, stores the encoded packet and queues it when connected.
func (c *Client) publishQ(ctx context.Context, m *Message, done func(error)) error {
	if !m.QoS.Valid() {
		return invalid("publish: QoS must be 0, 1 or 2", nil)
	}
	select {
	case c.sem <- struct{}{}:
	default:
		if c.cfg.FailWhenFull {
			return ErrInFlightFull
		}
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return &wrapped{msg: "mqtt: publish not accepted (in-flight window full): " + ctx.Err().Error(), err: ErrNotAccepted, cause: ctx.Err()}
		case <-c.closeCh:
			return ErrClosed
		}
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		c.releaseSlot()
		return ErrClosed
	}
	if err := c.checkTopicLocked(m.Topic); err != nil {
		c.mu.Unlock()
		c.releaseSlot()
		return err
	}
	id, ok := c.allocIDLocked()
	if !ok {
		c.mu.Unlock()
		c.releaseSlot()
		return errNoPacketID
	}
	p := packet.Publish{QoS: m.QoS, Retain: m.Retain, Topic: m.Topic, ID: id, Payload: m.Payload}
	bp := bufpool.Get(p.Size())
	var err error
	if *bp, err = p.AppendBinary(*bp); err != nil {
		c.mu.Unlock()
		bufpool.Put(bp)
		c.releaseSlot()
		return invalid("publish", err)
	}
	pe := c.newPendingLocked()
	c.pendingSeq++
	pe.kind, pe.qos, pe.slot, pe.done, pe.pkt, pe.seq = kindPublish, m.QoS, true, done, bp, c.pendingSeq
	c.pending[id] = pe
	// Store it before it goes on the wire, outside mu (see storeq.go):
	// run the Store queue here unless another goroutine is running it.
	w := putWaiterPool.Get().(*putWaiter)
	c.enqueueStoreLocked(storeOp{kind: opPut, id: id, pkt: *bp, pe: pe, w: w})
	if !c.storeBusy {
		c.storeBusy = true
		c.runStoreLocked()
	}
	c.mu.Unlock()
	err = <-w.ch
	putWaiterPool.Put(w)
	return err
}

var errNilMessage = invalid("publish: nil message", nil)

// waiter turns the done callback of a pending publish into a channel
// receive for the blocking Publish. Waiters are pooled with their channel
// and bound method value, so a blocking Publish allocates nothing.
type waiter struct {
	ch chan error
	fn func(error)
}

var waiterPool = sync.Pool{New: func() any {
	w := &waiter{ch: make(chan error, 1)}
	w.fn = w.done
	return w
}}

func (w *waiter) done(err error) { w.ch <- err }

// checkTopicLocked validates a topic name [MQTT-4.7.3] (packet's encoder
// trusts the topic's bytes). A copy of the last valid topic is kept, so a
// stream of publishes to one topic pays for one comparison, and the copy's
// buffer is reused when the topic changes.
func (c *Client) checkTopicLocked(topic []byte) error {
	if len(topic) != 0 && bytes.Equal(topic, c.validTopic) {
		return nil
	}
	if err := packet.ValidateTopicName(topic); err != nil {
		return invalid("publish: topic", err)
	}
	c.validTopic = append(c.validTopic[:0], topic...)
	return nil
}
