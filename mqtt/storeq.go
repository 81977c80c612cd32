package mqtt

import (
	"sync"

	"github.com/hubwire/hubwire/internal/bufpool"
	"github.com/hubwire/hubwire/packet"
)

// The Store is called outside Client.mu, so that a slow (disk-backed) Store
// stalls neither the reader (acknowledgements), nor the writer (keep-alive),
// nor QoS 0 publishers. The order of the calls is still decided under mu:
// every Store operation is appended to Client.storeQ while mu is held, at
// the moment the client's state changes, and the queue is executed in that
// order by one goroutine at a time (the executor), with mu released during
// each call.
//
// A QoS 1 or 2 publisher appends its Put and, when no executor is running,
// becomes the executor itself, so an uncontended publish costs no hand-off
// between goroutines. The reader only appends (a Delete on PUBACK or
// PUBCOMP, the Put of a PUBREL on PUBREC) and, when no executor is running,
// wakes the store goroutine (started with the first such operation), so
// the reader never waits for the Store.
//
// A published packet is written to the connection only once its Put has
// returned (write-ahead): a Put that fails rejects the publish before
// anything was sent, and the packet's acknowledgement, hence its Delete,
// always follows its Put. The client keeps its own copy of every
// unacknowledged packet (pending.pkt) and resends from it after a
// reconnect, so the Store is read only by NewClient.

type storeOpKind uint8

const (
	opPut    storeOpKind = iota // Put a new PUBLISH (pending.pkt); a publisher waits for it
	opPutRel                    // Put the PUBREL that replaces a QoS 2 PUBLISH
	opDelete                    // Delete an acknowledged packet
)

// storeOp is one queued Store call.
type storeOp struct {
	kind storeOpKind
	id   packet.ID
	pkt  []byte     // opPut: the encoded PUBLISH (pe's buffer)
	pe   *pending   // opPut: the entry the PUBLISH belongs to
	w    *putWaiter // opPut: the publisher waiting for the outcome
	err  error      // the call's result
}

// putWaiter receives the outcome of a publisher's Put. Pooled.
type putWaiter struct{ ch chan error }

var putWaiterPool = sync.Pool{New: func() any { return &putWaiter{ch: make(chan error, 1)} }}

// enqueueStoreLocked appends op to the Store queue.
func (c *Client) enqueueStoreLocked(op storeOp) {
	c.storeQ = append(c.storeQ, op)
}

// kickStoreLocked makes sure the queued operations run without the caller
// running them: it wakes the store goroutine, starting it if needed, unless
// an executor is running (which runs everything queued before it stops).
func (c *Client) kickStoreLocked() {
	if c.storeBusy || len(c.storeQ) == 0 {
		return
	}
	if !c.storeStarted {
		if c.closed {
			// Close is past the point of waiting for the store
			// goroutine: run the operations here (teardown of the last
			// connection, off the reader).
			c.storeBusy = true
			c.runStoreLocked()
			return
		}
		c.storeStarted = true
		c.live++
		go c.storeLoop()
	}
	select {
	case c.storeWake <- struct{}{}:
	default:
	}
}

// runStoreLocked executes the Store queue until it is empty. It is called
// with mu held and storeBusy set by the caller, which is then the
// executor; it releases mu during the Store calls and returns with mu held
// and storeBusy cleared.
func (c *Client) runStoreLocked() {
	for len(c.storeQ) > 0 {
		q := c.storeQ
		c.storeQ = c.storeSpare[:0]
		c.storeSpare = nil
		c.mu.Unlock()
		for i := range q {
			op := &q[i]
			switch op.kind {
			case opPut:
				op.err = c.store.Put(op.id, op.pkt)
			case opPutRel:
				var rel [4]byte
				pkt, _ := (&packet.Pubrel{ID: op.id}).AppendBinary(rel[:0]) // id is non-zero
				op.err = c.store.Put(op.id, pkt)
			case opDelete:
				op.err = c.store.Delete(op.id)
			}
		}
		c.mu.Lock()
		for i := range q {
			c.applyStoreLocked(&q[i])
		}
		clear(q)
		if c.storeSpare == nil {
			c.storeSpare = q[:0]
		}
	}
	c.storeBusy = false
	if c.storeStopping {
		select {
		case c.storeWake <- struct{}{}:
		default:
		}
	}
}

// applyStoreLocked acts on the result of a Store call.
func (c *Client) applyStoreLocked(op *storeOp) {
	switch op.kind {
	case opPutRel:
		if op.err != nil {
			c.log.Error("mqtt: store: put PUBREL", "id", int(op.id), "err", op.err)
		}
		return
	case opDelete:
		if op.err != nil {
			c.log.Error("mqtt: store: delete", "id", int(op.id), "err", op.err)
		}
		return
	}
	pe := op.pe
	if c.pending[op.id] != pe || pe.kind != kindPublish || pe.stored {
		// Close gave up on the publish while it was being stored.
		op.w.ch <- ErrClosed
		return
	}
	if op.err != nil {
		delete(c.pending, op.id)
		bufpool.Put(pe.pkt)
		slot := pe.slot
		c.freePendingLocked(pe)
		if slot {
			c.releaseSlot()
		}
		op.w.ch <- &wrapped{msg: "mqtt: store: " + op.err.Error(), err: op.err}
		return
	}
	pe.stored = true
	if cn := c.cur; cn != nil && c.liveLocked(cn) {
		bp := c.reserveLocked(cn, len(*pe.pkt))
		*bp = append(*bp, *pe.pkt...)
		pe.sent = true
	}
	op.w.ch <- nil
}

// storeLoop is the store goroutine: it runs the operations the reader
// queued while no publisher was running the queue. Close stops it once
// the reader is gone and the queue is empty.
func (c *Client) storeLoop() {
	defer c.exited()
	defer close(c.storeDone)
	for {
		<-c.storeWake
		c.mu.Lock()
		if !c.storeBusy && len(c.storeQ) > 0 {
			c.storeBusy = true
			c.runStoreLocked()
		}
		stop := c.storeStopping && !c.storeBusy && len(c.storeQ) == 0
		c.mu.Unlock()
		if stop {
			return
		}
	}
}

// stopStore asks the store goroutine, if any, to finish the queue and
// return; it returns the channel closed when it has (nil if there is none).
func (c *Client) stopStore() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.storeStopping = true
	if !c.storeStarted {
		return nil
	}
	select {
	case c.storeWake <- struct{}{}:
	default:
	}
	return c.storeDone
}
