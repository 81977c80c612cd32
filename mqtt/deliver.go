package mqtt

import (
	"github.com/hubwire/hubwire/packet"
)

// deliver hands m to the delivery goroutine, starting it on first use. When
// the handler queue is full the reader blocks here: it stops reading, so the
// broker is slowed by TCP flow control instead of the client buffering
// without bound. Meanwhile the writer keeps sending what is queued and the
// keep-alive PINGREQs, and the PINGRESP deadline is suspended (the answer
// may be waiting unread in the socket), so the connection stays up.
//
// It reports whether m was queued: false when Close stopped the wait and m
// was dropped, which must then not be acknowledged.
func (c *Client) deliver(cn *conn, m *Message) bool {
	select {
	case c.queue <- m:
		c.kickDelivery()
		return true
	default:
	}
	c.kickDelivery() // the queue is full: its goroutine is running
	// About to wait: send the acknowledgements of the messages already
	// queued, and return the slots already freed.
	c.flushAcks(cn)
	c.releaseSlots(cn)
	cn.stalled.Store(true)
	c.kickClose()
	defer cn.stalled.Store(false)
	select {
	case c.queue <- m:
		return true
	case <-c.closeCh:
		releaseIncoming(m)
		return false
	}
}

// kickDelivery starts the delivery goroutine unless it is running (or
// Close stopped delivery). The goroutine returns when it finds the queue
// empty, so an idle connection keeps no goroutine (and no stack) for
// handlers; the check and the exit are made under dmu, after which a
// message queued before this call is seen by the running goroutine or
// starts a new one, so none is left behind and handlers still run one at a
// time, in order.
func (c *Client) kickDelivery() {
	c.dmu.Lock()
	if c.delivering || c.deliverStopped {
		c.dmu.Unlock()
		return
	}
	c.delivering = true
	c.dmu.Unlock()
	c.mu.Lock()
	c.live++
	c.mu.Unlock()
	go c.deliverFn() // a method value made once: no allocation per start
}

// stopDelivery is called by Close once no reader is left: no delivery
// goroutine starts any more, and deliverDone is closed now if none runs
// (else by that goroutine once it has drained the queue).
func (c *Client) stopDelivery() {
	c.dmu.Lock()
	c.deliverStopped = true
	running := c.delivering
	c.dmu.Unlock()
	if !running {
		c.deliverOnce.Do(c.closeDeliverDone)
	}
}

// deliverLoop is the delivery goroutine: it runs handlers one message at a
// time, in arrival order, and returns when the queue is empty (see
// kickDelivery). After Close it delivers what is already queued and
// closes deliverDone.
func (c *Client) deliverLoop() {
	defer c.exited()
	for {
		select {
		case m := <-c.queue:
			c.dispatch(m)
			continue
		default:
		}
		c.dmu.Lock()
		if len(c.queue) > 0 {
			c.dmu.Unlock()
			continue
		}
		c.delivering = false
		stopped := c.deliverStopped
		c.dmu.Unlock()
		if stopped {
			c.deliverOnce.Do(c.closeDeliverDone)
		}
		return
	}
}

// dispatch runs the handler of m's first matching subscription (or
// Config.OnMessage), then sends a deferred acknowledgement.
func (c *Client) dispatch(m *Message) {
	var h Handler
	if rs := c.routes.Load(); rs != nil {
		for i := range *rs {
			r := &(*rs)[i]
			if r.handler != nil && packet.MatchTopic(stringBytes(r.filter), m.Topic) {
				h = r.handler
				break
			}
		}
	}
	if h == nil {
		h = c.cfg.OnMessage
	}
	if h != nil {
		c.inHandler.Store(true)
		h(m)
		c.inHandler.Store(false)
	}
	if cn := m.ackConn; cn != nil {
		c.mu.Lock()
		switch {
		case m.QoS == packet.QoS2:
			c.pubrecLocked(m.ID, cn)
		case c.liveLocked(cn):
			c.appendAckLocked(cn, packet.TypePuback, m.ID)
		}
		c.mu.Unlock()
	}
	releaseIncoming(m)
}
