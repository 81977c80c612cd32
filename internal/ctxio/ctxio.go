// Package ctxio bounds blocking I/O on a net.Conn by a context, and tells
// whether the context is what ended it. It is the one mechanism shared by
// package transport (dial, proxy and WebSocket handshakes) and package mqtt
// (the CONNECT/CONNACK exchange).
//
// A context's deadline is applied to the connection as its I/O deadline, so
// the blocked call returns "i/o timeout" at that instant; the context's own
// timer fires independently, a moment earlier or later. Err closes that
// race: given the timeout error of the I/O, it waits, briefly, for the
// timer, so a caller that asks "did the context end this?" gets the same
// answer every time.
package ctxio

import (
	"context"
	"errors"
	"net"
	"os"
	"time"
)

// timerGrace bounds how long Err waits, past ctx's deadline, for ctx's
// timer. The runtime fires a due timer within microseconds; the bound only
// matters for a Context implementation whose Done never closes.
const timerGrace = 100 * time.Millisecond

// Do runs fn, which does blocking I/O on conn, so that it ends when ctx
// does: ctx's deadline becomes conn's deadline, and cancelling ctx moves the
// deadline into the past. If ctx ended just as fn succeeded, Do returns
// ctx's error, since the deadline may have cut I/O that fn did not report.
// conn's deadline is cleared before Do returns.
func Do(ctx context.Context, conn net.Conn, fn func() error) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	err := fn()
	if !stop() && err == nil {
		// The context ended as fn succeeded; the deadline may be poisoned.
		err = ctx.Err()
	}
	_ = conn.SetDeadline(time.Time{})
	return err
}

// Err returns ctx's error if ctx has ended, and nil if it has not. ioErr
// is the error of the I/O that ctx bounded: when it is a timeout and ctx's
// deadline is due (the I/O deadline set from it fired before the context's
// own timer, which the runtime may fire a little later), Err waits for the
// timer, so it then returns context.DeadlineExceeded and context.Cause(ctx)
// is the cause that timer sets, never a stale nil.
func Err(ctx context.Context, ioErr error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, ok := ctx.Deadline()
	if !ok || !isTimeout(ioErr) {
		return nil
	}
	wait := time.Until(dl)
	if wait > timerGrace {
		return nil // a timeout of its own, long before ctx's deadline
	}
	t := time.NewTimer(max(wait, 0) + timerGrace)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func isTimeout(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
