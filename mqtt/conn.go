package mqtt

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubwire/hubwire/internal/bufpool"
	"github.com/hubwire/hubwire/packet"
)

// conn is one network connection and its two goroutines: the reader (run)
// and the writer (writeLoop).
//
// Outgoing packets are appended, under Client.mu, to wbuf: the queue is a
// byte buffer holding encoded packets. The writer takes the whole buffer,
// writes it with one Write call and hands the buffer back to a pool, so a
// burst of packets costs one syscall and an idle connection keeps no write
// buffer.
type conn struct {
	nc   net.Conn
	r    *packet.Reader
	src  *headReader // r's source: nc, after the bytes the idle reader read ahead
	idle *readIdler  // nil when nc has no file descriptor

	since    time.Time // when it was installed
	attempts int       // reconnection attempts it took to open it (0 for Connect)

	// Guarded by Client.mu.
	writing bool    // a goroutine (writer or reader) is writing to nc
	wbuf    *[]byte // pending output; nil when there is none
	closing bool    // DISCONNECT queued: the writer closes nc once wbuf is written
	planned *replan // Reconnect queued the DISCONNECT: reconnect at once
	err     error   // why the writer closed nc, if it did

	writerOn bool           // the writer goroutine runs
	parked   bool           // the writer waits (lingers) for more output on wake
	wake     chan struct{}  // cap 1: output was queued for the parked writer
	dead     bool           // torn down: no writer starts any more
	pingAt   time.Duration  // when the outstanding PINGREQ was queued, since t0
	ka       *time.Timer    // runs keepAlive; nil without keep-alive
	writers  sync.WaitGroup // the writer goroutine, waited for by teardown
	writeFn  func()         // writeLoop(cn), made once

	space chan struct{} // cap 1: the writer took wbuf
	done  chan struct{} // closed by teardown

	// Owned by the writer goroutine (one runs at a time, see writerOn).
	linger      *time.Timer // ends the writer's linger; made by the first writer
	lingerArmed bool        // linger is running (or fired, unreceived)
	lingerMark  uint64      // writes when linger was armed
	writes      uint64      // buffers the writer has written

	// Owned by the goroutine that set writing (see writeOwned).
	t0          time.Time    // set by newConn; lastWrite counts from it
	lastWrite   atomic.Int64 // when the last Write started, as a duration since t0 (read by the writer's idle timer)
	lastRead    atomic.Int64 // when the reader last got data, as a duration since t0 (set by the reader once per burst)
	deadlineSet time.Time    // when the write deadline was last moved

	pingOut atomic.Bool // a PINGREQ awaits its PINGRESP
	stalled atomic.Bool // the reader is blocked on a full handler queue

	// freeSlots counts window slots freed by acknowledgements that the
	// reader has not yet returned to Client.sem. Owned by the reader.
	freeSlots int
	// inbox holds the messages of the current read burst and acks the
	// encoded PUBACKs for them, until flushBurst. Owned by the reader.
	inbox []*Message
	acks  []byte
}

// releaseSlots returns the window slots freed by the acknowledgements read
// so far. The reader calls it once per burst of acknowledgements rather than
// once per PUBACK: a publisher waiting for the window then wakes once and
// finds the whole burst's room, so its messages leave in one write.
func (c *Client) releaseSlots(cn *conn) {
	for ; cn.freeSlots > 0; cn.freeSlots-- {
		c.releaseSlot()
	}
}

// headReader is the source of a connection's packet.Reader: the first bytes
// of a read burst, read ahead by the idle reader into head, then the
// connection.
type headReader struct {
	r      io.Reader
	head   [8]byte
	off, n int
	err    error // returned once head is consumed
}

func (h *headReader) Read(p []byte) (int, error) {
	if h.off < h.n {
		k := copy(p, h.head[h.off:h.n])
		h.off += k
		return k, nil
	}
	if h.err != nil {
		err := h.err
		h.err = nil
		return 0, err
	}
	return h.r.Read(p)
}

// waitHead blocks in a small read for the first bytes of the next burst,
// for a connection without a file descriptor to wait on (TLS, WebSocket),
// so that the reader holds no read buffer while the connection is idle:
// the packet.Reader takes one from the pool only when data has arrived.
func (h *headReader) waitHead() error {
	n, err := h.r.Read(h.head[:])
	h.off, h.n = 0, n
	if n == 0 {
		if err == nil {
			return nil // a zero-byte read: Next reads again
		}
		return err
	}
	h.err = err
	return nil
}

