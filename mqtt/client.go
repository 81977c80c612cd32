package mqtt

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubwire/hubwire/internal/bufpool"
	"github.com/hubwire/hubwire/internal/ctxio"
	"github.com/hubwire/hubwire/packet"
)

// Client is an MQTT 3.1.1 client. Create it with NewClient, start it with
// Connect, stop it with Close. All methods are safe for concurrent use by
// multiple goroutines.
type Client struct {
	cfg   Config
	dial  func(ctx context.Context) (net.Conn, error)
	log   *slog.Logger
	store Store

	// sem holds one token per unacknowledged QoS 1/2 publish: its capacity
	// is the in-flight window.
	sem chan struct{}

	ctx     context.Context // cancelled by Close: aborts reconnect attempts
	cancel  context.CancelFunc
	closeCh chan struct{} // closed by Close

	// Close waits for the in-flight window to drain on drained, closed
	// (once, by whoever frees the last slot, see releaseSlot) when the
	// window is empty after Close started; closeKick wakes it to look
	// again when the state or the reader's stall changed.
	closingFlag atomic.Bool // mirrors closing, read without mu
	drained     chan struct{}
	drainOnce   sync.Once
	closeKick   chan struct{} // cap 1

	// done is closed once Close has finished and every goroutine of the
	// client has returned (see Done): live counts those goroutines.
	done       chan struct{}
	live       int  // guarded by mu
	closedDone bool // Close finished its part; guarded by mu

	mu          sync.Mutex
	state       State
	cur         *conn // the live connection, nil when there is none
	closing     bool  // Close started: no new publishes
	closed      bool  // Close is tearing down: no new connections
	runDone     chan struct{}
	nextID      packet.ID
	pending     map[packet.ID]*pending
	freePending []*pending
	rx2         map[packet.ID]rxQoS2 // incoming QoS 2 messages between PUBLISH and PUBREL
	subs        []route              // subscriptions to restore on a new session, in order
	pendingSeq  uint64               // order of the publishes, for resending
	validTopic  []byte               // a copy of the last topic name that passed validation

	routes atomic.Pointer[[]route] // snapshot of subs for the delivery goroutine

	stateSeq  uint64        // state changes so far; guarded by mu
	notifyMu  sync.Mutex    // guards the three fields below
	notifyQ   []stateChange // changes waiting to be reported
	notifying bool          // a goroutine is reporting notifyQ
	notified  uint64        // the last state change reported

	// inRunCallback is set while a connection's run goroutine, after
	// tearing the connection down, reports a state change, and inHandler
	// while the delivery goroutine runs a handler: a Close called then
	// (from that callback, or concurrently with it) does not wait for the
	// goroutine running the callback, which owns its own end.
	inRunCallback atomic.Bool
	inHandler     atomic.Bool

	// The Store queue (see storeq.go); guarded by mu.
	storeQ        []storeOp
	storeSpare    []storeOp
	storeBusy     bool          // an executor is running the queue
	storeStarted  bool          // the store goroutine was started
	storeStopping bool          // Close asked the store goroutine to return
	storeWake     chan struct{} // cap 1
	storeDone     chan struct{} // closed when the store goroutine returns

	queue       chan *Message
	deliverFn   func() // deliverLoop, as a value made once
	deliverOnce sync.Once
	deliverDone chan struct{} // closed once delivery stopped (Close) and the queue is drained

	dmu            sync.Mutex // guards the two fields below
	delivering     bool       // the delivery goroutine is running
	deliverStopped bool       // Close stopped delivery: no goroutine starts
}

// route is a subscription: a filter, its requested QoS and its handler.
type route struct {
	filter  string
	qos     packet.QoS
	handler Handler
}

type pendingKind uint8

const (
	kindPublish pendingKind = iota
	kindSubscribe
	kindUnsubscribe
)

// pending is an outgoing packet waiting for its acknowledgement.
type pending struct {
	kind     pendingKind
	qos      packet.QoS
	released bool    // QoS 2: PUBREC received, PUBREL sent
	slot     bool    // holds a token of Client.sem
	stored   bool    // publish: its Put returned, it may go on the wire
	sent     bool    // publish: written on some connection (DUP when resent on a resumed session)
	seq      uint64  // publish: its place in the resend order
	pkt      *[]byte // publish: the encoded PUBLISH, or its PUBREL once released (from internal/bufpool)
	done     func(error)
	req      chan []byte // subscribe/unsubscribe: SUBACK codes (nil for UNSUBACK); nil channel for resubscribes
	filters  []string    // subscribe/unsubscribe: the filters, in packet order
}

