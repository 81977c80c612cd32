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
	c.deliverOnce.Do(c.startDelivery)
	select {
	case c.queue <- m:
		return true
	default:
	}
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

func (c *Client) startDelivery() {
	c.mu.Lock()
	c.live++
	c.mu.Unlock()
	go c.deliverLoop()
}

// deliverLoop is the delivery goroutine: it runs handlers one message at a
// time, in arrival order. After Close it delivers what is already queued
// and returns.
func (c *Client) deliverLoop() {
	defer c.exited()
	defer close(c.deliverDone)
	for {
		select {
		case m := <-c.queue:
			c.dispatch(m)
		case <-c.closeCh:
			for {
				select {
				case m := <-c.queue:
					c.dispatch(m)
				default:
					return
				}
			}
		}
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
