package bufpool

import "testing"

func TestGetCapacity(t *testing.T) {
	for _, n := range []int{0, 1, 1024, 1025, 4096, 4097, 65536, 1 << 20, 1<<20 + 1, 5 << 20} {
		bp := Get(n)
		if len(*bp) != 0 || cap(*bp) < n {
			t.Fatalf("Get(%d): len %d cap %d", n, len(*bp), cap(*bp))
		}
		if n <= 1<<20 && cap(*bp) > 4*n && cap(*bp) > 1024 {
			t.Fatalf("Get(%d): cap %d wastes more than one class", n, cap(*bp))
		}
		Put(bp)
	}
}

func TestPutDropsForeignSizes(t *testing.T) {
	b := make([]byte, 0, 3000) // not a class size
	Put(&b)                    // must not panic, must not be handed out
	for i := 0; i < 100; i++ {
		got := Get(2000)
		if cap(*got) == 3000 {
			t.Fatal("pool handed out a buffer that was not a class size")
		}
	}
	Put(nil)
}