// NewClient returns a client for cfg. It does not connect. It reads back the
// packets of a non-empty Config.Store, which are resent after Connect.
func NewClient(cfg Config) (*Client, error) {
	cfg.normalize()
	if cfg.ClientID == "" && !cfg.CleanSession {
		return nil, invalid("empty client id requires CleanSession [MQTT-3.1.3-7]", nil)
	}
	if cfg.Will != nil {
		if err := packet.ValidateTopicName(cfg.Will.Topic); err != nil {
			return nil, invalid("will topic", err)
		}
		if !cfg.Will.QoS.Valid() {
			return nil, invalid("will QoS", nil)
		}
	}
	c := &Client{
		cfg:         cfg,
		dial:        cfg.Dialer,
		log:         cfg.Logger,
		store:       cfg.Store,
		sem:         make(chan struct{}, cfg.InFlight),
		closeCh:     make(chan struct{}),
		drained:     make(chan struct{}),
		closeKick:   make(chan struct{}, 1),
		done:        make(chan struct{}),
		queue:       make(chan *Message, cfg.HandlerQueue),
		deliverDone: make(chan struct{}),
		storeWake:   make(chan struct{}, 1),
		storeDone:   make(chan struct{}),
	}
	c.deliverFn = c.deliverLoop
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.dial == nil {
		if cfg.URL == "" {
			return nil, invalid("Config needs a Dialer or a URL", nil)
		}
		d, err := urlDialer(cfg.URL, cfg.Transport)
		if err != nil {
			return nil, err
		}
		c.dial = d
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if err := c.loadStore(); err != nil {
		return nil, err
	}
	return c, nil
}

// loadStore creates a pending entry for every packet in the store.
func (c *Client) loadStore() error {
	var bad error
	err := c.store.Range(func(id packet.ID, pkt []byte) bool {
		st, err := packet.PeekStored(pkt)
		if err != nil {
			bad = invalid("store: packet "+strconv.Itoa(int(id)), err)
			return false
		}
		c.pendingSeq++
		pe := &pending{kind: kindPublish, qos: st.QoS, released: st.Type == packet.TypePubrel,
			stored: true, sent: true, seq: c.pendingSeq}
		pe.pkt = bufpool.Get(len(pkt))
		*pe.pkt = append(*pe.pkt, pkt...)
		select {
		case c.sem <- struct{}{}:
			pe.slot = true
		default:
		}
		if c.pending == nil {
			c.pending = make(map[packet.ID]*pending)
		}
		c.pending[id] = pe
		return true
	})
	if err == nil {
		err = bad
	}
	return err
}

// State returns the current connection state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// setStateLocked changes the state and returns a function that reports the
// change to Config.OnStateChange; call it after unlocking.
func (c *Client) setStateLocked(to State, err error) func() {
	from := c.state
	c.state = to
	if from == to && err == nil {
		return func() {}
	}
	c.stateSeq++
	seq := c.stateSeq
	return func() { c.notify(seq, from, to, err) }
}

// stateChange is a state change waiting to be reported.
type stateChange struct {
	seq      uint64
	from, to State
	err      error
}

// notify reports state change number seq. Reports are serialised: the
// goroutine that finds no report in progress reports every queued change
// in order, so a change made while a callback runs (even by the callback
// itself, through Close) is reported by that goroutine once the callback
// returns, and notify never waits for a callback. A change that a later
// one has already overtaken is dropped, so the callback sees the changes
// in order, one at a time, ending with the current state.
func (c *Client) notify(seq uint64, from, to State, err error) {
	c.notifyMu.Lock()
	c.notifyQ = append(c.notifyQ, stateChange{seq, from, to, err})
	if c.notifying {
		c.notifyMu.Unlock()
		return
	}
	c.notifying = true
	for i := 0; i < len(c.notifyQ); i++ {
		sc := c.notifyQ[i]
		if sc.seq <= c.notified {
			continue
		}
		c.notified = sc.seq
		c.notifyMu.Unlock()
		if sc.err != nil {
			c.log.Info("mqtt: state change", "from", sc.from.String(), "to", sc.to.String(), "err", sc.err)
		} else {
			c.log.Debug("mqtt: state change", "from", sc.from.String(), "to", sc.to.String())
		}
		if c.cfg.OnStateChange != nil {
			c.cfg.OnStateChange(sc.from, sc.to, sc.err)
		}
		c.notifyMu.Lock()
	}
	clear(c.notifyQ)
	c.notifyQ = c.notifyQ[:0]
	c.notifying = false
	c.notifyMu.Unlock()
}

// notifyFromRun reports a state change, or runs Config.OnConnect or
// OnConnectError, from a run goroutine whose connection is torn down (see
// inRunCallback).
func (c *Client) notifyFromRun(notify func()) {
	c.inRunCallback.Store(true)
	defer c.inRunCallback.Store(false)
	notify()
}

// Connect dials the broker, sends CONNECT and waits for CONNACK, within ctx
// and Config.ConnectTimeout. A refused connection returns the
// packet.ConnackCode. After a successful Connect the client reconnects by
// itself whenever the connection is lost (unless Config.Reconnect.Disabled),
// until Close. It reports whether the broker resumed a stored session.
func (c *Client) Connect(ctx context.Context) (sessionPresent bool, err error) {
	c.mu.Lock()
	switch {
	case c.closing:
		c.mu.Unlock()
		return false, ErrClosed
	case c.state != StateDisconnected:
		c.mu.Unlock()
		return false, ErrConnected
	}
	notify := c.setStateLocked(StateConnecting, nil)
	c.mu.Unlock()
	notify()

	cn, sp, err := c.handshake(ctx)
	if err == nil {
		if f := c.cfg.OnConnect; f != nil {
			f(sp)
		}
		err = c.install(cn, sp)
		if err != nil {
			cn.nc.Close()
		}
	} else if f := c.cfg.OnConnectError; f != nil && c.ctx.Err() == nil {
		f(err)
	}
	if err != nil {
		c.mu.Lock()
		to := StateDisconnected
		if c.closed {
			to = StateClosed
		}
		if c.ctx.Err() != nil {
			err = ErrClosed // Close aborted the attempt
		}
		notify = c.setStateLocked(to, err)
		c.mu.Unlock()
		notify()
		return false, err
	}
	return sp, nil
}

// handshake dials and exchanges CONNECT/CONNACK, within ctx and
// Config.ConnectTimeout. Close aborts it.
func (c *Client) handshake(ctx context.Context) (*conn, bool, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.cfg.ConnectTimeout, ErrConnectTimeout)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()
	nc, err := c.dial(ctx)
	if err != nil {
		return nil, false, ctxErr(ctx, "mqtt: dial", err)
	}
	cn, sp, err := c.connectOn(ctx, nc)
	if err != nil {
		nc.Close()
		return nil, false, err
	}
	return cn, sp, nil
}

