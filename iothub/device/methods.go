package device

import (
	"context"

	"github.com/hubwire/hubwire/iothub"
)

// MethodRequest is a direct-method call: its name, request id and JSON
// payload (owned by the handler).
type MethodRequest = iothub.MethodRequest

// MethodHandler answers a direct method with a status (any integer) and a
// JSON payload or nil. Its context ends at Config.MethodTimeout or when the
// client closes. A returned error or a panic is answered 500 with
// {"message":"…"}; a payload that is not JSON, too.
type MethodHandler = iothub.MethodHandler

// HandleMethod registers h for the direct method name (nil removes it); it
// may be called at any time. Methods without a handler (and without
// Config.DefaultMethod) are answered 501.
func (c *Client) HandleMethod(name string, h MethodHandler) {
	c.mux.Handle(name, h)
}

// methodBacklogFactor bounds the calls waiting for a handler slot, as a
// multiple of Config.MaxConcurrentMethods; beyond it calls are answered
// 429 at once.
const methodBacklogFactor = 8

// statusBusy answers calls over the backlog.
const statusBusy = 429

// handleMethod starts a method call off the delivery goroutine, so a slow
// handler delays neither C2D, nor twin traffic, nor keep-alive.
func (c *Client) handleMethod(r *iothub.Route, payload []byte) {
	req, err := iothub.ParseMethodRequest(r, payload)
	if err != nil {
		c.log.Warn("device: malformed method request", "err", err)
		return
	}
	if int(c.methodWaiting.Add(1)) > methodBacklogFactor*cap(c.methodSem) {
		c.methodWaiting.Add(-1)
		c.spawn(func() {
			ctx, cancel := context.WithTimeout(c.ctx, c.cfg.MethodTimeout)
			defer cancel()
			a := iothub.MethodResponse(req.RequestID, statusBusy, []byte(`{"message":"too many method calls in progress"}`))
			c.reply(ctx, req, a)
		})
		return
	}
	c.spawn(func() {
		defer c.methodWaiting.Add(-1)
		c.runMethod(req)
	})
}

// runMethod waits for a handler slot, runs the handler and publishes its
// answer, waiting for a reconnect if the connection dropped meanwhile.
func (c *Client) runMethod(req MethodRequest) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.MethodTimeout)
	defer cancel()
	select {
	case c.methodSem <- struct{}{}:
	case <-ctx.Done():
		c.log.Warn("device: method call expired waiting for a handler slot", "method", req.Name)
		return
	}
	a := c.mux.Dispatch(ctx, req)
	<-c.methodSem
	// The answer gets its own deadline: a handler that used all of its
	// time still answers (IoT Hub drops an answer that is too late).
	rctx, rcancel := context.WithTimeout(c.ctx, c.cfg.MethodTimeout)
	defer rcancel()
	c.reply(rctx, req, a)
}

func (c *Client) reply(ctx context.Context, req MethodRequest, a iothub.Action) {
	if err := c.publish0(ctx, a); err != nil {
		c.log.Warn("device: method reply not sent", "method", req.Name, "err", err)
	}
}
