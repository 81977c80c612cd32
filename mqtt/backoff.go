package mqtt

import (
	"math/rand/v2"
	"time"
)

// delay returns the wait before reconnection attempt n (from 0): uniformly
// random in [0, min(Max, Min·2ⁿ)] ("full jitter").
func (b Backoff) delay(n int) time.Duration {
	ceil := b.Min
	for i := 0; i < n && ceil < b.Max; i++ {
		ceil *= 2
	}
	if ceil > b.Max {
		ceil = b.Max
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil + 1)
}