func (c *Client) connectOn(ctx context.Context, nc net.Conn) (*conn, bool, error) {
	cp := packet.Connect{
		CleanSession: c.cfg.CleanSession,
		KeepAlive:    uint16(c.cfg.KeepAlive / time.Second),
		ClientID:     []byte(c.cfg.ClientID),
	}
	if c.cfg.Username != "" {
		cp.UsernameFlag, cp.Username = true, []byte(c.cfg.Username)
	}
	switch {
	case c.cfg.PasswordFunc != nil:
		pw, err := c.cfg.PasswordFunc(ctx)
		if err != nil {
			return nil, false, &wrapped{msg: "mqtt: password: " + err.Error(), err: err}
		}
		cp.PasswordFlag, cp.Password = true, pw
	case c.cfg.Password != nil:
		cp.PasswordFlag, cp.Password = true, c.cfg.Password
	}
	if w := c.cfg.Will; w != nil {
		cp.WillFlag, cp.WillQoS, cp.WillRetain = true, w.QoS, w.Retain
		cp.WillTopic, cp.WillPayload = w.Topic, w.Payload
		if cp.WillPayload == nil {
			cp.WillPayload = []byte{}
		}
	}
	buf, err := cp.AppendBinary(nil)
	if err != nil {
		return nil, false, invalid("CONNECT", err)
	}

	// Bound the exchange by ctx (its deadline and its cancellation) with
	// the mechanism package transport uses for its handshakes.
	src := &headReader{r: nc}
	r := packet.NewReader(src, c.cfg.MaxPacketSize)
	var ack packet.Connack
	step := "mqtt: write CONNECT"
	err = ctxio.Do(ctx, nc, func() error {
		if _, err := nc.Write(buf); err != nil {
			return err
		}
		step = "mqtt: read CONNACK"
		f, err := r.Next()
		if err != nil {
			return err
		}
		if f.Type() != packet.TypeConnack {
			return &wrapped{msg: "mqtt: expected CONNACK, got " + f.Type().String(), err: ErrProtocol}
		}
		if err := ack.Decode(f); err != nil {
			return &wrapped{msg: "mqtt: CONNACK: " + err.Error(), err: ErrProtocol, cause: err}
		}
		return nil
	})
	if err != nil {
		return nil, false, ctxErr(ctx, step, err)
	}
	if ack.ReturnCode != packet.ConnackAccepted {
		return nil, false, ack.ReturnCode
	}
	return newConn(nc, r, src), ack.SessionPresent, nil
}

