package emulator

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubwire/hubwire/internal/bufpool"
	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/packet"
	"github.com/hubwire/hubwire/transport"
)

// Connection limits.
const (
	// maxPacket bounds every packet a device sends: a 256 KB telemetry
	// message (as §3 counts it) with the longest possible topic fits.
	maxPacket = MaxTelemetrySize + 65535 + 16
	// maxIdleTimeout caps the idle timeout (the Azure load balancer's
	// limit, contract §1).
	maxIdleTimeout = 1767 * time.Second
	// writeTimeout bounds one write to a device that stopped reading.
	writeTimeout = 10 * time.Second
	// maxBatch bounds the telemetry messages appended (and acknowledged)
	// together.
	maxBatch = 256
)

// sessionRecord is the persistent part of a CleanSession=0 session: its
// subscriptions (contract §1: they outlive the connection).
type sessionRecord struct {
	Subs []subRecord `json:"subs"`
}

type subRecord struct {
	Filter string `json:"filter"`
	QoS    byte   `json:"qos"`
}

// session is one device or module connection: the server loop on
// packet.Reader for the connection's whole life. It never imports mqtt.
type session struct {
	h         *Hub
	id        uint64
	nc        net.Conn
	transport string
	log       *slog.Logger
	r         *packet.Reader
	idle      *readIdler

	auth      authInfo
	key       string
	idleAfter time.Duration
	clean     bool
	will      *packet.Publish
	expiry    *time.Timer
	connected time.Time
	lastAct   atomic.Int64 // unix nanoseconds of the last packet received

	wmu  sync.Mutex // serialises writes
	werr error

	mu         sync.Mutex // guards the fields below
	subs       []subRecord
	c2dActive  bool
	c2dQoS     packet.QoS
	inflight   map[packet.ID]uint64 // C2D packet id → message sequence
	nextID     packet.ID
	delivering bool
	again      bool

	closeOnce sync.Once
	done      chan struct{}
	acked     chan struct{} // closed once the CONNACK is written (or failed)
	reason    string
	graceful  bool
	violated  bool

	// Telemetry read and not yet handed to the log: the records one
	// after another in recs, each ending at its recEnds entry.
	recs       []byte
	recBuf     *[]byte // bufpool buffer behind recs, if any
	recEnds    []int
	batchAcks  []packet.ID
	pub        packet.Publish
	authMethod string // auth.authMethodJSON()

	// Telemetry in the log but not yet acknowledged (see flushTelemetry):
	// the reader hands batches to the log with AppendAsync and keeps
	// reading; the log's callbacks move a durable batch's PUBACKs to ready,
	// and ackWriter writes them, in order, through write.
	amu       sync.Mutex
	acond     *sync.Cond
	pendIDs   []packet.ID // PUBACK ids of batches not yet durable, in order
	pendB     []pendBatch // those batches, in order
	ready     []packet.ID // PUBACK ids durable and not yet written
	readyMsgs int         // messages behind ready
	spare     []packet.ID
	unacked   int  // messages handed to the log and not yet acknowledged
	unackedB  int  // their record bytes
	writing   bool // an ackWriter goroutine runs
	storeErr  error
	recDone   func(uint64, error)
	batchDone func(uint64, error)
}

// pendBatch is one batch handed to the log: its PUBACK count, messages and
// record bytes.
type pendBatch struct{ ids, msgs, bytes int }

// Bounds of telemetry handed to the log and not yet acknowledged, per
// connection: the reader waits above them, so memory stays bounded.
const (
	maxUnackedMsgs  = 4096
	maxUnackedBytes = 8 << 20
)

func (s *session) lastActivity() time.Time { return time.Unix(0, s.lastAct.Load()).UTC() }

// serveConn runs one connection to its end.
func (h *Hub) serveConn(nc net.Conn, transportName string) {
	s := &session{
		h:         h,
		id:        h.nextConn.Add(1),
		nc:        nc,
		transport: transportName,
		r:         packet.NewReader(nc, maxPacket),
		done:      make(chan struct{}),
		acked:     make(chan struct{}),
		inflight:  map[packet.ID]uint64{},
	}
	s.log = h.log.With("conn", s.id, "transport", transportName, "remote", nc.RemoteAddr().String())
	defer s.r.Release()
	if !s.handshake() {
		nc.Close()
		return
	}
	err := s.loop()
	var v *violation
	s.violated = errors.As(err, &v)
	s.close(closeReason(err), false)
	s.finish()
}