func newConn(nc net.Conn, r *packet.Reader, src *headReader) *conn {
	return &conn{
		nc:    nc,
		r:     r,
		src:   src,
		idle:  newReadIdler(nc),
		wake:  make(chan struct{}, 1),
		space: make(chan struct{}, 1),
		done:  make(chan struct{}),
		t0:    time.Now(),
	}
}

// Write buffers come from internal/bufpool (shared with packet.Reader), so
// an idle connection holds none. They grow by whole size classes (see
// reserveLocked) so that they go back to the pool instead of being dropped.
const minWriteBuf = 4096

func putBuf(bp *[]byte) { bufpool.Put(bp) }

// bufLocked returns cn's pending-output buffer, taking one from the pool
// and waking the writer when the queue was empty.
func (c *Client) bufLocked(cn *conn) *[]byte {
	return c.reserveLocked(cn, 0)
}

// reserveLocked returns cn's pending-output buffer with room for n more
// bytes, waking the writer when the queue was empty.
func (c *Client) reserveLocked(cn *conn, n int) *[]byte {
	bp := cn.wbuf
	if bp == nil {
		bp = bufpool.Get(max(n, minWriteBuf))
		cn.wbuf = bp
		c.wakeWriterLocked(cn)
	} else if cap(*bp)-len(*bp) < n {
		nb := bufpool.Get(2*len(*bp) + n)
		*nb = append(*nb, *bp...)
		bufpool.Put(bp)
		bp, cn.wbuf = nb, nb
	}
	return bp
}

// appendAckLocked queues a two-byte-body acknowledgement of type t
// (PUBACK, PUBREC, PUBREL or PUBCOMP) for id, encoded by package packet.
func (c *Client) appendAckLocked(cn *conn, t packet.Type, id packet.ID) {
	bp := c.reserveLocked(cn, 4)
	var err error
	switch t {
	case packet.TypePuback:
		*bp, err = (&packet.Puback{ID: id}).AppendBinary(*bp)
	case packet.TypePubrec:
		*bp, err = (&packet.Pubrec{ID: id}).AppendBinary(*bp)
	case packet.TypePubrel:
		*bp, err = (&packet.Pubrel{ID: id}).AppendBinary(*bp)
	case packet.TypePubcomp:
		*bp, err = (&packet.Pubcomp{ID: id}).AppendBinary(*bp)
	}
	if err != nil {
		// Only a zero id fails, and every id acknowledged here was
		// decoded (non-zero) or allocated by the client.
		c.log.Error("mqtt: encode "+t.String(), "id", int(id), "err", err)
	}
}

// decodeAck decodes f, a PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK, with
// package packet, returning its packet identifier.
func decodeAck(f packet.Frame) (packet.ID, error) {
	var err error
	var id packet.ID
	switch f.Type() {
	case packet.TypePuback:
		var p packet.Puback
		err, id = p.Decode(f), p.ID
	case packet.TypePubrec:
		var p packet.Pubrec
		err, id = p.Decode(f), p.ID
	case packet.TypePubrel:
		var p packet.Pubrel
		err, id = p.Decode(f), p.ID
	case packet.TypePubcomp:
		var p packet.Pubcomp
		err, id = p.Decode(f), p.ID
	case packet.TypeUnsuback:
		var p packet.Unsuback
		err, id = p.Decode(f), p.ID
	}
	return id, err
}

// liveLocked reports whether packets may still be queued on cn: it is the
// current connection and DISCONNECT has not been queued on it, after which
// nothing else may be sent [MQTT-3.14.4-1].
func (c *Client) liveLocked(cn *conn) bool {
	return c.cur == cn && !cn.closing
}

// sendAck queues an acknowledgement on cn if cn is still live; otherwise
// the broker will resend and we answer then.
func (c *Client) sendAck(cn *conn, t packet.Type, id packet.ID) {
	c.mu.Lock()
	if c.liveLocked(cn) {
		c.appendAckLocked(cn, t, id)
	}
	c.mu.Unlock()
}

// pingAfter returns how long the connection may stay silent, in either
// direction, before the writer sends a PINGREQ: three quarters of the
// keep-alive interval, so that the PINGREQ reaches the broker before the
// interval has passed [MQTT-3.1.2-23] despite timer latency and the time
// the write takes.
func pingAfter(ka time.Duration) time.Duration { return ka - ka/4 }

