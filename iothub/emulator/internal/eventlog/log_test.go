package eventlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// stores runs f against a memory log and a disk log.
func stores(t *testing.T, f func(t *testing.T, dir string)) {
	t.Run("memory", func(t *testing.T) { f(t, "") })
	t.Run("disk", func(t *testing.T) { f(t, t.TempDir()) })
}

func mustOpen(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// payload is the test record for sequence number seq: its size varies so
// frames straddle read windows and index entries.
func payload(seq uint64) []byte {
	return fmt.Appendf(nil, "record %d %s", seq, bytes.Repeat([]byte{'x'}, int(seq*37%700)))
}

// readAll reads every record from seq from and checks each against
// payload(seq).
func readAll(t *testing.T, l *Log, from uint64) (seqs []uint64) {
	t.Helper()
	_, err := l.Read(from, 1<<30, func(r Record) bool {
		if want := payload(r.Seq); !bytes.Equal(r.Data, want) {
			t.Fatalf("record %d: got %q, want %q", r.Seq, r.Data, want)
		}
		seqs = append(seqs, r.Seq)
		return true
	})
	if err != nil {
		t.Fatalf("Read(%d): %v", from, err)
	}
	return seqs
}

func checkConsecutive(t *testing.T, seqs []uint64, from, to uint64) {
	t.Helper()
	if uint64(len(seqs)) != to-from {
		t.Fatalf("read %d records, want %d (%d..%d)", len(seqs), to-from, from, to)
	}
	for i, s := range seqs {
		if s != from+uint64(i) {
			t.Fatalf("record %d has sequence number %d, want %d", i, s, from+uint64(i))
		}
	}
}

// manualClock is a settable clock for retention and SeqAt tests.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestAppendReadAcrossSegments(t *testing.T) {
	stores(t, func(t *testing.T, dir string) {
		l := mustOpen(t, dir, Options{SegmentBytes: minSegmentBytes})
		var seq uint64
		for seq < 2000 {
			// Mix single appends and multi-record appends.
			n := uint64(1 + seq%5)
			recs := make([][]byte, n)
			for i := range recs {
				recs[i] = payload(seq + uint64(i))
			}
			first, err := l.Append(recs...)
			if err != nil {
				t.Fatal(err)
			}
			if first != seq {
				t.Fatalf("Append returned %d, want %d", first, seq)
			}
			seq += n
		}
		if st := l.Stats(); st.Segments < 5 {
			t.Fatalf("only %d segments for %d bytes; want several", st.Segments, st.Bytes)
		}
		checkConsecutive(t, readAll(t, l, 0), 0, seq)
		// From every position, including index-entry neighbours.
		for _, from := range []uint64{1, 77, 500, 1999, seq - 1} {
			checkConsecutive(t, readAll(t, l, from), from, seq)
		}
		if got := readAll(t, l, seq); len(got) != 0 {
			t.Fatalf("read %d records from Next()", len(got))
		}
		if l.First() != 0 || l.Next() != seq {
			t.Fatalf("First, Next = %d, %d; want 0, %d", l.First(), l.Next(), seq)
		}
		if last, ok := l.Last(); !ok || last != seq-1 {
			t.Fatalf("Last = %d, %v", last, ok)
		}
		// Times are non-decreasing.
		var prev time.Time
		l.Read(0, 1<<30, func(r Record) bool {
			if r.Time.Before(prev) {
				t.Fatalf("record %d enqueued at %v, before %v", r.Seq, r.Time, prev)
			}
			prev = r.Time
			return true
		})
	})
}

func TestReadStopsAndContinues(t *testing.T) {
	stores(t, func(t *testing.T, dir string) {
		l := mustOpen(t, dir, Options{})
		for i := uint64(0); i < 10; i++ {
			l.Append(payload(i))
		}
		var got []uint64
		next, err := l.Read(0, 3, func(r Record) bool { got = append(got, r.Seq); return true })
		if err != nil || next != 3 || len(got) != 3 {
			t.Fatalf("Read max 3: next %d, %d records, %v", next, len(got), err)
		}
		next, err = l.Read(next, 100, func(r Record) bool { got = append(got, r.Seq); return r.Seq < 5 })
		if err != nil || next != 6 {
			t.Fatalf("Read stopping at 5: next %d, %v", next, err)
		}
		checkConsecutive(t, got, 0, 6)
	})
}

