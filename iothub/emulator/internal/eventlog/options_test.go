package eventlog

import (
	"errors"
	"testing"
	"time"
)

func TestOptionsDefaults(t *testing.T) {
	cases := []struct {
		name          string
		in            Options
		memory        bool
		age           time.Duration
		bytes, seg    int64
		record        int
		retentionTick time.Duration
	}{
		{"disk-zero", Options{}, false, DefaultMaxAge, DefaultMaxBytes, DefaultSegmentBytes, DefaultMaxRecordBytes, time.Minute},
		{"memory-zero", Options{}, true, DefaultMaxAge, DefaultMemMaxBytes, DefaultMemSegment, DefaultMaxRecordBytes, time.Minute},
		{"segment-capped-by-bytes", Options{MaxBytes: 8 << 20}, false, DefaultMaxAge, 8 << 20, 2 << 20, DefaultMaxRecordBytes, time.Minute},
		{"segment-floor", Options{SegmentBytes: 1}, false, DefaultMaxAge, DefaultMaxBytes, minSegmentBytes, DefaultMaxRecordBytes, time.Minute},
		{"unlimited", Options{MaxAge: -1, MaxBytes: -1, SegmentBytes: 1 << 30}, false, -1, -1, 1 << 30, DefaultMaxRecordBytes, time.Minute},
		{"short-age", Options{MaxAge: 16 * time.Second}, false, 16 * time.Second, DefaultMaxBytes, DefaultSegmentBytes, DefaultMaxRecordBytes, time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := c.in.withDefaults(c.memory)
			if err != nil {
				t.Fatal(err)
			}
			if o.MaxAge != c.age || o.MaxBytes != c.bytes || o.SegmentBytes != c.seg || o.MaxRecordBytes != c.record || o.RetentionInterval != c.retentionTick {
				t.Fatalf("got age %v bytes %d seg %d record %d tick %v", o.MaxAge, o.MaxBytes, o.SegmentBytes, o.MaxRecordBytes, o.RetentionInterval)
			}
			if o.Now == nil || o.Logger == nil {
				t.Fatal("Now or Logger left nil")
			}
		})
	}
	for _, bad := range []int{-1, MaxRecordLimit + 1} {
		if _, err := (Options{MaxRecordBytes: bad}).withDefaults(false); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("MaxRecordBytes %d: %v, want ErrInvalidOptions", bad, err)
		}
	}
}

// TestWriteFailureIsSticky: once a write fails the log refuses records
// with ErrFailed, and reopening keeps everything acknowledged before.
func TestWriteFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 10; i++ {
		if _, err := l.Append(payload(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.f.Close() // the next write fails with "file already closed"
	if _, err := l.Append(payload(10)); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append on a failed file: %v, want ErrFailed", err)
	}
	if _, err := l.Append(payload(10)); !errors.Is(err, ErrFailed) {
		t.Fatalf("second Append: %v, want ErrFailed", err)
	}
	var aerr error
	l.AppendAsync(payload(10), func(_ uint64, err error) { aerr = err })
	if !errors.Is(aerr, ErrFailed) {
		t.Fatalf("AppendAsync: %v, want ErrFailed", aerr)
	}
	if l.Next() != 10 {
		t.Fatalf("Next = %d after failures, want 10", l.Next())
	}
	checkConsecutive(t, readAll(t, l, 0), 0, 10) // reading still works
	l.Close()
	l = mustOpen(t, dir, Options{})
	checkConsecutive(t, readAll(t, l, 0), 0, 10)
	if s, err := l.Append(payload(10)); err != nil || s != 10 {
		t.Fatalf("Append after reopening = %d, %v", s, err)
	}
}