// closeReason describes how a read loop ended.
func closeReason(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "closed"
	case errors.Is(err, io.EOF):
		return "connection closed by the device without DISCONNECT"
	case errors.As(err, &ne) && ne.Timeout():
		return "idle timeout (404104 DeviceConnectionClosedRemotely)"
	case errors.Is(err, net.ErrClosed):
		return "connection closed"
	}
	return err.Error()
}

// handshake reads and answers CONNECT. It reports whether the connection
// is authenticated and registered.
func (s *session) handshake() bool {
	h := s.h
	s.nc.SetReadDeadline(time.Now().Add(h.cfg.HandshakeTimeout))
	f, err := s.r.Next()
	if err != nil {
		s.log.Info("connection closed before CONNECT", "reason", closeReason(err))
		return false
	}
	if f.Type() != packet.TypeConnect {
		s.log.Info("connection refused", "reason", "first packet is "+f.Type().String()+", not CONNECT")
		return false
	}
	var c packet.Connect
	if err := c.Decode(f); err != nil {
		switch {
		case errors.Is(err, packet.ErrUnsupportedProtocolLevel):
			s.writeConnack(false, packet.ConnackUnacceptableProtocolVersion)
		case errors.Is(err, packet.ErrClientIDRejected):
			s.writeConnack(false, packet.ConnackIdentifierRejected)
		}
		s.log.Info("connection refused", "reason", "malformed CONNECT: "+err.Error())
		return false
	}
	var peer = peerCerts(s.nc)
	a, err := h.authenticate(c.ClientID, c.Username, c.Password, c.PasswordFlag, peer)
	if err != nil {
		s.writeConnack(false, packet.ConnackNotAuthorized)
		s.log.Info("connection refused (CONNACK 5)", "clientId", string(c.ClientID), "reason", err.Error())
		return false
	}
	s.auth = a
	s.authMethod = a.authMethodJSON()
	s.key = identityKey(a.deviceID, a.moduleID)
	s.log = s.log.With("device", a.deviceID)
	if a.moduleID != "" {
		s.log = s.log.With("module", a.moduleID)
	}
	s.clean = c.CleanSession
	ka := time.Duration(c.KeepAlive) * time.Second * 3 / 2
	if ka <= 0 || ka > maxIdleTimeout {
		ka = maxIdleTimeout
	}
	s.idleAfter = ka
	if c.WillFlag {
		s.will = (&packet.Publish{Topic: c.WillTopic, Payload: c.WillPayload, QoS: c.WillQoS}).Clone()
	}
	now := h.now()
	s.connected = now
	s.lastAct.Store(now.UnixNano())

	// Everything other goroutines may read is set before the session is
	// registered, under s.mu.
	s.mu.Lock()
	s.c2dQoS = packet.QoS1
	s.c2dActive = !s.clean && a.moduleID == ""
	if !a.expiry.IsZero() {
		d := a.expiry.Sub(now)
		if d < 0 {
			d += h.cfg.SASSkew // accepted within the clock skew: allow the skew
		}
		s.expiry = time.AfterFunc(max(d, 0), func() {
			s.close("SAS token expired (401003 IoTHubUnauthorized)", false)
		})
	}
	s.mu.Unlock()

	// Register: one live connection per identity (contract §7).
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		s.close("hub closed", false)
		return false
	}
	old := h.live[s.key]
	h.live[s.key] = s
	h.conns[s] = struct{}{}
	present := false
	var persistOp op
	var restored []subRecord
	if s.clean {
		if _, ok := h.persist[s.key]; ok {
			delete(h.persist, s.key)
			persistOp = del(bucketSessions, []byte(s.key))
		}
	} else if rec, ok := h.persist[s.key]; ok {
		present = true
		restored = append(restored, rec.Subs...)
	} else {
		h.persist[s.key] = &sessionRecord{}
		persistOp = put(bucketSessions, []byte(s.key), &sessionRecord{})
	}
	h.state[s.key] = connectionState{since: now.UTC(), lastActivity: now.UTC()}
	h.mu.Unlock()
	if len(restored) > 0 {
		s.mu.Lock()
		s.subs = restored
		for _, sub := range restored {
			if f, err := iothub.ParseFilter([]byte(sub.Filter)); err == nil && f.Kind == iothub.FilterC2D {
				s.c2dQoS = packet.QoS(sub.QoS)
			}
		}
		s.mu.Unlock()
	}
	h.notify()
	if old != nil {
		// Let the older connection's CONNACK go out first, so that a
		// client racing itself sees CONNACK then a close, never a close
		// instead of its CONNACK.
		t := time.NewTimer(writeTimeout)
		select {
		case <-old.acked:
		case <-t.C:
		}
		t.Stop()
		old.close("a new connection for the same identity (400027 ConnectionForcefullyClosedOnNewConnection)", false)
	}
	if persistOp.bucket != nil {
		if err := h.store.write(persistOp); err != nil {
			s.log.Error("session state not saved", "err", err)
		}
	}
	if a.modelID != "" {
		h.setModelID(s.key, a.modelID)
	}
	// A persistent session receives queued C2D right after CONNACK, before
	// it subscribes again (contract §1, §4); a clean one after SUBSCRIBE.
	err = s.writeConnack(present, packet.ConnackAccepted)
	close(s.acked)
	if err != nil {
		s.close("CONNACK not written: "+err.Error(), false)
		return true
	}
	s.log.Info("device connected", "cleanSession", s.clean, "sessionPresent", present,
		"keepAlive", c.KeepAlive, "auth", a.method, "scope", a.scope)
	h.events.emit(ConnectionEvent{Type: EventConnected, DeviceID: a.deviceID, ModuleID: a.moduleID,
		ConnectionID: s.id, Transport: s.transport, Time: now.UTC()})
	s.kickC2D()
	return true
}

