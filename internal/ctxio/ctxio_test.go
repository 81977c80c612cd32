package ctxio_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/ctxio"
)

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case server = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("no accept")
	}
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestDoDeadline checks that a read blocked past ctx's deadline ends, and
// that Err then always reports DeadlineExceeded with the context's cause,
// however the I/O deadline and the context's timer race.
func TestDoDeadline(t *testing.T) {
	c, _ := pair(t)
	cause := errors.New("my cause")
	for i := range 20 {
		ctx, cancel := context.WithTimeoutCause(context.Background(), 5*time.Millisecond, cause)
		err := ctxio.Do(ctx, c, func() error {
			_, err := c.Read(make([]byte, 1))
			return err
		})
		if err == nil {
			t.Fatalf("run %d: read returned no error", i)
		}
		if ce := ctxio.Err(ctx, err); !errors.Is(ce, context.DeadlineExceeded) {
			t.Fatalf("run %d: Err = %v, want DeadlineExceeded", i, ce)
		}
		if got := context.Cause(ctx); got != cause {
			t.Fatalf("run %d: Cause = %v, want %v", i, got, cause)
		}
		cancel()
	}
	// The deadline is cleared: a read after Do blocks again until data.
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read after Do: %v", err)
	}
}

// TestDoCancel checks that cancelling ctx ends a blocked read.
func TestDoCancel(t *testing.T) {
	c, _ := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	err := ctxio.Do(ctx, c, func() error {
		_, err := c.Read(make([]byte, 1))
		return err
	})
	if ce := ctxio.Err(ctx, err); err == nil || !errors.Is(ce, context.Canceled) {
		t.Fatalf("Do = %v, Err = %v", err, ce)
	}
}

// TestDoSuccess checks that I/O that completes in time returns nil and
// that Err is nil for a live context.
func TestDoSuccess(t *testing.T) {
	c, s := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := ctxio.Do(ctx, c, func() error {
		_, err := c.Read(make([]byte, 1))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := ctxio.Err(ctx, nil); err != nil {
		t.Fatalf("Err of a live context = %v", err)
	}
	// A timeout of the I/O's own, long before ctx's deadline, is not ctx's.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
	_, rerr := c.Read(make([]byte, 1))
	if err := ctxio.Err(ctx, rerr); rerr == nil || err != nil {
		t.Fatalf("read %v: Err = %v, want nil", rerr, err)
	}
}
