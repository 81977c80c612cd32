package iothub

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// waitCtx bounds every wait in these tests.
func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCorrelatorResolve(t *testing.T) {
	clk := NewManualClock(epoch)
	c := NewCorrelator[int]("test", "r", clk)
	w := c.Start(time.Second, "meta")
	if w.RequestID() != "r1" || w.Meta() != "meta" {
		t.Fatalf("id %q meta %v", w.RequestID(), w.Meta())
	}
	if c.Start(time.Second, nil).RequestID() != "r2" {
		t.Fatal("ids must count up")
	}
	if !c.Resolve([]byte("r1"), 7, nil) {
		t.Fatal("Resolve reported no pending request")
	}
	v, err := w.Wait(waitCtx(t))
	if v != 7 || err != nil {
		t.Fatalf("Wait = %v, %v", v, err)
	}
	if c.Resolve([]byte("r1"), 8, nil) {
		t.Error("a second reply must be dropped")
	}
	if c.Len() != 1 {
		t.Errorf("Len = %d, want 1", c.Len())
	}
	// The resolved request's timer was stopped; only r2's is left.
	if clk.Pending() != 1 {
		t.Errorf("timers pending = %d, want 1", clk.Pending())
	}
}

func TestCorrelatorTimeout(t *testing.T) {
	clk := NewManualClock(epoch)
	c := NewCorrelator[string]("twin GET", "", clk)
	w := c.Start(30*time.Second, nil)
	clk.Advance(29 * time.Second)
	select {
	case <-w.Done():
		t.Fatal("completed before its deadline")
	default:
	}
	clk.Advance(time.Second)
	_, err := w.Wait(waitCtx(t))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if StatusOf(err) != 504 {
		t.Errorf("StatusOf = %d, want 504", StatusOf(err))
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d after timeout", c.Len())
	}
	if c.Resolve([]byte(w.RequestID()), "late", nil) {
		t.Error("a late reply must be dropped")
	}
}

func TestCorrelatorContextCancel(t *testing.T) {
	c := NewCorrelator[int]("test", "", NewManualClock(epoch))
	w := c.Start(0, nil) // no deadline: only the context ends it
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if c.Len() != 0 {
		t.Error("cancelled request still pending")
	}
	if c.Resolve([]byte(w.RequestID()), 1, nil) {
		t.Error("reply after cancel must be dropped")
	}
}

func TestCorrelatorCancelAndDuplicate(t *testing.T) {
	c := NewCorrelator[int]("test", "", nil)
	w, err := c.Add("x", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add("x", time.Hour, nil); !errors.Is(err, ErrDuplicateRequestID) {
		t.Fatalf("duplicate err = %v", err)
	}
	boom := errors.New("publish failed")
	if !w.Cancel(boom) || w.Cancel(boom) {
		t.Fatal("Cancel must succeed exactly once")
	}
	if _, err := w.Result(); err != boom {
		t.Fatalf("Result err = %v", err)
	}
	if w2, err := c.Add("x", time.Hour, nil); err != nil {
		t.Fatalf("id must be reusable after completion: %v", err)
	} else {
		w2.Cancel(boom)
	}
}

func TestCorrelatorFailAll(t *testing.T) {
	c := NewCorrelator[int]("test", "", NewManualClock(epoch))
	ws := []*Waiter[int]{c.Start(time.Second, nil), c.Start(time.Second, nil), c.Start(0, nil)}
	if n := c.FailAll(ErrConnectionLost); n != 3 {
		t.Fatalf("FailAll = %d", n)
	}
	for _, w := range ws {
		if _, err := w.Wait(waitCtx(t)); !errors.Is(err, ErrConnectionLost) {
			t.Errorf("err = %v", err)
		}
	}
}

func TestCorrelatorTakeUnknown(t *testing.T) {
	c := NewCorrelator[int]("test", "", nil)
	if c.Take([]byte("nope")) != nil || c.Peek([]byte("nope")) != nil {
		t.Error("unknown id found")
	}
}

// TestCorrelatorConcurrent races replies, timeouts and cancellations; run
// with -race. Every waiter must complete exactly once.
func TestCorrelatorConcurrent(t *testing.T) {
	clk := NewManualClock(epoch)
	c := NewCorrelator[int]("test", "", clk)
	const n = 200
	ws := make([]*Waiter[int], n)
	for i := range ws {
		ws[i] = c.Start(time.Second, nil)
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i += 2 {
			c.Resolve([]byte(ws[i].RequestID()), i, nil)
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < n; i += 3 {
			ws[i].Cancel(context.Canceled)
		}
	}()
	go func() {
		defer wg.Done()
		clk.Advance(time.Second)
	}()
	wg.Wait()
	for i, w := range ws {
		v, err := w.Wait(waitCtx(t))
		if err == nil && v != i {
			t.Fatalf("waiter %d got value %d", i, v)
		}
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d", c.Len())
	}
}

func TestManualClockOrder(t *testing.T) {
	clk := NewManualClock(epoch)
	var got []int
	clk.AfterFunc(3*time.Second, func() { got = append(got, 3) })
	clk.AfterFunc(time.Second, func() { got = append(got, 1) })
	stopped := clk.AfterFunc(2*time.Second, func() { got = append(got, 2) })
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop must succeed once")
	}
	clk.Advance(5 * time.Second)
	if len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Errorf("fired %v, want [1 3]", got)
	}
	if !clk.Now().Equal(epoch.Add(5 * time.Second)) {
		t.Errorf("Now = %v", clk.Now())
	}
}