// ctxErr reports err of a step of a connection attempt bounded by ctx. When
// ctx ended the step, the error matches ctx's error instead of err alone:
// ErrConnectTimeout when Config.ConnectTimeout ran out, the caller's
// context.DeadlineExceeded or context.Canceled otherwise.
func ctxErr(ctx context.Context, what string, err error) error {
	if ce := ctxio.Err(ctx, err); ce != nil {
		if errors.Is(ce, context.DeadlineExceeded) && context.Cause(ctx) == ErrConnectTimeout {
			ce = ErrConnectTimeout
		}
		if errors.Is(err, ce) {
			return &wrapped{msg: what + ": " + err.Error(), err: err}
		}
		return &wrapped{msg: what + ": " + ce.Error(), err: ce, cause: err}
	}
	return &wrapped{msg: what + ": " + err.Error(), err: err}
}

// install makes cn the live connection: restores subscriptions when the
// broker has no session, resends stored packets, then starts the reader and
// writer goroutines.
func (c *Client) install(cn *conn, sessionPresent bool) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.cur = cn
	cn.since = time.Now()
	cn.writeFn = func() { c.writeLoop(cn) }
	if ka := c.cfg.KeepAlive; ka > 0 {
		cn.ka = time.AfterFunc(pingAfter(ka), func() { c.keepAlive(cn) })
	}
	if !sessionPresent {
		clear(c.rx2)
		c.resubscribeLocked(cn)
	}
	completed := c.resendLocked(cn, sessionPresent)
	runDone := make(chan struct{})
	c.runDone = runDone
	c.live++ // the run goroutine (which waits for the writer)
	notify := c.setStateLocked(StateConnected, nil)
	c.mu.Unlock()

	// Start the goroutines before reporting the new state, so that the
	// callback may use the connection (subscribe, publish and wait).
	go c.run(cn, runDone)
	for _, f := range completed {
		f(nil)
	}
	notify()
	return nil
}

// resendLocked queues the unacknowledged packets on cn in their original
// order [MQTT-4.4.0-1], from the client's own copies: PUBLISH with DUP set
// when the session was resumed and it was sent before, and PUBREL. Without
// a session, publishes go out as new messages and QoS 2 messages already
// released are complete: the old session received them. A publish whose
// Put has not returned yet is left to the Store queue, which sends it once
// stored (after these, since its place in the order is later).
func (c *Client) resendLocked(cn *conn, sessionPresent bool) (completed []func(error)) {
	if len(c.pending) == 0 {
		return nil
	}
	var resend []*pending
	for _, pe := range c.pending {
		if pe.kind == kindPublish && pe.stored {
			resend = append(resend, pe)
		}
	}
	slices.SortFunc(resend, func(a, b *pending) int { return cmp.Compare(a.seq, b.seq) })
	var done []packet.ID
	for _, pe := range resend {
		pkt := *pe.pkt
		if pe.released {
			if sessionPresent {
				bp := c.reserveLocked(cn, len(pkt))
				*bp = append(*bp, pkt...)
			} else if st, err := packet.PeekStored(pkt); err == nil {
				done = append(done, st.ID)
			}
			continue
		}
		bp := c.reserveLocked(cn, len(pkt))
		start := len(*bp)
		*bp = append(*bp, pkt...)
		// DUP on a resumed session [MQTT-3.3.1-1]; cannot fail on a QoS 1
		// or 2 PUBLISH.
		_ = packet.SetDup((*bp)[start:], sessionPresent && pe.sent)
		pe.sent = true
	}
	for _, id := range done {
		if f := c.completeLocked(id); f != nil {
			completed = append(completed, f)
		}
	}
	return completed
}

