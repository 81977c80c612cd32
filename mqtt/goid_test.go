package mqtt

import "testing"

func TestGoroutineID(t *testing.T) {
	a, b := goroutineID(), goroutineID()
	if a == 0 || a != b {
		t.Fatalf("ids on one goroutine: %d, %d", a, b)
	}
	other := make(chan uint64)
	go func() { other <- goroutineID() }()
	if o := <-other; o == 0 || o == a {
		t.Fatalf("id on another goroutine: %d (this one %d)", o, a)
	}
}