// sasSkew is the clock skew allowed on SAS expiry (contract §2).
const sasSkew = 5 * time.Minute

// peerCerts returns the client certificates of a TLS connection.
func peerCerts(nc net.Conn) []*x509.Certificate {
	st, ok := transport.TLSConnectionState(nc)
	if !ok {
		return nil
	}
	return st.PeerCertificates
}

// loop reads and handles packets until the connection ends. While
// nothing is buffered it holds no read buffer: it probes the TLS and
// WebSocket layers with a read whose deadline has passed (which returns
// their buffered bytes or times out at once without touching the socket or
// breaking the connection), then waits for the socket to become readable
// with the poller (readIdler).
func (s *session) loop() error {
	s.idle = newReadIdler(s.nc)
	for {
		if s.r.Buffered() == 0 && len(s.recEnds) > 0 {
			if err := s.flushTelemetry(); err != nil {
				return err
			}
		}
		deadline := time.Now().Add(s.idleAfter)
		if s.idle != nil && s.r.Buffered() == 0 {
			s.nc.SetReadDeadline(time.Unix(1, 0))
			f, err := s.r.Next()
			if err == nil {
				if err := s.handle(f); err != nil {
					return err
				}
				continue
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
			s.r.Release()
			// An idle connection keeps no telemetry encode buffer either
			// (the log copied what was handed to it).
			if len(s.recEnds) == 0 {
				s.releaseRecs()
			}
			s.nc.SetReadDeadline(deadline)
			if err := s.idle.wait(); err != nil {
				return err
			}
		}
		s.nc.SetReadDeadline(deadline)
		f, err := s.r.Next()
		if err != nil {
			return err
		}
		if err := s.handle(f); err != nil {
			return err
		}
	}
}

// violation closes the connection for a protocol violation.
type violation struct{ reason string }

func (v *violation) Error() string { return v.reason }

func violate(reason string) error { return &violation{reason: reason} }

// handle handles one packet.
func (s *session) handle(f packet.Frame) error {
	s.lastAct.Store(s.h.now().UnixNano())
	t := f.Type()
	if t != packet.TypePublish {
		if err := s.flushTelemetry(); err != nil {
			return err
		}
		// Replies leave in the order of the requests: the telemetry's
		// PUBACKs before a PINGRESP, SUBACK or UNSUBACK.
		if t != packet.TypePuback {
			if err := s.waitAcked(); err != nil {
				return err
			}
		}
	}
	switch t {
	case packet.TypePublish:
		if err := s.pub.Decode(f); err != nil {
			return violate("malformed PUBLISH: " + err.Error())
		}
		return s.onPublish(&s.pub)
	case packet.TypePuback:
		var a packet.Puback
		if err := a.Decode(f); err != nil {
			return violate("malformed PUBACK: " + err.Error())
		}
		s.onC2DAck(a.ID)
		return nil
	case packet.TypeSubscribe:
		var sub packet.Subscribe
		if err := sub.Decode(f); err != nil {
			return violate("malformed SUBSCRIBE: " + err.Error())
		}
		return s.onSubscribe(&sub)
	case packet.TypeUnsubscribe:
		var u packet.Unsubscribe
		if err := u.Decode(f); err != nil {
			return violate("malformed UNSUBSCRIBE: " + err.Error())
		}
		return s.onUnsubscribe(&u)
	case packet.TypePingreq:
		if err := (&packet.Pingreq{}).Decode(f); err != nil {
			return violate("malformed PINGREQ: " + err.Error())
		}
		return s.writePacket(&packet.Pingresp{})
	case packet.TypeDisconnect:
		if err := (&packet.Disconnect{}).Decode(f); err != nil {
			return violate("malformed DISCONNECT: " + err.Error())
		}
		s.close("DISCONNECT", true)
		return net.ErrClosed
	case packet.TypeConnect:
		return violate("a second CONNECT on the connection [MQTT-3.1.0-2]")
	default:
		return violate(t.String() + " is not accepted from a device (QoS 2 is not supported)")
	}
}

// onPublish routes a device PUBLISH (contract §3, §5, §6, §7).
func (s *session) onPublish(p *packet.Publish) error {
	if p.QoS == packet.QoS2 {
		return violate("PUBLISH at QoS 2 (IoT Hub closes the connection, §3)")
	}
	route, err := iothub.ParseTopic(p.Topic)
	if err != nil {
		return violate("PUBLISH to an unknown topic " + quoteTopic(p.Topic) + ": " + err.Error())
	}
	if !route.PublishableBy(s.auth.deviceID, s.auth.moduleID) {
		return violate("PUBLISH to a topic this identity may not publish: " + quoteTopic(p.Topic))
	}
	switch route.Kind {
	case iothub.RouteTelemetry:
		if s.recBuf == nil {
			s.recBuf = bufpool.Get(256 << 10)
			s.recs = (*s.recBuf)[:0]
		}
		recs, err := appendTelemetry(s.recs, &s.auth, s.authMethod, &route, p.Payload, p.Retain)
		if err != nil {
			return violate(err.Error())
		}
		s.recs = recs
		s.recEnds = append(s.recEnds, len(recs))
		if p.QoS == packet.QoS1 {
			s.batchAcks = append(s.batchAcks, p.ID)
		}
		if len(s.recEnds) >= maxBatch || len(s.recs) >= 1<<20 {
			return s.flushTelemetry()
		}
		return nil
	}
	// PUBACKs leave in the order of the PUBLISHes [MQTT-4.6.0-2]: the
	// batched telemetry is acknowledged before anything else.
	if err := s.flushTelemetry(); err != nil {
		return err
	}
	if err := s.waitAcked(); err != nil {
		return err
	}
	switch route.Kind {
	case iothub.RouteTwinGet, iothub.RouteTwinPatchReported:
		reply := s.h.twinRequest(s, &route, p.Payload)
		if err := s.publish(reply.Topic, reply.Payload, packet.QoS0, 0); err != nil {
			return err
		}
		return s.ackNow(p)
	case iothub.RouteMethodResponse:
		if err := s.h.methods.HandleResponse(s.auth.deviceID, s.auth.moduleID, &route, p.Payload); err != nil {
			s.log.Debug("method reply dropped", "reason", err.Error())
		}
		return s.ackNow(p)
	}
	return violate("PUBLISH to a topic this identity may not publish: " + quoteTopic(p.Topic))
}

// ackNow acknowledges a QoS 1 publish handled at once (telemetry waits
// for its batch to be durable instead).
func (s *session) ackNow(p *packet.Publish) error {
	if p.QoS != packet.QoS1 {
		return nil
	}
	if err := s.waitAcked(); err != nil {
		return err
	}
	return s.writePacket(&packet.Puback{ID: p.ID})
}

// flushTelemetry hands the batched telemetry to the log without waiting
// (AppendAsync; the log group-commits it with whatever else is pending) so
// the reader can go on reading while it becomes durable. The QoS 1
// PUBACKs among it are sent, in order, only once the whole batch is durable
// (onBatchDurable, ackWriter). The reader waits while more than
// maxUnackedMsgs or maxUnackedBytes are outstanding.
func (s *session) flushTelemetry() error {
	ends, acks := s.recEnds, s.batchAcks
	s.recEnds, s.batchAcks = s.recEnds[:0], s.batchAcks[:0]
	if len(ends) == 0 {
		return nil
	}
	recs := s.recs
	s.recs = s.recs[:0]
	if s.acond == nil {
		s.acond = sync.NewCond(&s.amu)
		s.recDone = s.onRecordDurable
		s.batchDone = s.onBatchDurable
	}
	s.amu.Lock()
	for s.storeErr == nil && s.unacked > 0 && (s.unacked+len(ends) > maxUnackedMsgs || s.unackedB > maxUnackedBytes) {
		s.acond.Wait()
	}
	if err := s.storeErr; err != nil {
		s.amu.Unlock()
		return err
	}
	s.pendIDs = append(s.pendIDs, acks...)
	s.pendB = append(s.pendB, pendBatch{ids: len(acks), msgs: len(ends), bytes: len(recs)})
	s.unacked += len(ends)
	s.unackedB += len(recs)
	s.amu.Unlock()
	tl := s.h.telemetry.log
	start := 0
	for i, end := range ends {
		done := s.recDone
		if i == len(ends)-1 {
			done = s.batchDone
		}
		tl.AppendAsync(recs[start:end], done)
		start = end
	}
	return nil
}

// releaseRecs returns the telemetry encode buffer to the pool (the log
// copied what was handed to it).
func (s *session) releaseRecs() {
	if s.recBuf != nil {
		if cap(s.recs) == cap(*s.recBuf) {
			*s.recBuf = s.recs[:0]
		}
		bufpool.Put(s.recBuf)
	}
	s.recBuf, s.recs = nil, nil
}

// onRecordDurable is the log's callback for a record that is not the last
// of its batch: it only notes a failure.
func (s *session) onRecordDurable(_ uint64, err error) {
	if err != nil {
		s.amu.Lock()
		s.failStoreLocked(err)
		s.amu.Unlock()
	}
}

// failStoreLocked records a failed store once and closes the connection
// so the device sends its unacknowledged telemetry again.
func (s *session) failStoreLocked(err error) {
	if s.storeErr != nil {
		return
	}
	s.storeErr = violate("telemetry store failed")
	s.acond.Broadcast()
	s.log.Error("telemetry not stored; closing so the device sends it again", "err", err)
	go s.close("telemetry store failed", false)
}

// onBatchDurable is the log's callback for the last record of a batch:
// the batch (and every earlier one) is durable, so its PUBACKs may go.
// It must not block: the writing is ackWriter's.
func (s *session) onBatchDurable(_ uint64, err error) {
	s.amu.Lock()
	defer s.amu.Unlock()
	if err != nil {
		s.failStoreLocked(err)
	}
	if len(s.pendB) == 0 {
		// A record rejected before it got a sequence number (done called
		// on the reader's goroutine) after storeErr was set: the
		// connection is closing and the accounting no longer matters.
		return
	}
	b := s.pendB[0]
	s.pendB = s.pendB[1:]
	ids := s.pendIDs[:b.ids]
	s.pendIDs = s.pendIDs[b.ids:]
	if len(s.pendB) == 0 {
		s.pendB, s.pendIDs = s.pendB[:0:0], s.pendIDs[:0:0]
	}
	s.unackedB -= b.bytes
	if s.storeErr != nil || b.ids == 0 {
		s.unacked -= b.msgs
		s.acond.Broadcast()
		return
	}
	s.ready = append(s.ready, ids...)
	s.readyMsgs += b.msgs
	if !s.writing {
		s.writing = true
		go s.ackWriter()
	}
}

// ackWriter writes the durable batches' PUBACKs, in order, until none is
// left.
func (s *session) ackWriter() {
	s.amu.Lock()
	for len(s.ready) > 0 {
		ids, n := s.ready, s.readyMsgs
		s.ready, s.readyMsgs = s.spare[:0], 0
		s.amu.Unlock()
		s.write(func(b []byte) []byte {
			for _, id := range ids {
				b = append(b, 0x40, 2, byte(id>>8), byte(id))
			}
			return b
		})
		s.amu.Lock()
		s.spare = ids
		s.unacked -= n
		s.acond.Broadcast()
	}
	s.writing = false
	s.amu.Unlock()
}

// waitAcked waits until every telemetry message handed to the log has
// been acknowledged (or its store failed), so that a PUBACK written next
// follows them [MQTT-4.6.0-2]. It returns the store's failure.
func (s *session) waitAcked() error {
	if s.acond == nil {
		return nil
	}
	s.amu.Lock()
	defer s.amu.Unlock()
	for s.unacked > 0 && s.storeErr == nil {
		s.acond.Wait()
	}
	return s.storeErr
}

// quoteTopic returns a topic for a log line, cut to 200 bytes.
func quoteTopic(t []byte) string {
	if len(t) > 200 {
		return string(t[:200]) + "…"
	}
	return string(t)
}

// onSubscribe checks the filters (contract §7: only the documented ones, at
// most 5, else close), grants QoS 1 at most and answers SUBACK.
func (s *session) onSubscribe(p *packet.Subscribe) error {
	codes := make([]byte, len(p.Filters))
	s.mu.Lock()
	subs := s.subs
	var newC2D bool
	for i, sub := range p.Filters {
		f, err := iothub.ParseFilter(sub.Filter)
		if err != nil {
			s.mu.Unlock()
			return violate("SUBSCRIBE to an unsupported filter " + quoteTopic(sub.Filter))
		}
		if !f.AllowedFor(s.auth.deviceID, s.auth.moduleID) {
			s.mu.Unlock()
			return violate("SUBSCRIBE to a filter of another identity: " + quoteTopic(sub.Filter))
		}
		q := min(sub.QoS, packet.QoS1)
		codes[i] = byte(q)
		j := -1
		for k := range subs {
			if subs[k].Filter == string(sub.Filter) {
				j = k
			}
		}
		if j >= 0 {
			subs[j].QoS = byte(q)
		} else {
			subs = append(subs, subRecord{Filter: string(sub.Filter), QoS: byte(q)})
		}
		if len(subs) > iothub.MaxSubscriptions {
			s.mu.Unlock()
			return violate("more than 5 subscriptions (§7)")
		}
		if f.Kind == iothub.FilterC2D {
			s.c2dQoS = q
			newC2D = !s.c2dActive
			s.c2dActive = true
		}
	}
	s.subs = subs
	rec := &sessionRecord{Subs: append([]subRecord(nil), subs...)}
	s.mu.Unlock()
	s.savePersistent(rec)
	s.h.notify()
	if err := s.writePacket(&packet.Suback{ID: p.ID, ReturnCodes: codes}); err != nil {
		return err
	}
	if newC2D {
		s.kickC2D()
	}
	return nil
}

func (s *session) onUnsubscribe(p *packet.Unsubscribe) error {
	s.mu.Lock()
	for _, f := range p.Filters {
		for i := range s.subs {
			if s.subs[i].Filter == string(f) {
				s.subs = append(s.subs[:i], s.subs[i+1:]...)
				break
			}
		}
		if pf, err := iothub.ParseFilter(f); err == nil && pf.Kind == iothub.FilterC2D {
			s.c2dActive = false
		}
	}
	rec := &sessionRecord{Subs: append([]subRecord(nil), s.subs...)}
	s.mu.Unlock()
	s.savePersistent(rec)
	s.h.notify()
	return s.writePacket(&packet.Unsuback{ID: p.ID})
}

// savePersistent stores the subscriptions of a CleanSession=0 session.
func (s *session) savePersistent(rec *sessionRecord) {
	if s.clean {
		return
	}
	h := s.h
	h.mu.Lock()
	if h.live[s.key] == s {
		h.persist[s.key] = rec
	}
	h.mu.Unlock()
	if err := h.store.write(put(bucketSessions, []byte(s.key), rec)); err != nil {
		s.log.Error("session state not saved", "err", err)
	}
}

// subscribed reports whether the connection subscribed a filter of kind.
func (s *session) subscribed(kind iothub.FilterKind) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		if f, err := iothub.ParseFilter([]byte(sub.Filter)); err == nil && f.Kind == kind {
			return true
		}
	}
	return false
}

