// Package bufpool is hubwire's one pool of byte buffers, shared by the
// packet reader and the client's write path.
//
// Buffers come in power-of-four size classes from 1 KiB to 1 MiB, each a
// sync.Pool of *[]byte (a pointer, so Put does not allocate an interface
// value for the slice header). Larger requests are allocated and dropped on
// Put rather than pinned in a pool, so one huge packet cannot keep megabytes
// alive.
package bufpool

import (
	"math/bits"
	"sync"
)

const (
	minShift = 10 // 1 KiB
	maxShift = 20 // 1 MiB
	classes  = (maxShift-minShift)/2 + 1
)

var pools [classes]sync.Pool

// class returns the size class index whose buffers hold n bytes, or -1 when
// n is beyond the largest class.
func class(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	shift := bits.Len(uint(n - 1)) // smallest power of two >= n
	c := (shift - minShift + 1) / 2
	if c >= classes {
		return -1
	}
	return c
}

func classSize(c int) int { return 1 << (minShift + 2*c) }

// Get returns a buffer of length 0 and capacity at least n. Release it with
// Put when done.
func Get(n int) *[]byte {
	c := class(n)
	if c < 0 {
		b := make([]byte, 0, n)
		return &b
	}
	if v := pools[c].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:0]
		return bp
	}
	b := make([]byte, 0, classSize(c))
	return &b
}

// Put returns a buffer obtained from Get. The caller must not use it
// afterwards. Buffers whose capacity is not exactly a class size (grown by
// append, or beyond the largest class) are dropped.
func Put(bp *[]byte) {
	if bp == nil {
		return
	}
	n := cap(*bp)
	c := class(n)
	if c < 0 || classSize(c) != n {
		return
	}
	*bp = (*bp)[:0]
	pools[c].Put(bp)
}
