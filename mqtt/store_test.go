package mqtt_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

func storeContents(t *testing.T, s mqtt.Store) []string {
	t.Helper()
	var out []string
	if err := s.Range(func(id packet.ID, pkt []byte) bool {
		out = append(out, string(rune('0'+id))+":"+string(pkt))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMemoryStore(t *testing.T) {
	s := mqtt.NewMemoryStore()
	buf := []byte("a")
	_ = s.Put(3, buf)
	buf[0] = 'X' // the store must have copied
	_ = s.Put(1, []byte("b"))
	_ = s.Put(2, []byte("c"))
	_ = s.Put(3, []byte("A")) // replace keeps the original position
	if d := cmp.Diff([]string{"3:A", "1:b", "2:c"}, storeContents(t, s)); d != "" {
		t.Fatalf("order (-want +got):\n%s", d)
	}
	_ = s.Delete(1)
	_ = s.Delete(9) // absent: no error
	_ = s.Put(1, []byte("d"))
	if d := cmp.Diff([]string{"3:A", "2:c", "1:d"}, storeContents(t, s)); d != "" {
		t.Fatalf("after delete and put (-want +got):\n%s", d)
	}
	// Range stops when f returns false.
	n := 0
	_ = s.Range(func(packet.ID, []byte) bool { n++; return false })
	if n != 1 {
		t.Fatalf("Range visited %d after false", n)
	}
	_ = s.Reset()
	if s.Len() != 0 || len(storeContents(t, s)) != 0 {
		t.Fatal("Reset left packets")
	}
}