// publish sends a PUBLISH to the device.
func (s *session) publish(topic, payload []byte, qos packet.QoS, id packet.ID) error {
	p := packet.Publish{Topic: topic, Payload: payload, QoS: qos, ID: id}
	return s.writePacket(&p)
}

func (s *session) writeConnack(present bool, code packet.ConnackCode) error {
	return s.writePacket(&packet.Connack{SessionPresent: present, ReturnCode: code})
}

func (s *session) writePacket(p packet.Packet) error {
	var err error
	werr := s.write(func(b []byte) []byte {
		var out []byte
		out, err = p.AppendBinary(b)
		return out
	})
	if err != nil {
		return err
	}
	return werr
}

// write appends packets with build into a pooled buffer and writes them
// with one Write, bounded by writeTimeout. A failed write closes the
// connection, and every later write returns the same error.
func (s *session) write(build func(b []byte) []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.werr != nil {
		return s.werr
	}
	bp := bufpool.Get(1024)
	b := build((*bp)[:0])
	s.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := s.nc.Write(b)
	if cap(b) == cap(*bp) {
		*bp = b[:0]
	}
	bufpool.Put(bp)
	if err != nil {
		s.werr = err
		go s.close("write failed: "+err.Error(), false)
	}
	return err
}

// close closes the connection once, recording why. graceful means the
// device sent DISCONNECT, which discards the Will.
func (s *session) close(reason string, graceful bool) {
	s.closeOnce.Do(func() {
		s.reason = reason
		s.graceful = graceful
		s.mu.Lock()
		if s.expiry != nil {
			s.expiry.Stop()
		}
		s.mu.Unlock()
		if wc, ok := s.nc.(*transport.WSConn); ok && !graceful {
			wc.Close()
		} else {
			s.nc.Close()
		}
		close(s.done)
	})
}

