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
