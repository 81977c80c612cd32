package device

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/mqtt"
)

// DesiredUpdate is a change of the desired properties, delivered to
// Config.OnDesired in $version order:
//
//   - Full: the first synchronisation after Connect; Patch is the whole
//     desired section.
//   - Resync: the end of a resynchronisation after a reconnect (or a
//     $version gap): the client subscribed, read the twin, dropped the
//     notifications it already contained, and Patch is the difference
//     from what was applied before (it may be empty: every
//     resynchronisation is signalled by exactly one update with Full or
//     Resync set).
//   - neither: a desired-properties notification, applied in order.
//
// Patch is a JSON merge patch (nil values were deleted); numbers are
// json.Number. The client keeps no reference to it.
type DesiredUpdate = iothub.DesiredUpdate

// Twin is a device twin as a device reads it: desired and reported
// sections with their $version.
type Twin = iothub.Twin

// Backoff of retried twin requests (429 and lost connections).
const (
	twinRetryMin = 250 * time.Millisecond
	twinRetryMax = 30 * time.Second
)

// retryDelay returns the full-jitter backoff before retry n (from 0).
func retryDelay(n int) time.Duration {
	ceil := twinRetryMin
	for i := 0; i < n && ceil < twinRetryMax; i++ {
		ceil *= 2
	}
	ceil = min(ceil, twinRetryMax)
	return ceil/2 + rand.N(ceil/2+1)
}

// GetTwin reads the twin (a GET). It waits for a connection while the
// client is reconnecting, and retries a throttled (429) or connection-lost
// request with backoff until ctx ends. Errors: ErrNotFound, ErrUnauthorized
// and other *iothub.StatusError statuses, ErrTimeout, ctx's error.
func (c *Client) GetTwin(ctx context.Context) (Twin, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	for n := 0; ; n++ {
		if err := c.waitUp(ctx); err != nil {
			return Twin{}, err
		}
		a, w := c.twin.Get()
		if err := c.publish0(ctx, a); err != nil {
			w.Cancel(err)
			return Twin{}, err
		}
		reply, err := w.Wait(ctx)
		if err == nil {
			return reply.Twin, nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return Twin{}, err
		}
		if err := c.sleep(ctx, retryDelay(n)); err != nil {
			return Twin{}, err
		}
	}
}

// ReportProperties sends a reported-properties patch and returns the new
// reported $version. patch is JSON ([]byte or json.RawMessage) or any
// value encoding/json marshals to an object; null members delete. Patches
// are sent one at a time, in call order; a throttled (429) or
// connection-lost patch is retried with backoff until ctx ends. An invalid
// patch (keys, depth, sizes) fails at once with an error matching
// iothub.ErrBadRequest.
func (c *Client) ReportProperties(ctx context.Context, patch any) (version int64, err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	var body []byte
	switch p := patch.(type) {
	case nil:
		return 0, classErr(ErrInvalidMessage, "device: nil patch", nil)
	case []byte:
		body = p
	case json.RawMessage:
		body = p
	default:
		if body, err = json.Marshal(patch); err != nil {
			return 0, classErr(ErrInvalidMessage, "device: patch", err)
		}
	}
	c.reportMu.Lock()
	defer c.reportMu.Unlock()
	for n := 0; ; n++ {
		if err := c.waitUp(ctx); err != nil {
			return 0, err
		}
		a, w, err := c.twin.ReportProperties(body)
		if err != nil {
			return 0, err
		}
		if err := c.publish0(ctx, a); err != nil {
			w.Cancel(err)
			return 0, err
		}
		reply, err := w.Wait(ctx)
		if err == nil {
			return reply.Version, nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return 0, err
		}
		c.log.Info("device: reported patch retried", "err", err)
		if err := c.sleep(ctx, retryDelay(n)); err != nil {
			return 0, err
		}
	}
}

// retryable reports whether a twin request may be sent again.
func retryable(err error) bool {
	return errors.Is(err, iothub.ErrThrottled) || errors.Is(err, iothub.ErrConnectionLost)
}

// sleep waits d, or until ctx ends or the client closes.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return c.closedErr()
	}
}

// DesiredProperties returns the last applied desired $version and a copy
// of the desired properties; ok is false before the first synchronisation.
func (c *Client) DesiredProperties() (version int64, props map[string]any, ok bool) {
	return c.twin.Desired()
}

