package mqtt

import (
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 300 * time.Millisecond}
	for n := range 12 {
		ceil := min(b.Max, b.Min<<n)
		var most time.Duration
		for range 200 {
			d := b.delay(n)
			if d < 0 || d > ceil {
				t.Fatalf("delay(%d) = %v, want within [0, %v]", n, d, ceil)
			}
			most = max(most, d)
		}
		// Full jitter spreads over the whole range: over 200 draws the
		// largest is, with overwhelming probability, above a quarter.
		if most < ceil/4 {
			t.Fatalf("delay(%d): largest of 200 draws %v, ceiling %v", n, most, ceil)
		}
	}
	if d := (Backoff{Min: 0, Max: 0}).delay(3); d != 0 {
		t.Fatalf("zero backoff gave %v", d)
	}
}