// resubscribeLocked queues one SUBSCRIBE for every subscription, for a
// broker that has no session for us.
func (c *Client) resubscribeLocked(cn *conn) {
	if len(c.subs) == 0 {
		return
	}
	id, ok := c.allocIDLocked()
	if !ok {
		c.log.Error("mqtt: resubscribe", "err", errNoPacketID)
		return
	}
	sp := packet.Subscribe{ID: id}
	filters := make([]string, len(c.subs))
	for i, r := range c.subs {
		sp.Filters = append(sp.Filters, packet.Subscription{Filter: []byte(r.filter), QoS: r.qos})
		filters[i] = r.filter
	}
	bp := c.bufLocked(cn)
	var err error
	if *bp, err = sp.AppendBinary(*bp); err != nil {
		c.log.Error("mqtt: resubscribe", "err", err)
		return
	}
	pe := c.newPendingLocked()
	pe.kind, pe.filters = kindSubscribe, filters
	c.pending[sp.ID] = pe
}

// run is the connection's reader goroutine. When the connection fails it
// tears it down and, unless closed or disabled, reconnects with backoff; the
// new connection gets its own run goroutine.
func (c *Client) run(cn *conn, runDone chan struct{}) {
	defer c.exited()
	defer close(runDone)
	err := c.readLoop(cn)
	c.releaseSlots(cn)
	if !c.teardown(cn, err) {
		return
	}
	// A connection that did not last as long as the longest backoff does
	// not reset it: a broker that accepts and drops us at once (another
	// client with our id, throttling) must not be hammered.
	attempt := 0 // failed or lost connections counted by the backoff
	if time.Since(cn.since) < c.cfg.Reconnect.Max {
		attempt = cn.attempts
	}
	// A planned reconnect (Reconnect) tries once at once, and that try
	// is not counted: a renewal every few seconds does not slow the
	// reconnections after a real failure.
	planned := cn.planned
	for immediate := planned != nil; ; immediate = false {
		if !immediate {
			delay := c.cfg.Reconnect.delay(attempt)
			c.log.Debug("mqtt: reconnecting", "attempt", attempt+1, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-c.closeCh:
				t.Stop()
				return
			}
			attempt++
		}
		if c.ctx.Err() != nil {
			return // closed while the timer fired: select chose at random
		}
		ncn, sp, err := c.handshake(c.ctx)
		if err != nil {
			c.mu.Lock()
			if c.closed {
				// Close aborted the attempt; the state is Close's.
				c.mu.Unlock()
				return
			}
			// Still reconnecting: a failed attempt is logged, not
			// reported as a change from reconnecting to reconnecting.
			c.mu.Unlock()
			c.log.Info("mqtt: reconnect failed", "attempt", attempt, "planned", immediate, "err", err)
			if f := c.cfg.OnConnectError; f != nil {
				c.notifyFromRun(func() { f(err) })
			}
			if immediate && c.cfg.Reconnect.Disabled {
				// No automatic reconnection: the client is down.
				c.mu.Lock()
				notify := func() {}
				if !c.closed {
					notify = c.setStateLocked(StateDisconnected, err)
				}
				c.mu.Unlock()
				planned.finish(err)
				c.notifyFromRun(notify)
				return
			}
			if immediate {
				planned.finish(err)
			}
			continue
		}
		ncn.attempts = attempt
		if f := c.cfg.OnConnect; f != nil {
			c.notifyFromRun(func() { f(sp) })
		}
		err = c.install(ncn, sp)
		if err != nil {
			ncn.nc.Close()
		}
		if immediate {
			planned.finish(err)
		}
		return
	}
}