// keepAlive is the connection's keep-alive, run by its timer (cn.ka): when
// nothing has been written, or nothing received, for three quarters of the
// keep-alive interval it queues a PINGREQ, and it closes the connection
// when the PINGRESP does not arrive within PingTimeout. The second rule
// finds a dead link while the client only publishes: its writes keep the
// first rule quiet, and a link that went black shows only as silence from
// the broker (a QoS 0 publisher gets no acknowledgements, so any silence
// counts). The timer is not reset per write, which would cost more than
// the write: when it fires it checks the silence since the last write or
// read (cn.lastWrite and cn.lastRead, from cn.t0 just after the CONNACK
// before the first), whichever is older, and waits for the rest. A timer
// rather than a goroutine: an idle connection keeps no writer stack.
func (c *Client) keepAlive(cn *conn) {
	silence, pt := pingAfter(c.cfg.KeepAlive), c.cfg.PingTimeout
	c.mu.Lock()
	if cn.dead {
		c.mu.Unlock()
		return
	}
	since := time.Since(cn.t0)
	pingOut, stalled := cn.pingOut.Load(), cn.stalled.Load()
	if pingOut && since-cn.pingAt >= pt {
		if !stalled {
			if cn.err == nil {
				cn.err = ErrPingTimeout
			}
			c.mu.Unlock()
			cn.nc.Close() // the reader's read fails: teardown
			return
		}
		// We are not reading (handlers are behind): the PINGRESP may
		// be sitting in the socket. Wait again.
		cn.pingAt = since
	}
	idle := since - time.Duration(min(cn.lastWrite.Load(), cn.lastRead.Load()))
	next := silence - idle
	if idle >= silence {
		next = silence
		// When the reader is stalled the PINGRESP may sit unread: ping
		// again anyway, so the broker keeps hearing from us within its
		// keep-alive. Otherwise an outstanding ping decides.
		if (!pingOut || stalled) && c.liveLocked(cn) {
			bp := c.reserveLocked(cn, 2)
			*bp, _ = (&packet.Pingreq{}).AppendBinary(*bp) // never fails
			cn.pingOut.Store(true)
			cn.pingAt = since
		}
	}
	if cn.pingOut.Load() {
		next = min(next, max(cn.pingAt+pt-since, time.Millisecond))
	}
	cn.ka.Reset(next)
	c.mu.Unlock()
}

// wakeWriterLocked hands what is queued on cn to the writer goroutine:
// it wakes the writer when it is parked and starts one when none runs,
// unless the reader is writing (it hands over when done) or the
// connection is torn down.
func (c *Client) wakeWriterLocked(cn *conn) {
	if cn.writing || cn.dead {
		return
	}
	if cn.writerOn {
		if cn.parked {
			cn.parked = false
			select {
			case cn.wake <- struct{}{}:
			default:
			}
		}
		return
	}
	cn.writerOn = true
	cn.writers.Add(1)
	go cn.writeFn() // a function value made once per connection: no allocation
}

// writerLinger is how long the writer goroutine waits for more output once
// its queue is empty before it returns: long enough that a busy publisher
// wakes a parked writer instead of starting a goroutine per burst (which
// costs more than the write), short enough that an idle connection soon
// keeps no writer stack. The goroutine returns between one and two
// lingers after its last write.
const writerLinger = 5 * time.Millisecond

