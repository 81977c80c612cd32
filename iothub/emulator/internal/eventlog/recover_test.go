package eventlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// frameOffset returns the offset of record i in a single-segment log of
// payload(0..) records.
func frameOffset(i int) int64 {
	off := int64(segHeaderSize)
	for j := 0; j < i; j++ {
		off += int64(frameSize(len(payload(uint64(j)))))
	}
	return off
}

func writeRecords(t *testing.T, dir string, n int, opts Options) {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := l.Append(payload(uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptTail(t *testing.T) {
	const n = 50
	last := frameOffset(n - 1) // start of the last frame
	end := frameOffset(n)
	mid := frameOffset(20)
	seg := segName(0)
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		keep   uint64 // records expected after reopening
	}{
		{"cut-inside-payload", func(t *testing.T, p string) { truncate(t, p, end-5) }, n - 1},
		{"cut-inside-frame-header", func(t *testing.T, p string) { truncate(t, p, last+10) }, n - 1},
		{"cut-at-frame-boundary", func(t *testing.T, p string) { truncate(t, p, last) }, n - 1},
		{"zeros-after", func(t *testing.T, p string) { appendBytes(t, p, make([]byte, 4096)) }, n},
		{"garbage-after", func(t *testing.T, p string) { appendBytes(t, p, bytes.Repeat([]byte{0xa5, 0x13, 0x77}, 100)) }, n},
		{"flipped-payload-byte", func(t *testing.T, p string) { flip(t, p, end-3) }, n - 1},
		{"flipped-crc", func(t *testing.T, p string) { flip(t, p, last+5) }, n - 1},
		{"huge-length", func(t *testing.T, p string) {
			b := binary.LittleEndian.AppendUint32(nil, 0xfffffff0)
			writeAt(t, p, b, last)
		}, n - 1},
		{"length-past-end", func(t *testing.T, p string) {
			b := binary.LittleEndian.AppendUint32(nil, uint32(end-last)) // plausible but beyond the file
			writeAt(t, p, b, last)
		}, n - 1},
		{"valid-frame-out-of-sequence", func(t *testing.T, p string) {
			appendBytes(t, p, appendFrame(nil, 7, 1, payload(7)))
		}, n},
		{"flipped-middle-frame", func(t *testing.T, p string) { flip(t, p, mid+frameHeaderSize) }, 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeRecords(t, dir, n, Options{})
			path := filepath.Join(dir, seg)
			before := fileSize(t, path)
			c.damage(t, path)
			damaged := fileSize(t, path)

			l, err := Open(dir, Options{})
			if err != nil {
				t.Fatalf("Open after damage: %v", err)
			}
			if l.Next() != c.keep {
				t.Fatalf("Next = %d after reopening, want %d", l.Next(), c.keep)
			}
			if want := damaged - frameOffset(int(c.keep)); l.Stats().Truncated != want {
				t.Fatalf("Truncated = %d, want %d (file %d → %d bytes)", l.Stats().Truncated, want, before, damaged)
			}
			checkConsecutive(t, readAll(t, l, 0), 0, c.keep)
			// The log continues where the intact records end.
			if s, err := l.Append(payload(c.keep)); err != nil || s != c.keep {
				t.Fatalf("Append after repair = %d, %v; want %d", s, err, c.keep)
			}
			l.Close()
			l = mustOpen(t, dir, Options{})
			if l.Stats().Truncated != 0 {
				t.Fatalf("second reopen cut %d bytes", l.Stats().Truncated)
			}
			checkConsecutive(t, readAll(t, l, 0), 0, c.keep+1)
		})
	}
}

func TestTornSegmentCreation(t *testing.T) {
	for _, size := range []int{0, 10, segHeaderSize - 1} {
		dir := t.TempDir()
		writeRecords(t, dir, 10, Options{})
		// A crash while creating segment 10: the file exists with part of
		// its header.
		torn := filepath.Join(dir, segName(10))
		if err := os.WriteFile(torn, appendSegHeader(nil, 10)[:size], 0o644); err != nil {
			t.Fatal(err)
		}
		l := mustOpen(t, dir, Options{})
		if l.Next() != 10 {
			t.Fatalf("size %d: Next = %d, want 10", size, l.Next())
		}
		if _, err := os.Stat(torn); !os.IsNotExist(err) {
			t.Fatalf("size %d: torn segment kept: %v", size, err)
		}
		if s, err := l.Append(payload(10)); err != nil || s != 10 {
			t.Fatalf("Append = %d, %v", s, err)
		}
		checkConsecutive(t, readAll(t, l, 0), 0, 11)
	}
}

func TestCorruptHeadersRefused(t *testing.T) {
	t.Run("last-segment", func(t *testing.T) {
		dir := t.TempDir()
		writeRecords(t, dir, 10, Options{})
		flip(t, filepath.Join(dir, segName(0)), 3)
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open with a bad header on a segment holding records: %v, want ErrCorrupt", err)
		}
	})
	t.Run("sealed-segment", func(t *testing.T) {
		dir := t.TempDir()
		writeRecords(t, dir, 600, Options{SegmentBytes: minSegmentBytes})
		flip(t, filepath.Join(dir, segName(0)), 20)
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open with a bad sealed header: %v, want ErrCorrupt", err)
		}
	})
	t.Run("base-mismatch", func(t *testing.T) {
		dir := t.TempDir()
		writeRecords(t, dir, 10, Options{})
		if err := os.Rename(filepath.Join(dir, segName(0)), filepath.Join(dir, segName(5))); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open with a renamed segment: %v, want ErrCorrupt", err)
		}
	})
}