// replan is a planned reconnect requested by Reconnect: done is closed
// once its immediate attempt has ended, with err its outcome.
type replan struct {
	done chan struct{}
	err  error
}

func (r *replan) finish(err error) {
	r.err = err
	close(r.done)
}

// Reconnect replaces the connection on purpose, for instance to present a
// renewed credential (Config.PasswordFunc is called again): DISCONNECT is
// queued after everything already queued, the client reads what the broker
// still sends until the broker closes the connection (at most
// Config.PingTimeout), and then reconnects at once, without backoff delay
// and without counting the change as a failure. The state moves to
// StateReconnecting at once, reported with a nil error (a requested change).
//
// Guarantees for messages in flight, the same as after any lost connection
// but without the wait: a QoS 1 or 2 publish accepted before or during the
// reconnect is never dropped; one not acknowledged on the old connection is
// resent on the new one, with DUP when the broker resumed the session, so
// it may arrive twice (at least once). Publish and PublishAsync at QoS 1
// and 2 keep accepting messages meanwhile (they are sent once connected);
// QoS 0 publishes, Subscribe and Unsubscribe return ErrNotConnected until
// the new connection is up, and a SUBACK or UNSUBACK still awaited fails
// with ErrConnectionLost. An acknowledgement the client owes for a received
// message is not sent on the old connection after DISCONNECT: the broker
// delivers that message again.
//
// Reconnect waits, within ctx, for the first attempt: it returns nil once
// the new connection is up, that attempt's error when it failed (the client
// then goes on reconnecting with backoff, as after a lost connection),
// ErrNotConnected when no connection is up, ErrClosed when the client is
// closed. Two concurrent calls share one reconnect. Do not call it from a
// handler while the handler queue is full: the old connection's reader
// waits for that handler.
func (c *Client) Reconnect(ctx context.Context) error {
	c.mu.Lock()
	cn := c.cur
	switch {
	case c.closing:
		c.mu.Unlock()
		return ErrClosed
	case cn == nil:
		c.mu.Unlock()
		return ErrNotConnected
	}
	rp := cn.planned
	notify := func() {}
	if rp == nil {
		if cn.closing {
			c.mu.Unlock()
			return ErrNotConnected
		}
		rp = &replan{done: make(chan struct{})}
		cn.planned = rp
		bp := c.reserveLocked(cn, 2)
		*bp, _ = (&packet.Disconnect{}).AppendBinary(*bp) // never fails
		cn.closing = true
		notify = c.setStateLocked(StateReconnecting, nil)
	}
	c.mu.Unlock()
	notify()
	select {
	case <-rp.done:
		return rp.err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closeCh:
		return ErrClosed
	}
}

// teardown retires cn after its reader stopped with cause. It reports
// whether the client should reconnect.
func (c *Client) teardown(cn *conn, cause error) bool {
	c.mu.Lock()
	if c.cur == cn {
		c.cur = nil
	}
	if cn.err != nil {
		cause = cn.err
	}
	if cn.planned != nil {
		cause = nil // a requested change (Reconnect reported it)
	}
	close(cn.done)
	cn.dead = true // no writer starts any more
	if cn.ka != nil {
		cn.ka.Stop()
	}
	if cn.wbuf != nil {
		putBuf(cn.wbuf)
		cn.wbuf = nil
	}
	var fail []*pending
	for id, pe := range c.pending {
		if pe.kind != kindPublish {
			delete(c.pending, id)
			fail = append(fail, pe)
		}
	}
	// Reconnect asks for a reconnection even when automatic ones are off.
	reconnect := !c.closed && (!c.cfg.Reconnect.Disabled || cn.planned != nil)
	var notify func()
	switch {
	case c.closed:
		notify = c.setStateLocked(StateClosed, nil)
	case reconnect:
		notify = c.setStateLocked(StateReconnecting, cause)
	default:
		notify = c.setStateLocked(StateDisconnected, cause)
	}
	c.mu.Unlock()
	c.kickClose()
	cn.nc.Close()
	cn.writers.Wait()
	if cn.linger != nil {
		cn.linger.Stop() // the last writer's linger
	}
	for _, pe := range fail {
		if pe.req != nil {
			close(pe.req)
		}
	}
	c.notifyFromRun(notify)
	return reconnect
}

