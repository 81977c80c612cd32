//go:build !race

package percent

import "testing"

// TestAllocs holds every function at zero allocations when dst has room.
func TestAllocs(t *testing.T) {
	const s = "dev#1%41/modules/m;2"
	buf := make([]byte, 0, 256)
	cases := map[string]func(){
		"AppendEscape":   func() { _ = AppendEscape(buf[:0], s, webUtility) },
		"EscapedLen":     func() { _ = EscapedLen(s, unreserved) },
		"AppendUnescape": func() { _, _ = AppendUnescape(buf[:0], s) },
		"Valid":          func() { _ = Valid(s) },
		"DecodeLenient":  func() { _, _ = DecodeLenient(s, 5) },
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs, want 0", name, n)
		}
	}
}