// TestCorruptSealedRecord: damage inside a sealed segment is reported when
// read, never cut.
func TestCorruptSealedRecord(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: minSegmentBytes}
	writeRecords(t, dir, 600, opts)
	path := filepath.Join(dir, segName(0))
	size := fileSize(t, path)
	flip(t, path, frameOffset(30)+frameHeaderSize+2)
	l := mustOpen(t, dir, opts)
	if l.Next() != 600 {
		t.Fatalf("Next = %d", l.Next())
	}
	_, err := l.Read(0, 1000, func(Record) bool { return true })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Read over a damaged sealed record: %v, want ErrCorrupt", err)
	}
	// Reading the later segments still works.
	l.smu.RLock()
	second := l.segs[1].base
	l.smu.RUnlock()
	checkConsecutive(t, readAll(t, l, second), second, 600)
	if fileSize(t, path) != size {
		t.Fatal("sealed segment was modified")
	}
}

// TestCorruptSealedLive: a cursor following the log reads a sealed
// segment damaged after it was indexed and reports it.
func TestCorruptSealedLive(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, Options{SegmentBytes: minSegmentBytes})
	for i := uint64(0); i < 600; i++ {
		l.Append(payload(i))
	}
	flip(t, filepath.Join(dir, segName(0)), frameOffset(3)+frameHeaderSize)
	c := l.NewCursor(0)
	defer c.Close()
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		_, _, err = c.TryNext()
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("cursor over damaged record: %v", err)
	}
	if _, _, err2 := c.TryNext(); !errors.Is(err2, ErrCorrupt) {
		t.Fatalf("cursor error is not sticky: %v", err2)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	writeAt(t, path, b, fileSize(t, path))
}

func writeAt(t *testing.T, path string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// TestSealedSegmentShort: a sealed segment that ends before its successor
// begins (records lost in the middle) is reported, not looped over.
func TestSealedSegmentShort(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: minSegmentBytes}
	writeRecords(t, dir, 600, opts)
	truncate(t, filepath.Join(dir, segName(0)), frameOffset(10))
	l := mustOpen(t, dir, opts)
	var got []uint64
	_, err := l.Read(0, 1000, func(r Record) bool { got = append(got, r.Seq); return true })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Read across a gap: %v, want ErrCorrupt", err)
	}
	checkConsecutive(t, got, 0, 10)
}

// TestSeqAtAfterReopen positions by time in sealed segments found at Open
// (indexed lazily).
func TestSeqAtAfterReopen(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	clk := &manualClock{now: t0}
	opts := Options{SegmentBytes: minSegmentBytes, Now: clk.Now, MaxAge: -1}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 800; i++ {
		l.Append(payload(i))
		clk.Advance(time.Second)
	}
	l.Close()
	l = mustOpen(t, dir, opts)
	for _, want := range []uint64{0, 1, 150, 401, 799} {
		got, err := l.SeqAt(t0.Add(time.Duration(want) * time.Second))
		if err != nil || got != want {
			t.Errorf("SeqAt(t0+%ds) = %d, %v; want %d", want, got, err, want)
		}
	}
	if got, _ := l.SeqAt(t0.Add(time.Hour)); got != 800 {
		t.Errorf("SeqAt after the last record = %d, want Next 800", got)
	}
}