// writeLoop is the connection's writer goroutine, started when output is
// queued (wakeWriterLocked). It writes what is queued, one buffer per
// Write, until the queue is empty, then parks for more; when nothing came
// for writerLinger it returns, so an idle connection keeps no writer
// goroutine. The linger timer is armed once per linger, not per park:
// when it fires with writes made since it was armed the writer parks
// again and re-arms it. After DISCONNECT it closes the connection, or,
// for Reconnect, lets the reader read until the broker closes it. The
// write deadline is moved at most once per half keep-alive, not per Write
// (setting a deadline costs far more than reading the clock): a Write
// always has at least writeTimeout minus half the keep-alive, more than
// the PING timeout, to complete (see writeOwned).
func (c *Client) writeLoop(cn *conn) {
	defer cn.writers.Done()
	expired := false // the linger passed without a write
	for {
		c.mu.Lock()
		bp, closing := cn.wbuf, cn.closing
		if cn.writing || bp == nil {
			// Nothing to write, or the reader is writing
			// acknowledgements itself (it wakes us when it is done
			// and more is queued).
			if closing && !cn.writing {
				cn.writerOn = false
				planned := cn.planned != nil
				c.mu.Unlock()
				if planned {
					// Reconnect: the broker closes the connection on
					// DISCONNECT [MQTT-3.14.4-1]; read the
					// acknowledgements it sent before, up to the ping
					// timeout, then the reader tears down.
					_ = cn.nc.SetReadDeadline(time.Now().Add(c.cfg.PingTimeout))
				} else {
					cn.nc.Close()
				}
				return
			}
			if expired || cn.dead {
				cn.writerOn = false
				c.mu.Unlock()
				return
			}
			if !cn.lingerArmed {
				if cn.linger == nil {
					cn.linger = time.NewTimer(writerLinger)
				} else {
					cn.linger.Reset(writerLinger)
				}
				cn.lingerArmed, cn.lingerMark = true, cn.writes
			}
			cn.parked = true
			c.mu.Unlock()
			select {
			case <-cn.wake:
			case <-cn.linger.C:
				cn.lingerArmed = false
				expired = cn.writes == cn.lingerMark
			case <-cn.done:
			}
			c.mu.Lock()
			cn.parked = false
			c.mu.Unlock()
			continue
		}
		expired = false
		cn.wbuf = nil
		cn.writing = true
		c.mu.Unlock()
		select {
		case cn.space <- struct{}{}:
		default:
		}
		var err error
		if len(*bp) > 0 {
			err = c.writeOwned(cn, *bp)
		}
		cn.writes++
		putBuf(bp)
		c.mu.Lock()
		cn.writing = false
		if err != nil {
			if cn.err == nil {
				cn.err = err
			}
			cn.writerOn = false
		}
		c.mu.Unlock()
		if err != nil {
			cn.nc.Close()
			return
		}
	}
}

// readLoop reads packets until the connection fails.
func (c *Client) readLoop(cn *conn) error {
	var (
		pub    packet.Publish
		suback packet.Suback
	)
	// Messages decoded before the connection failed are still delivered.
	defer c.flushBurst(cn)
	for {
		if cn.r.Buffered() == 0 {
			// The end of a read burst: hand its messages to the handlers
			// and send their acknowledgements, in one write.
			c.flushBurst(cn)
		} else if cn.freeSlots >= cap(c.sem)/4 {
			c.releaseSlots(cn)
		}
		if cn.r.Buffered() == 0 {
			// Nothing buffered: give the read buffer back and wait for
			// data without one. On a socket this replaces the read that
			// would return EAGAIN, so it costs no extra system call; on
			// TLS and WebSocket a small read takes the burst's first
			// bytes (the rest stays in their own buffers for Next).
			cn.r.Release()
			if cn.idle != nil {
				if err := cn.idle.wait(); err != nil {
					return err
				}
			} else if err := cn.src.waitHead(); err != nil {
				return err
			}
		}
		fresh := cn.r.Buffered() == 0
		f, err := cn.r.Next()
		if fresh && err == nil && c.cfg.KeepAlive > 0 {
			// Data arrived: once per burst, for the keep-alive's
			// silence-received rule (see writeLoop).
			cn.lastRead.Store(int64(time.Since(cn.t0)))
		}
		if err != nil {
			var de *packet.DecodeError
			if errors.As(err, &de) {
				return protocolError(err) // a bad fixed header, or too large
			}
			return err
		}
		switch t := f.Type(); t {
		case packet.TypePublish:
			if err := pub.Decode(f); err != nil {
				return protocolError(err)
			}
			if pub.QoS == packet.QoS0 || pub.QoS == packet.QoS1 && !c.cfg.AckAfterHandler {
				// Batched until the end of the burst (see flushBurst).
				cn.inbox = append(cn.inbox, newIncoming(&pub))
				if len(cn.inbox) >= maxInbox {
					c.flushBurst(cn)
				}
				continue
			}
			// Its acknowledgement must follow those of the batch.
			c.flushBurst(cn)
			c.onPublish(cn, &pub)
		case packet.TypePuback, packet.TypePubrec, packet.TypePubcomp, packet.TypePubrel, packet.TypeUnsuback:
			id, err := decodeAck(f)
			if err != nil {
				return protocolError(err)
			}
			if t == packet.TypePubrel {
				c.flushBurst(cn) // the PUBCOMP follows the batch's PUBACKs
			}
			c.onAck(cn, t, id)
		case packet.TypeSuback:
			if err := suback.Decode(f); err != nil {
				return protocolError(err)
			}
			c.onSuback(suback.ID, suback.ReturnCodes)
		case packet.TypePingresp:
			cn.pingOut.Store(false)
		default:
			return &wrapped{msg: "mqtt: unexpected " + t.String() + " from broker", err: ErrProtocol}
		}
	}
}

