package eventlog

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeFrame: decoding never panics, never accepts a length over the
// limit, and what it accepts re-encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendFrame(nil, 0, 0, nil))
	f.Add(appendFrame(nil, 42, 1767000000000000000, []byte("hello")))
	f.Add(appendFrame(nil, 1, 2, bytes.Repeat([]byte{7}, 300))[:100])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxRec = 4096
		h, p, n, ok := decodeFrame(b, maxRec)
		if !ok {
			return
		}
		if h.n > maxRec || n != frameSize(len(p)) || n > len(b) {
			t.Fatalf("accepted frame of %d bytes, payload %d, input %d", n, len(p), len(b))
		}
		if re := appendFrame(nil, h.seq, h.nanos, p); !bytes.Equal(re, b[:n]) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", re, b[:n])
		}
	})
}

// FuzzRecover: whatever follows a valid header in the newest segment, Open
// succeeds, keeps exactly the intact prefix of consecutive records, reads
// back cleanly and reopens without cutting anything more.
func FuzzRecover(f *testing.F) {
	var valid []byte
	for i := uint64(0); i < 5; i++ {
		valid = appendFrame(valid, i, int64(i)*1000, payload(i))
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(bytes.Clone(valid), make([]byte, 100)...))
	f.Add(appendFrame(appendFrame(nil, 0, 5, []byte("a")), 5, 6, []byte("b")))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, tail []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, segName(0))
		if err := os.WriteFile(path, append(appendSegHeader(nil, 0), tail...), 0o644); err != nil {
			t.Fatal(err)
		}
		opts := Options{MaxRecordBytes: 4096, MaxAge: -1, MaxBytes: -1}
		l, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		// The expected prefix, decoded independently.
		var want [][]byte
		for b := tail; ; {
			h, p, n, ok := decodeFrame(b, 4096)
			if !ok || h.seq != uint64(len(want)) {
				break
			}
			want = append(want, p)
			b = b[n:]
		}
		var got [][]byte
		next, err := l.Read(0, 1<<20, func(r Record) bool {
			got = append(got, bytes.Clone(r.Data))
			return true
		})
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if next != uint64(len(want)) || len(got) != len(want) || l.Next() != next {
			t.Fatalf("kept %d records (Next %d), want %d", len(got), l.Next(), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d: %q, want %q", i, got[i], want[i])
			}
		}
		if _, err := l.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		l.Close()
		l, err = Open(dir, opts)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer l.Close()
		if l.Stats().Truncated != 0 || l.Next() != next+1 {
			t.Fatalf("reopen: cut %d bytes, Next %d, want 0 and %d", l.Stats().Truncated, l.Next(), next+1)
		}
	})
}
