//go:build !race

package packet

import "testing"

// TestDecodeErrorAllocs holds a rejection at one allocation, the
// *DecodeError: its message is not built until Error is called.
func TestDecodeErrorAllocs(t *testing.T) {
	for _, c := range rejections {
		frame := unhex(t, c.frame)
		n := testing.AllocsPerRun(100, func() {
			if c.into.Decode(frame) == nil {
				t.Fatal("accepted")
			}
		})
		if n != 1 {
			t.Errorf("%s: %v allocs per rejection, want 1 (the *DecodeError only)", c.name, n)
		}
	}
}
