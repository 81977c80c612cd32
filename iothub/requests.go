package iothub

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Correlator matches replies to requests by request id ($rid). It is the one
// correlation mechanism of the package: the device-side twin (GET and
// reported PATCH), the hub-side method table, and any other request/reply
// exchange use it. Each pending request has a Waiter that completes exactly
// once: with the reply, with an error, on its deadline (ErrTimeout) or on
// cancellation.
//
// A Correlator is safe for concurrent use: replies are resolved from the
// connection's reader goroutine while callers wait in their own.
type Correlator[T any] struct {
	op     string
	clock  Clock
	prefix string

	mu      sync.Mutex
	next    uint64
	pending map[string]*Waiter[T]
}

// NewCorrelator returns an empty Correlator. op names the exchange in errors
// ("twin GET", "method invoke"); prefix is put in front of the ids NewID
// makes (it must consist of bag-safe characters: letters, digits, '-', '.',
// '_', '~'); clock nil means SystemClock.
func NewCorrelator[T any](op, prefix string, clock Clock) *Correlator[T] {
	return &Correlator[T]{op: op, prefix: prefix, clock: clockOr(clock), pending: make(map[string]*Waiter[T])}
}

// NewID returns a fresh request id: the prefix and a decimal counter, so ids
// never repeat for the life of the Correlator, across reconnects too.
// Allocates.
func (c *Correlator[T]) NewID() string {
	c.mu.Lock()
	c.next++
	n := c.next
	c.mu.Unlock()
	var buf [40]byte
	b := append(buf[:0], c.prefix...)
	return string(strconv.AppendUint(b, n, 10))
}

// Start registers a request under a fresh id (NewID) and returns its Waiter.
// See Add for timeout and meta.
func (c *Correlator[T]) Start(timeout time.Duration, meta any) *Waiter[T] {
	w, _ := c.Add(c.NewID(), timeout, meta) // NewID ids are unique
	return w
}

// Add registers a request under rid. If timeout > 0 the Waiter fails with
// an error wrapping ErrTimeout once it elapses on the Correlator's clock;
// with timeout <= 0 only Wait's context or Cancel end it. meta is kept with
// the Waiter for whoever resolves it (e.g. what kind of request it was). It
// returns ErrDuplicateRequestID if rid is already pending.
func (c *Correlator[T]) Add(rid string, timeout time.Duration, meta any) (*Waiter[T], error) {
	w := &Waiter[T]{c: c, rid: rid, meta: meta, done: make(chan struct{})}
	c.mu.Lock()
	if _, dup := c.pending[rid]; dup {
		c.mu.Unlock()
		return nil, &requestError{op: c.op, rid: rid, err: ErrDuplicateRequestID}
	}
	c.pending[rid] = w
	c.mu.Unlock()
	if timeout > 0 {
		t := c.clock.AfterFunc(timeout, func() {
			var zero T
			w.complete(zero, &requestError{op: c.op, rid: rid, err: ErrTimeout})
		})
		c.mu.Lock()
		if w.finished {
			c.mu.Unlock()
			t.Stop()
		} else {
			w.timer = t
			c.mu.Unlock()
		}
	}
	return w, nil
}

// Take removes the pending request rid and returns its Waiter for the
// caller to Complete, or nil if no such request is pending (it timed out,
// was cancelled, or the id was never ours: IoT Hub drops such replies). It
// does not allocate.
func (c *Correlator[T]) Take(rid []byte) *Waiter[T] {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.pending[string(rid)]
	if !ok {
		return nil
	}
	delete(c.pending, w.rid)
	return w
}

// Peek returns the pending Waiter for rid without removing it, or nil.
func (c *Correlator[T]) Peek(rid []byte) *Waiter[T] {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending[string(rid)]
}

// Resolve completes the pending request rid with v and err. It reports
// false if no such request was pending.
func (c *Correlator[T]) Resolve(rid []byte, v T, err error) bool {
	w := c.Take(rid)
	if w == nil {
		return false
	}
	return w.Complete(v, err)
}

// FailAll completes every pending request with err (typically
// ErrConnectionLost) and returns how many there were.
func (c *Correlator[T]) FailAll(err error) int {
	c.mu.Lock()
	ws := make([]*Waiter[T], 0, len(c.pending))
	for rid, w := range c.pending {
		ws = append(ws, w)
		delete(c.pending, rid)
	}
	c.mu.Unlock()
	var zero T
	for _, w := range ws {
		w.Complete(zero, &requestError{op: c.op, rid: w.rid, err: err})
	}
	return len(ws)
}

// Len returns the number of pending requests.
func (c *Correlator[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Waiter is one pending request of a Correlator.
type Waiter[T any] struct {
	c     *Correlator[T]
	rid   string
	meta  any
	done  chan struct{}
	timer Timer // guarded by c.mu

	// Set before done is closed, read only after.
	finished bool // guarded by c.mu
	v        T
	err      error
}

// RequestID returns the request id the reply must carry.
func (w *Waiter[T]) RequestID() string { return w.rid }

// Meta returns the meta value given to Add or Start.
func (w *Waiter[T]) Meta() any { return w.meta }

// Done is closed once the request has completed.
func (w *Waiter[T]) Done() <-chan struct{} { return w.done }

// Result returns the outcome; it is meaningful only after Done is closed.
func (w *Waiter[T]) Result() (T, error) { return w.v, w.err }

// Wait blocks until the request completes or ctx is done. If ctx ends
// first, the request is removed (a later reply is then dropped) and
// ctx.Err() is returned.
func (w *Waiter[T]) Wait(ctx context.Context) (T, error) {
	select {
	case <-w.done:
		return w.v, w.err
	case <-ctx.Done():
		var zero T
		w.complete(zero, ctx.Err())
		<-w.done // whoever completed first decides the outcome
		return w.v, w.err
	}
}

// Cancel removes the request and completes it with err (for instance when
// publishing the request failed). It reports false if it had already
// completed.
func (w *Waiter[T]) Cancel(err error) bool {
	var zero T
	return w.complete(zero, err)
}

// Complete completes the request with v and err; the first completion wins
// and later ones report false. Use it on a Waiter obtained from Take.
func (w *Waiter[T]) Complete(v T, err error) bool { return w.complete(v, err) }

func (w *Waiter[T]) complete(v T, err error) bool {
	c := w.c
	c.mu.Lock()
	if w.finished {
		c.mu.Unlock()
		return false
	}
	w.finished = true
	if c.pending[w.rid] == w {
		delete(c.pending, w.rid)
	}
	t := w.timer
	w.timer = nil
	w.v, w.err = v, err
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	close(w.done)
	return true
}

// requestError is a request that ended without a reply: timed out, the
// connection was lost, or its id was a duplicate. It wraps the cause.
type requestError struct {
	op  string
	rid string
	err error
}

func (e *requestError) Error() string {
	return "iothub: " + e.op + " (rid " + e.rid + "): " + e.err.Error()
}

func (e *requestError) Unwrap() error { return e.err }