func TestReopenContinues(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: minSegmentBytes}
	var seq uint64
	for round := 0; round < 4; round++ {
		l, err := Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if l.Next() != seq {
			t.Fatalf("round %d: reopened at Next %d, want %d", round, l.Next(), seq)
		}
		if st := l.Stats(); st.Truncated != 0 {
			t.Fatalf("round %d: clean reopen cut %d bytes", round, st.Truncated)
		}
		for i := 0; i < 300; i++ {
			if _, err := l.Append(payload(seq)); err != nil {
				t.Fatal(err)
			}
			seq++
		}
		checkConsecutive(t, readAll(t, l, 0), 0, seq)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A fresh reopen indexes sealed segments lazily: reading from the
	// middle works.
	l := mustOpen(t, dir, opts)
	checkConsecutive(t, readAll(t, l, 650), 650, seq)
}

func TestAppendAsyncOrder(t *testing.T) {
	stores(t, func(t *testing.T, dir string) {
		l := mustOpen(t, dir, Options{})
		const n = 5000
		var mu sync.Mutex
		var got []uint64
		done := make(chan struct{})
		for i := uint64(0); i < n; i++ {
			l.AppendAsync(payload(i), func(seq uint64, err error) {
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				got = append(got, seq)
				if len(got) == n {
					close(done)
				}
				mu.Unlock()
			})
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("callbacks did not all run")
		}
		checkConsecutive(t, got, 0, n)
		checkConsecutive(t, readAll(t, l, 0), 0, n)
		if st := l.Stats(); st.Commits >= n {
			t.Errorf("%d commits for %d async records: no grouping", st.Commits, n)
		}
	})
}

func TestTooLarge(t *testing.T) {
	stores(t, func(t *testing.T, dir string) {
		l := mustOpen(t, dir, Options{MaxRecordBytes: 1000})
		if _, err := l.Append(make([]byte, 1000)); err != nil {
			t.Fatalf("record at the limit: %v", err)
		}
		_, err := l.Append(make([]byte, 10), make([]byte, 1001))
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Append over the limit: %v, want ErrTooLarge", err)
		}
		var async error
		l.AppendAsync(make([]byte, 5000), func(_ uint64, err error) { async = err })
		if !errors.Is(async, ErrTooLarge) {
			t.Fatalf("AppendAsync over the limit: %v, want ErrTooLarge (synchronously)", async)
		}
		if l.Next() != 1 {
			t.Fatalf("Next = %d after rejected appends, want 1", l.Next())
		}
	})
	if _, err := Open("", Options{MaxRecordBytes: MaxRecordLimit + 1}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Open with MaxRecordBytes over the limit: %v", err)
	}
}