// finish unregisters a closed connection: it sends the Will on an abrupt
// close, returns unacknowledged C2D to the queue, and reports the event.
func (s *session) finish() {
	h := s.h
	// Telemetry handed to the log becomes durable before the
	// disconnection is reported (its PUBACKs fail on the closed
	// connection).
	s.waitAcked()
	if len(s.recEnds) > 0 {
		// Messages read but not yet acknowledged are kept: the device
		// will send them again, and at-least-once allows the copy.
		recs := make([][]byte, len(s.recEnds))
		start := 0
		for i, end := range s.recEnds {
			recs[i] = s.recs[start:end]
			start = end
		}
		if _, err := h.telemetry.log.Append(recs...); err != nil {
			s.log.Error("telemetry not stored", "err", err)
		}
		s.recEnds = nil
		s.releaseRecs()
	}
	if !s.graceful && s.will != nil {
		s.sendWill()
	}
	s.mu.Lock()
	inflight := s.inflight
	s.inflight = map[packet.ID]uint64{}
	s.mu.Unlock()
	h.c2d.release(s, inflight)
	now := h.now().UTC()
	h.mu.Lock()
	delete(h.conns, s)
	if h.live[s.key] == s {
		delete(h.live, s.key)
		h.state[s.key] = connectionState{since: now, lastActivity: s.lastActivity()}
		if s.clean {
			if _, ok := h.persist[s.key]; ok {
				delete(h.persist, s.key)
			}
		}
	}
	h.notifyLocked()
	h.mu.Unlock()
	level := slog.LevelInfo
	if s.violated {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "device disconnected", "reason", s.reason)
	h.events.emit(ConnectionEvent{Type: EventDisconnected, DeviceID: s.auth.deviceID, ModuleID: s.auth.moduleID,
		ConnectionID: s.id, Transport: s.transport, Time: now, Reason: s.reason})
}

// sendWill publishes the Will as telemetry with iothub-MessageType=Will
// (contract §1), when its topic is the identity's own events topic.
func (s *session) sendWill() {
	route, err := iothub.ParseTopic(s.will.Topic)
	if err != nil || route.Kind != iothub.RouteTelemetry || !route.PublishableBy(s.auth.deviceID, s.auth.moduleID) {
		s.log.Info("will dropped: its topic is not this identity's events topic", "topic", quoteTopic(s.will.Topic))
		return
	}
	m, err := s.h.newTelemetry(&s.auth, &route, s.will.Payload, false, true, s.h.now())
	if err != nil {
		s.log.Info("will dropped", "reason", err.Error())
		return
	}
	if err := s.h.telemetry.append([]*Message{m}); err != nil {
		s.log.Error("will not stored", "err", err)
	}
}