// maxInbox bounds the messages the reader batches before handing them on.
const maxInbox = 64

// flushBurst ends a read burst: it queues the burst's messages for the
// handlers (cn.inbox), in arrival order, then queues the PUBACKs of the
// QoS 1 ones with one append to the write buffer (one wake-up of the
// writer, one write), and returns the window slots the burst's
// acknowledgements freed. A message Close dropped before it was queued is
// not acknowledged. Owned by the reader.
func (c *Client) flushBurst(cn *conn) {
	for i, m := range cn.inbox {
		qos, id := m.QoS, m.ID // m belongs to the handlers once queued
		if !c.deliver(cn, m) {
			for _, r := range cn.inbox[i+1:] {
				releaseIncoming(r)
			}
			break
		}
		if qos == packet.QoS1 {
			cn.acks, _ = (&packet.Puback{ID: id}).AppendBinary(cn.acks) // id is non-zero
		}
	}
	clear(cn.inbox)
	cn.inbox = cn.inbox[:0]
	c.flushAcks(cn)
	c.releaseSlots(cn)
}

// flushAcks sends the batched acknowledgements on cn if it is still live
// (otherwise the broker resends the messages and they are answered then).
// When nothing else is queued and the writer is not writing, the reader
// writes them itself, which spares waking the writer for every burst;
// otherwise they are queued behind what is pending, in order.
func (c *Client) flushAcks(cn *conn) {
	if len(cn.acks) == 0 {
		return
	}
	c.mu.Lock()
	switch {
	case !c.liveLocked(cn):
	case cn.wbuf == nil && !cn.writing:
		cn.writing = true
		c.mu.Unlock()
		err := c.writeOwned(cn, cn.acks)
		c.mu.Lock()
		cn.writing = false
		if err != nil && cn.err == nil {
			cn.err = err
		}
		if cn.wbuf != nil {
			c.wakeWriterLocked(cn) // queued while we wrote: the writer's turn
		}
		if err != nil {
			c.mu.Unlock()
			cn.nc.Close() // the reader's next read fails
			cn.acks = cn.acks[:0]
			return
		}
	default:
		bp := c.reserveLocked(cn, len(cn.acks))
		*bp = append(*bp, cn.acks...)
	}
	c.mu.Unlock()
	cn.acks = cn.acks[:0]
}

// writeOwned writes b on cn. Only the goroutine that set cn.writing (the
// writer, or the reader writing acknowledgements) calls it, so the write
// deadline bookkeeping needs no lock. The deadline is moved at most once
// per half keep-alive, keeping keep-alive plus PingTimeout ahead.
func (c *Client) writeOwned(cn *conn, b []byte) error {
	if ka := c.cfg.KeepAlive; ka > 0 {
		now := time.Now()
		cn.lastWrite.Store(int64(now.Sub(cn.t0)))
		if now.Sub(cn.deadlineSet) > ka/2 {
			cn.deadlineSet = now
			_ = cn.nc.SetWriteDeadline(now.Add(ka + c.cfg.PingTimeout))
		}
	}
	_, err := cn.nc.Write(b)
	return err
}

// protocolError wraps a decoding error of a packet from the broker so that
// it matches both ErrProtocol and the decoder's error.
func protocolError(err error) error {
	return &wrapped{msg: "mqtt: from broker: " + err.Error(), err: ErrProtocol, cause: err}
}