func TestClosed(t *testing.T) {
	stores(t, func(t *testing.T, dir string) {
		l, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		l.Append(payload(0))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		waitErr := make(chan error, 1)
		go func() { waitErr <- l.Wait(ctx, 5) }()
		c := l.NewCursor(1)
		nextErr := make(chan error, 1)
		go func() { _, err := c.Next(ctx); nextErr <- err }()
		time.Sleep(10 * time.Millisecond) // let both block (they also pass if they have not yet)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for name, ch := range map[string]chan error{"Wait": waitErr, "Cursor.Next": nextErr} {
			if err := <-ch; !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close: %v, want ErrClosed", name, err)
			}
		}
		if _, err := l.Append(payload(1)); !errors.Is(err, ErrClosed) {
			t.Errorf("Append after Close: %v", err)
		}
		var aerr error
		l.AppendAsync(payload(1), func(_ uint64, err error) { aerr = err })
		if !errors.Is(aerr, ErrClosed) {
			t.Errorf("AppendAsync after Close: %v", aerr)
		}
		if _, err := l.Read(0, 10, func(Record) bool { return true }); !errors.Is(err, ErrClosed) {
			t.Errorf("Read after Close: %v", err)
		}
		if err := l.Trim(); !errors.Is(err, ErrClosed) {
			t.Errorf("Trim after Close: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func TestCloseCommitsPending(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	var acked sync.WaitGroup
	acked.Add(n)
	for i := uint64(0); i < n; i++ {
		l.AppendAsync(payload(i), func(_ uint64, err error) {
			if err != nil {
				t.Error(err)
			}
			acked.Done()
		})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	acked.Wait() // Close returned: every callback has run
	l = mustOpen(t, dir, Options{})
	checkConsecutive(t, readAll(t, l, 0), 0, n)
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, dir, Options{})
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open of one directory: %v, want ErrLocked", err)
	}
}

func TestWait(t *testing.T) {
	stores(t, func(t *testing.T, dir string) {
		l := mustOpen(t, dir, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := l.Wait(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait on an empty log: %v, want DeadlineExceeded", err)
		}
		ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel2()
		errc := make(chan error, 1)
		go func() { errc <- l.Wait(ctx2, 2) }()
		for i := uint64(0); i < 3; i++ {
			l.Append(payload(i))
		}
		if err := <-errc; err != nil {
			t.Fatalf("Wait for 2: %v", err)
		}
		if err := l.Wait(ctx2, 1); err != nil {
			t.Fatalf("Wait for an existing record: %v", err)
		}
	})
}

func TestSeqAt(t *testing.T) {
	stores(t, func(t *testing.T, dir string) {
		t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		clk := &manualClock{now: t0}
		l := mustOpen(t, dir, Options{SegmentBytes: minSegmentBytes, Now: clk.Now, MaxAge: -1})
		if got, err := l.SeqAt(t0); err != nil || got != 0 {
			t.Fatalf("SeqAt on an empty log = %d, %v", got, err)
		}
		// Record i is enqueued at t0 + (i/2) s: pairs share a time.
		for i := uint64(0); i < 1000; i++ {
			if i > 0 && i%2 == 0 {
				clk.Advance(time.Second)
			}
			l.Append(payload(i))
		}
		cases := []struct {
			at   time.Time
			want uint64
		}{
			{t0.Add(-time.Hour), 0},
			{t0, 0},
			{t0.Add(time.Millisecond), 2},
			{t0.Add(time.Second), 2},
			{t0.Add(250 * time.Second), 500},
			{t0.Add(250*time.Second + 1), 502},
			{t0.Add(499 * time.Second), 998},
			{t0.Add(500 * time.Second), 1000},
		}
		for _, c := range cases {
			got, err := l.SeqAt(c.at)
			if err != nil || got != c.want {
				t.Errorf("SeqAt(t0+%v) = %d, %v; want %d", c.at.Sub(t0), got, err, c.want)
			}
		}
		if st := l.Stats(); st.Segments < 3 {
			t.Fatalf("test needs several segments, has %d", st.Segments)
		}
		// A clock going back does not make times go back.
		clk.Advance(-time.Hour)
		l.Append(payload(1000))
		l.Read(1000, 1, func(r Record) bool {
			if !r.Time.Equal(t0.Add(499 * time.Second)) {
				t.Errorf("record after the clock went back enqueued at %v", r.Time)
			}
			return true
		})
	})
}

func TestRetentionAge(t *testing.T) {
	stores(t, func(t *testing.T, dir string) {
		clk := &manualClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		l := mustOpen(t, dir, Options{SegmentBytes: minSegmentBytes, Now: clk.Now, MaxAge: time.Hour, MaxBytes: -1})
		var seq uint64
		for ; seq < 600; seq++ {
			l.Append(payload(seq))
		}
		clk.Advance(30 * time.Minute)
		for ; seq < 1200; seq++ {
			l.Append(payload(seq))
		}
		segs := l.Stats().Segments
		// The first 600 are 61 minutes old, the rest 31: only segments
		// wholly of the first group go.
		clk.Advance(31 * time.Minute)
		if err := l.Trim(); err != nil {
			t.Fatal(err)
		}
		first := l.First()
		if first == 0 || first > 600 {
			t.Fatalf("First = %d after the first group expired; want in (0, 600]", first)
		}
		if l.Stats().Segments >= segs {
			t.Fatalf("no segment removed (%d)", segs)
		}
		checkConsecutive(t, readAll(t, l, first), first, seq)
		// A reader positioned before First starts at First.
		checkConsecutive(t, readAll(t, l, 0), first, seq)
		if dir != "" {
			if _, err := os.Stat(filepath.Join(dir, segName(0))); !os.IsNotExist(err) {
				t.Fatalf("expired segment file still there: %v", err)
			}
		}
		// Everything expires: an idle log empties, numbering continues.
		clk.Advance(time.Hour)
		if err := l.Trim(); err != nil {
			t.Fatal(err)
		}
		if l.First() != seq || l.Next() != seq {
			t.Fatalf("after all expired First, Next = %d, %d; want %d, %d", l.First(), l.Next(), seq, seq)
		}
		if _, ok := l.Last(); ok {
			t.Fatal("Last reports a record in an empty log")
		}
		if got, _ := l.Append(payload(seq)); got != seq {
			t.Fatalf("Append after emptying = %d, want %d", got, seq)
		}
		checkConsecutive(t, readAll(t, l, 0), seq, seq+1)
	})
}

func TestRetentionAgeReopen(t *testing.T) {
	dir := t.TempDir()
	clk := &manualClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	opts := Options{SegmentBytes: minSegmentBytes, Now: clk.Now, MaxAge: time.Hour}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 500; i++ {
		l.Append(payload(i))
	}
	l.Close()
	clk.Advance(2 * time.Hour)
	l = mustOpen(t, dir, opts) // Open applies retention
	if l.First() != 500 || l.Next() != 500 {
		t.Fatalf("reopened after expiry: First %d, Next %d; want 500, 500", l.First(), l.Next())
	}
	l.Close()
	l = mustOpen(t, dir, opts)
	if l.Next() != 500 {
		t.Fatalf("reopened empty log: Next %d, want 500", l.Next())
	}
}

func TestRetentionSize(t *testing.T) {
	stores(t, func(t *testing.T, dir string) {
		const maxBytes = 1 << 20
		l := mustOpen(t, dir, Options{MaxBytes: maxBytes, MaxAge: -1})
		seg := l.opts.SegmentBytes
		if seg != maxBytes/4 {
			t.Fatalf("SegmentBytes = %d, want MaxBytes/4", seg)
		}
		var seq uint64
		for seq < 20000 {
			recs := make([][]byte, 20)
			for i := range recs {
				recs[i] = payload(seq + uint64(i))
			}
			if _, err := l.Append(recs...); err != nil {
				t.Fatal(err)
			}
			seq += uint64(len(recs))
			if b := l.Stats().Bytes; b > maxBytes+seg {
				t.Fatalf("after %d records the log holds %d bytes, over MaxBytes+SegmentBytes", seq, b)
			}
		}
		st := l.Stats()
		if st.First == 0 || st.Bytes > maxBytes {
			t.Fatalf("stats %+v: nothing removed or over the cap", st)
		}
		checkConsecutive(t, readAll(t, l, 0), st.First, seq)
		if dir != "" {
			l.Close() // cuts the zeros preallocated after the active segment's data
			ents, _ := os.ReadDir(dir)
			var total int64
			for _, e := range ents {
				if _, ok := parseSegName(e.Name()); ok {
					fi, _ := e.Info()
					total += fi.Size()
				}
			}
			if total != st.Bytes {
				t.Fatalf("segment files hold %d bytes, Stats says %d", total, st.Bytes)
			}
		}
	})
}

// TestConcurrent runs appenders, live cursors and retention at once (run
// with -race).
func TestConcurrent(t *testing.T) {
	stores(t, func(t *testing.T, dir string) {
		l := mustOpen(t, dir, Options{SegmentBytes: minSegmentBytes, MaxAge: -1, MaxBytes: -1})
		const appenders, per, readers = 8, 400, 3
		total := uint64(appenders * per)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()

		var rwg sync.WaitGroup
		readErr := make(chan error, readers)
		for r := 0; r < readers; r++ {
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				c := l.NewCursor(0)
				defer c.Close()
				last := map[string]int{}
				for want := uint64(0); want < total; want++ {
					rec, err := c.Next(ctx)
					if err != nil {
						readErr <- err
						return
					}
					if rec.Seq != want {
						readErr <- fmt.Errorf("cursor got %d, want %d", rec.Seq, want)
						return
					}
					var g string
					var i int
					if _, err := fmt.Sscanf(string(rec.Data), "%s %d", &g, &i); err != nil {
						readErr <- fmt.Errorf("record %d: %q: %v", rec.Seq, rec.Data, err)
						return
					}
					if prev, ok := last[g]; ok && i != prev+1 {
						readErr <- fmt.Errorf("appender %s: record %d after %d", g, i, prev)
						return
					}
					last[g] = i
				}
			}()
		}
		var awg sync.WaitGroup
		seqs := make([][]uint64, appenders)
		for a := 0; a < appenders; a++ {
			awg.Add(1)
			go func() {
				defer awg.Done()
				for i := 0; i < per; i++ {
					rec := fmt.Appendf(nil, "g%d %d %s", a, i, bytes.Repeat([]byte("y"), i%300))
					s, err := l.Append(rec)
					if err != nil {
						t.Error(err)
						return
					}
					seqs[a] = append(seqs[a], s)
				}
			}()
		}
		awg.Wait()
		rwg.Wait()
		close(readErr)
		for err := range readErr {
			t.Error(err)
		}
		// Each returned sequence number holds that appender's record.
		for a, ss := range seqs {
			for i, s := range ss {
				want := fmt.Appendf(nil, "g%d %d %s", a, i, bytes.Repeat([]byte("y"), i%300))
				l.Read(s, 1, func(r Record) bool {
					if r.Seq != s || !bytes.Equal(r.Data, want) {
						t.Fatalf("seq %d holds %q, want %q", s, r.Data, want)
					}
					return true
				})
			}
		}
		if st := l.Stats(); st.Records != total || st.Segments < 2 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestCursorFallsBehindRetention: a cursor whose records are removed
// under it continues at First.
func TestCursorFallsBehindRetention(t *testing.T) {
	stores(t, func(t *testing.T, dir string) {
		l := mustOpen(t, dir, Options{MaxBytes: 256 << 10, MaxAge: -1})
		l.Append(payload(0))
		c := l.NewCursor(0)
		defer c.Close()
		if r, ok, err := c.TryNext(); !ok || err != nil || r.Seq != 0 {
			t.Fatalf("first TryNext: %v %v %v", r.Seq, ok, err)
		}
		var seq uint64 = 1
		for ; l.First() < 100; seq++ {
			l.Append(payload(seq))
		}
		r, ok, err := c.TryNext()
		if !ok || err != nil || r.Seq != l.First() {
			t.Fatalf("TryNext after retention: seq %d ok %v err %v; want First %d", r.Seq, ok, err, l.First())
		}
		if !bytes.Equal(r.Data, payload(r.Seq)) {
			t.Fatalf("record %d: %q", r.Seq, r.Data)
		}
	})
}

// TestConcurrentRetention: live cursors keep reading correct records in
// order while size retention removes segments under them (run with -race).
func TestConcurrentRetention(t *testing.T) {
	stores(t, func(t *testing.T, dir string) {
		l := mustOpen(t, dir, Options{MaxBytes: 256 << 10, MaxAge: -1})
		const total = 6000
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		errc := make(chan error, 2)
		for r := 0; r < 2; r++ {
			go func() {
				c := l.NewCursor(0)
				defer c.Close()
				prev := int64(-1)
				for {
					rec, err := c.Next(ctx)
					if err != nil {
						errc <- err
						return
					}
					if int64(rec.Seq) <= prev {
						errc <- fmt.Errorf("record %d after %d", rec.Seq, prev)
						return
					}
					if !bytes.Equal(rec.Data, payload(rec.Seq)) {
						errc <- fmt.Errorf("record %d: %q", rec.Seq, rec.Data)
						return
					}
					prev = int64(rec.Seq)
					if rec.Seq == total-1 {
						errc <- nil
						return
					}
					if rec.Seq%97 == 0 {
						time.Sleep(time.Millisecond) // fall behind now and then
					}
				}
			}()
		}
		for seq := uint64(0); seq < total; seq += 10 {
			recs := make([][]byte, 10)
			for i := range recs {
				recs[i] = payload(seq + uint64(i))
			}
			if _, err := l.Append(recs...); err != nil {
				t.Fatal(err)
			}
		}
		for r := 0; r < 2; r++ {
			if err := <-errc; err != nil {
				t.Error(err)
			}
		}
		if l.First() == 0 {
			t.Fatal("retention removed nothing; the test did not exercise it")
		}
	})
}