// closeGrace bounds how long Close still waits for DISCONNECT to be written
// after its context ended.
const closeGrace = 250 * time.Millisecond

// Close stops the client. It first waits, within ctx, for unacknowledged
// QoS 1 and 2 publishes to complete while a connection is up (or being
// re-established), then sends DISCONNECT after everything queued, closes the
// connection and stops reconnecting. Publishes still unacknowledged when ctx
// ends complete with ErrClosed (they remain in a persistent Store). It
// returns ctx's error if ctx ended first (it then still allows the
// DISCONNECT up to 250 ms to be written). Closing a closed client returns
// ErrClosed.
//
// Close waits, within ctx, for handlers to finish the messages already
// queued, and for the client's goroutines to return, so that none outlives
// it; Done is then closed.
//
// A handler or Config.OnStateChange may call Close. A goroutine running a
// callback owns its own end, so Close called while a handler runs (from
// it, or concurrently with it) does not wait for the delivery goroutine,
// nor for acknowledgements stuck behind a full handler queue; called while
// OnStateChange reports a lost connection, it does not wait for the
// goroutine reporting it. It starts the shutdown, finishes what does not
// depend on that goroutine and returns; the goroutine ends once the
// callback returns (the delivery goroutine after running the handlers of
// the messages already queued), and Done is closed then: wait on Done, not
// from the callback, to know that the client has stopped. StateClosed is
// reported after the callback returns.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closing = true
	c.closingFlag.Store(true)
	c.mu.Unlock()
	if len(c.sem) == 0 {
		c.drainOnce.Do(c.closeDrained)
	}
	// Called from OnStateChange on the run goroutine of a connection that
	// is already torn down: that goroutine ends when the callback returns.
	fromRun := c.inRunCallback.Load()

	result := c.awaitDrain(ctx)

	c.mu.Lock()
	c.closed = true
	cn, runDone := c.cur, c.runDone
	if cn != nil && !cn.closing { // closing: Reconnect queued DISCONNECT already
		bp := c.reserveLocked(cn, 2)
		*bp, _ = (&packet.Disconnect{}).AppendBinary(*bp) // never fails
		cn.closing = true
	}
	c.mu.Unlock()
	c.cancel()
	close(c.closeCh)

	if runDone != nil && !fromRun {
		select {
		case <-runDone:
		case <-ctx.Done():
			if result == nil {
				result = ctx.Err()
			}
			// Give the writer a moment to flush DISCONNECT even when ctx
			// ended while waiting for acknowledgements.
			grace := time.NewTimer(closeGrace)
			select {
			case <-runDone:
			case <-grace.C:
				if cn != nil {
					cn.nc.Close()
				}
				<-runDone // the reader returns as soon as its conn is closed
			}
			grace.Stop()
		}
	}

	// The reader is gone: let the Store queue finish (the packets of the
	// publishes given up on below stay in a persistent Store).
	if storeDone := c.stopStore(); storeDone != nil {
		select {
		case <-storeDone:
		case <-ctx.Done():
			if result == nil {
				result = ctx.Err()
			}
		}
	}

	c.mu.Lock()
	var fail []func(error)
	for id, pe := range c.pending {
		// pe.pkt is not returned to the pool: a publisher running the
		// Store queue may still be reading it.
		if pe.kind == kindPublish && pe.done != nil {
			fail = append(fail, pe.done)
		}
		if pe.slot {
			<-c.sem
		}
		delete(c.pending, id)
	}
	notify := c.setStateLocked(StateClosed, nil)
	c.mu.Unlock()
	for _, f := range fail {
		f(ErrClosed)
	}
	// No reader is left to start the delivery goroutine: stop it.
	c.stopDelivery()
	if !c.inHandler.Load() {
		// A handler running now is not waited for: the delivery
		// goroutine ends once it returned and the queue is drained.
		select {
		case <-c.deliverDone:
		case <-ctx.Done():
			if result == nil {
				result = ctx.Err()
			}
		}
	}
	notify()
	c.mu.Lock()
	c.closedDone = true
	c.doneLocked()
	c.mu.Unlock()
	return result
}