// onAck handles PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK.
func (c *Client) onAck(cn *conn, t packet.Type, id packet.ID) {
	c.mu.Lock()
	if t == packet.TypePubrel {
		// Incoming QoS 2, step 3: forget the id, answer PUBCOMP [MQTT-4.3.3-2].
		delete(c.rx2, id)
		if c.liveLocked(cn) {
			c.appendAckLocked(cn, packet.TypePubcomp, id)
		}
		c.mu.Unlock()
		return
	}
	pe := c.pending[id]
	if pe == nil {
		c.mu.Unlock()
		if t == packet.TypePubrec {
			// A PUBREC for a message we no longer track: release it
			// so the broker can finish.
			c.sendAck(cn, packet.TypePubrel, id)
		}
		return
	}
	switch t {
	case packet.TypePuback, packet.TypePubcomp:
		if pe.kind != kindPublish || (t == packet.TypePuback) != (pe.qos == packet.QoS1) {
			c.mu.Unlock()
			return
		}
		done, slot := c.finishLocked(id)
		if slot {
			cn.freeSlots++
		}
		c.mu.Unlock()
		if done != nil {
			done(nil)
		}
		return
	case packet.TypePubrec:
		if pe.kind == kindPublish && pe.qos == packet.QoS2 {
			if !pe.released {
				pe.released = true
				// The PUBREL replaces the PUBLISH, in the client's copy
				// (the Store's Put of it returned before it was sent) and
				// in the Store.
				*pe.pkt, _ = (&packet.Pubrel{ID: id}).AppendBinary((*pe.pkt)[:0]) // id is non-zero
				c.enqueueStoreLocked(storeOp{kind: opPutRel, id: id})
				c.kickStoreLocked()
			}
			if c.liveLocked(cn) {
				c.appendAckLocked(cn, packet.TypePubrel, id)
			}
		}
	case packet.TypeUnsuback:
		if pe.kind == kindUnsubscribe {
			delete(c.pending, id)
			c.removeRoutesLocked(pe.filters)
			if pe.req != nil {
				pe.req <- nil
			}
		}
	}
	c.mu.Unlock()
}

// onPublish handles an incoming PUBLISH whose fields alias the reader's
// frame.
func (c *Client) onPublish(cn *conn, p *packet.Publish) {
	// QoS 0, and QoS 1 acknowledged on arrival, are batched by the reader
	// (see flushBurst) and do not come here.
	switch p.QoS {
	case packet.QoS0:
		c.deliver(cn, newIncoming(p))
	case packet.QoS1:
		// Config.AckAfterHandler: dispatch sends the PUBACK.
		m := newIncoming(p)
		m.ackConn = cn
		c.deliver(cn, m)
	case packet.QoS2:
		id := p.ID
		c.mu.Lock()
		if e, seen := c.rx2[id]; seen {
			// A re-delivery of a message we already have: do not deliver
			// it again [MQTT-4.3.3-2]. Acknowledge it now if its PUBREC
			// was sent, else once its handler returns, on this connection.
			if e.owe == nil {
				if c.liveLocked(cn) {
					c.appendAckLocked(cn, packet.TypePubrec, id)
				}
			} else {
				e.owe = cn
				c.rx2[id] = e
			}
			c.mu.Unlock()
			return
		}
		if c.rx2 == nil {
			c.rx2 = make(map[packet.ID]rxQoS2)
		}
		c.rx2[id] = rxQoS2{from: cn, owe: cn}
		c.mu.Unlock()
		m := newIncoming(p)
		if c.cfg.AckAfterHandler {
			m.ackConn = cn
		}
		queued := c.deliver(cn, m)
		if queued && c.cfg.AckAfterHandler {
			return // dispatch sends the PUBREC
		}
		c.mu.Lock()
		if queued {
			c.pubrecLocked(id, cn)
		} else if e := c.rx2[id]; e.from == cn {
			// Close dropped it: forget it, unacknowledged.
			delete(c.rx2, id)
		}
		c.mu.Unlock()
	}
}

// rxQoS2 is an incoming QoS 2 message between its PUBLISH and its PUBREL.
type rxQoS2 struct {
	from *conn // the connection it was delivered from; nil once acknowledged
	owe  *conn // the connection owed its PUBREC; nil once the PUBREC was queued
}

// pubrecLocked queues the PUBREC of the incoming QoS 2 message id that was
// delivered from connection from, on the connection it is owed to: that is
// a newer one when the broker resumed the session and re-sent the message
// before its handler returned. Nothing is sent when the id now belongs to
// another message (a new session reused it).
func (c *Client) pubrecLocked(id packet.ID, from *conn) {
	e, ok := c.rx2[id]
	if !ok || e.from != from || e.owe == nil {
		return
	}
	if c.liveLocked(e.owe) {
		c.appendAckLocked(e.owe, packet.TypePubrec, id)
	}
	// When the connection is gone the broker re-sends the PUBLISH after
	// resuming the session and is answered then. Keep no connection
	// alive for an entry that may outlive it until the PUBREL.
	c.rx2[id] = rxQoS2{}
}