// startSync starts a twin GET that (re)synchronises the desired state,
// retried with backoff while the connection is up.
func (c *Client) startSync() {
	a, w := c.twin.Get()
	c.watchSync(a, w, 0)
}

// watchSync publishes a synchronising GET and, should it fail other than by
// a lost connection (the next connect starts a new one), starts another
// after a backoff.
func (c *Client) watchSync(a iothub.Action, w *iothub.Waiter[iothub.TwinReply], attempt int) {
	c.mu.Lock()
	c.syncRIDs[w.RequestID()] = true
	c.mu.Unlock()
	if len(a.Topic) > 0 {
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.TwinTimeout)
		err := c.publish0(ctx, a)
		cancel()
		if err != nil {
			w.Cancel(err)
		}
	}
	c.spawn(func() {
		select {
		case <-w.Done():
		case <-c.ctx.Done():
			w.Cancel(ErrClosed)
			return
		}
		_, err := w.Result()
		c.mu.Lock()
		delete(c.syncRIDs, w.RequestID())
		live := c.connected && !c.closing
		c.mu.Unlock()
		if err == nil || errors.Is(err, iothub.ErrConnectionLost) || !live {
			return
		}
		c.log.Info("device: twin synchronisation failed; retrying", "err", err)
		if c.sleep(c.ctx, retryDelay(attempt)) != nil {
			return
		}
		a, w := c.twin.Get()
		c.watchSync(a, w, attempt+1)
	})
}

// handleTwin feeds a twin reply or desired notification to the state
// machine, on the delivery goroutine, in arrival order.
func (c *Client) handleTwin(r *iothub.Route, payload []byte) {
	sync := false
	if r.Kind == iothub.RouteTwinResponse {
		c.mu.Lock()
		sync = c.syncRIDs[string(r.RequestID)]
		c.mu.Unlock()
	}
	fx, err := c.twin.Handle(r, payload)
	if err != nil && !errors.Is(err, iothub.ErrStaleResponse) {
		c.log.Warn("device: twin message", "err", err)
	}
	if len(fx.Publish) > 0 {
		// The state machine started a GET of its own (a $version gap).
		for i, a := range fx.Publish {
			if i == len(fx.Publish)-1 && fx.Sync != nil {
				break
			}
			// On the delivery goroutine: never wait for a connection
			// here (a lost one is resynchronised when it comes back).
			_ = c.mq.Publish(c.ctx, &mqtt.Message{Topic: a.Topic, Payload: a.Payload})
		}
	}
	if fx.Sync != nil {
		a := fx.Publish[len(fx.Publish)-1]
		c.spawn(func() { c.watchSync(a, fx.Sync, 0) })
	}
	updates := fx.Updates
	if sync && r.Status >= 200 && r.Status < 300 {
		marked := false
		for _, u := range updates {
			if u.Full || u.Resync {
				marked = true
				break
			}
		}
		if !marked {
			v, _, _ := c.twin.Desired()
			updates = append([]DesiredUpdate{{Version: v, Resync: true, Patch: map[string]any{}}}, updates...)
		}
	}
	if len(updates) > 0 && c.cfg.OnDesired != nil {
		c.desiredMu.Lock()
		c.desiredQ = append(c.desiredQ, updates...)
		c.desiredMu.Unlock()
		select {
		case c.desiredWake <- struct{}{}:
		default:
		}
	}
}

// desiredLoop calls Config.OnDesired for each update, in order, on its own
// goroutine, so the handler may call the client (report properties, say).
func (c *Client) desiredLoop() {
	for {
		select {
		case <-c.desiredWake:
		case <-c.ctx.Done():
			return
		}
		for {
			c.desiredMu.Lock()
			if len(c.desiredQ) == 0 {
				c.desiredMu.Unlock()
				break
			}
			u := c.desiredQ[0]
			c.desiredQ[0] = DesiredUpdate{}
			c.desiredQ = c.desiredQ[1:]
			c.desiredMu.Unlock()
			c.callDesired(u)
		}
	}
}

func (c *Client) callDesired(u DesiredUpdate) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("device: OnDesired panicked", "panic", p)
		}
	}()
	c.cfg.OnDesired(u)
}
