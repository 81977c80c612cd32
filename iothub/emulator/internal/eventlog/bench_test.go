package eventlog

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppend measures durable appends of 300-byte records with 1 and
// 64 concurrent synchronous appenders (each waits for its fsync before the
// next record, as a QoS 1 publisher waits for its PUBACK), on disk and in
// memory, and with one pipelining AppendAsync caller.
func BenchmarkAppend(b *testing.B) {
	rec := make([]byte, 300)
	for i := range rec {
		rec[i] = byte(i)
	}
	for _, store := range []string{"disk", "memory"} {
		for _, appenders := range []int{1, 64} {
			b.Run(fmt.Sprintf("store=%s/appenders=%d", store, appenders), func(b *testing.B) {
				l := benchLog(b, store)
				b.SetBytes(int64(len(rec)))
				b.ReportAllocs()
				start := l.Stats()
				t0 := time.Now()
				b.ResetTimer()
				var wg sync.WaitGroup
				for g := 0; g < appenders; g++ {
					n := b.N / appenders
					if g < b.N%appenders {
						n++
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < n; i++ {
							if _, err := l.Append(rec); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				reportAppend(b, l, start, time.Since(t0))
			})
		}
		b.Run(fmt.Sprintf("store=%s/async", store), func(b *testing.B) {
			l := benchLog(b, store)
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			start := l.Stats()
			t0 := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			wg.Add(b.N)
			for i := 0; i < b.N; i++ {
				l.AppendAsync(rec, func(_ uint64, err error) {
					if err != nil {
						b.Error(err)
					}
					wg.Done()
				})
			}
			wg.Wait()
			b.StopTimer()
			reportAppend(b, l, start, time.Since(t0))
		})
	}
}

func benchLog(b *testing.B, store string) *Log {
	dir := ""
	if store == "disk" {
		dir = b.TempDir()
	}
	l, err := Open(dir, Options{MaxBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

func reportAppend(b *testing.B, l *Log, start Stats, d time.Duration) {
	end := l.Stats()
	recs := end.Records - start.Records
	if recs != uint64(b.N) {
		b.Fatalf("committed %d records, want %d", recs, b.N)
	}
	b.ReportMetric(float64(recs)/d.Seconds(), "records/s")
	unit := "fsyncs/record"
	if l.dir == "" {
		unit = "commits/record"
	}
	b.ReportMetric(float64(end.Commits-start.Commits)/float64(recs), unit)
}

// BenchmarkRead measures a cursor reading durable 300-byte records.
func BenchmarkRead(b *testing.B) {
	for _, store := range []string{"disk", "memory"} {
		b.Run("store="+store, func(b *testing.B) {
			l := benchLog(b, store)
			const n = 100000
			fillLog(b, l, n, 300)
			b.SetBytes(300)
			b.ReportAllocs()
			b.ResetTimer()
			c := l.NewCursor(0)
			defer c.Close()
			for i := 0; i < b.N; i++ {
				if _, ok, err := c.TryNext(); err != nil || !ok {
					if err != nil {
						b.Fatal(err)
					}
					c.Close()
					c = l.NewCursor(0)
				}
			}
		})
	}
}

// BenchmarkOpen measures reopening a log whose newest segment is full
// (the worst case: Open scans it record by record) behind three sealed
// ones: the emulator's warm start-up cost for telemetry.
func BenchmarkOpen(b *testing.B) {
	for _, seg := range []int64{4 << 20, DefaultSegmentBytes} {
		b.Run(fmt.Sprintf("segment=%dMiB", seg>>20), func(b *testing.B) {
			dir := b.TempDir()
			opts := Options{SegmentBytes: seg, MaxBytes: -1}
			l, err := Open(dir, opts)
			if err != nil {
				b.Fatal(err)
			}
			perSeg := int(seg / frameSizeOf300)
			fillLog(b, l, 4*perSeg-perSeg/20, 300)
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				l, err := Open(dir, opts)
				if err != nil {
					b.Fatal(err)
				}
				l.Close()
			}
		})
	}
}

const frameSizeOf300 = frameHeaderSize + 300

func fillLog(b *testing.B, l *Log, n, size int) {
	b.Helper()
	rec := make([]byte, size)
	recs := make([][]byte, 0, 1000)
	for n > 0 {
		recs = recs[:0]
		for i := 0; i < 1000 && n > 0; i++ {
			recs = append(recs, rec)
			n--
		}
		if _, err := l.Append(recs...); err != nil {
			b.Fatal(err)
		}
	}
}