// awaitDrain waits, within ctx, until no publish holds a window slot, or
// the client is neither connected nor reconnecting (nothing will be
// acknowledged then), or a handler runs while the reader is stalled behind
// the full handler queue (the acknowledgements sit unread behind messages
// that wait for that handler, which may be the one calling Close).
func (c *Client) awaitDrain(ctx context.Context) error {
	for {
		c.mu.Lock()
		st, cn := c.state, c.cur
		c.mu.Unlock()
		if st != StateConnected && st != StateReconnecting {
			return nil
		}
		if cn != nil && cn.stalled.Load() && c.inHandler.Load() {
			return nil
		}
		select {
		case <-c.drained:
			return nil
		case <-c.closeKick:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *Client) closeDrained()     { close(c.drained) }
func (c *Client) closeDeliverDone() { close(c.deliverDone) }

// releaseSlot returns one token to the in-flight window and, once Close
// has started, closes drained when it was the last.
func (c *Client) releaseSlot() {
	<-c.sem
	if c.closingFlag.Load() && len(c.sem) == 0 {
		c.drainOnce.Do(c.closeDrained)
	}
}

// kickClose wakes a Close waiting in awaitDrain to look at the state again.
func (c *Client) kickClose() {
	if !c.closingFlag.Load() {
		return
	}
	select {
	case c.closeKick <- struct{}{}:
	default:
	}
}

// Done returns a channel that is closed once the client has stopped: Close
// has finished and every goroutine of the client (reader, writer,
// reconnection, delivery) has returned. Wait on it after calling Close from
// a handler or Config.OnStateChange, which does not wait for the goroutine
// running that callback.
func (c *Client) Done() <-chan struct{} { return c.done }

// exited is called by each goroutine counted in live as it returns.
func (c *Client) exited() {
	c.mu.Lock()
	c.live--
	c.doneLocked()
	c.mu.Unlock()
}

// doneLocked closes done when Close has finished and no goroutine is left.
func (c *Client) doneLocked() {
	if c.closedDone && c.live == 0 {
		select {
		case <-c.done:
		default:
			close(c.done)
		}
	}
}

// allocIDLocked returns a packet id not used by any pending packet, or
// false when all 65,535 are (subscribes waiting for their SUBACK on top of
// a full 65,535 window).
func (c *Client) allocIDLocked() (packet.ID, bool) {
	if c.pending == nil {
		c.pending = make(map[packet.ID]*pending)
	}
	if len(c.pending) >= 65535 {
		return 0, false
	}
	for {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if _, used := c.pending[c.nextID]; !used {
			return c.nextID, true
		}
	}
}

// errNoPacketID is returned when every packet id is in use.
var errNoPacketID = &wrapped{msg: "mqtt: every packet id is in use", err: ErrInFlightFull}

func (c *Client) newPendingLocked() *pending {
	if n := len(c.freePending); n > 0 {
		pe := c.freePending[n-1]
		c.freePending = c.freePending[:n-1]
		return pe
	}
	return new(pending)
}

func (c *Client) freePendingLocked(pe *pending) {
	*pe = pending{}
	if len(c.freePending) < cap(c.sem) {
		c.freePending = append(c.freePending, pe)
	}
}

// completeLocked finishes the publish id: forgets it, frees its window slot
// and returns the callback to report success to (call it after unlocking;
// it may be nil).
func (c *Client) completeLocked(id packet.ID) func(error) {
	done, slot := c.finishLocked(id)
	if slot {
		c.releaseSlot()
	}
	return done
}

// finishLocked forgets the publish id and reports whether it held a window
// slot, which the caller must release.
func (c *Client) finishLocked(id packet.ID) (done func(error), slot bool) {
	pe := c.pending[id]
	delete(c.pending, id)
	c.enqueueStoreLocked(storeOp{kind: opDelete, id: id})
	c.kickStoreLocked()
	if pe.pkt != nil {
		bufpool.Put(pe.pkt)
	}
	done, slot = pe.done, pe.slot
	c.freePendingLocked(pe)
	return done, slot
}
