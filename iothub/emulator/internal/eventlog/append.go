package eventlog

import (
	"fmt"
	"os"
	"time"
)

func (l *Log) newBatch() *batch {
	b := &batch{buf: l.spare, done: make(chan struct{})}
	l.spare = nil
	return b
}

// admit waits until the pending batch has room for need more bytes (a call
// larger than the batch bound goes alone into an empty batch). It returns
// with l.amu held when the log accepts records; otherwise it releases the
// lock and returns the reason. Callers hold l.amu.
func (l *Log) admit(need int) error {
	for !l.closed && l.err == nil && l.cur.n > 0 && len(l.cur.buf)+need > maxBatchBytes {
		l.space.Wait()
	}
	if l.closed {
		l.amu.Unlock()
		return ErrClosed
	}
	if l.err != nil {
		err := l.err
		l.amu.Unlock()
		return err
	}
	return nil
}

// stamp returns the enqueued time for records appended now: the clock's
// time, but never before an earlier record's. Callers hold l.amu.
func (l *Log) stamp() int64 {
	t := l.now()
	if t < l.lastNanos {
		t = l.lastNanos
	}
	l.lastNanos = t
	return t
}

func (l *Log) checkSize(n int) error {
	if n > l.opts.MaxRecordBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, l.opts.MaxRecordBytes)
	}
	return nil
}

// Append adds records to the log and returns the sequence number of the
// first; the others follow it consecutively. It returns only once all of
// them are durable: written and fsync'd on disk (in memory: visible to
// readers). Concurrent calls share writes and syncs (group commit). The
// records are copied; the caller may reuse them when Append returns. All
// records of one call get the same enqueued time.
//
// If any record is longer than Options.MaxRecordBytes none is appended and
// the error wraps ErrTooLarge. After Close it returns ErrClosed; after a
// failed write, an error wrapping ErrFailed. A record whose Append failed
// with ErrFailed may or may not be found after the log is reopened.
func (l *Log) Append(recs ...[]byte) (first uint64, err error) {
	need := 0
	for _, r := range recs {
		if err := l.checkSize(len(r)); err != nil {
			return 0, err
		}
		need += frameSize(len(r))
	}
	l.amu.Lock()
	if err := l.admit(need); err != nil {
		return 0, err
	}
	first = l.nextSeq
	if len(recs) == 0 {
		l.amu.Unlock()
		return first, nil
	}
	t := l.stamp()
	b := l.cur
	for _, r := range recs {
		b.buf = appendFrame(b.buf, l.nextSeq, t, r)
		l.nextSeq++
	}
	b.n += uint64(len(recs))
	l.amu.Unlock()
	l.poke()
	<-b.done
	if b.err != nil {
		return 0, b.err
	}
	return first, nil
}

// AppendAsync adds one record to the log without waiting for it to become
// durable, and calls done with its sequence number once it is (or with the
// error that stopped it). Callbacks run one at a time, in the order of
// the sequence numbers, on a goroutine of the log; they must not block for
// long (queue a PUBACK, signal a channel) and must not call Append,
// AppendAsync or Close (the committer may be waiting for the callback
// goroutine to take the next batch).
// AppendAsync blocks only while the log's pending buffer is full.
//
// A record that is rejected before it gets a sequence number (ErrTooLarge,
// ErrClosed, ErrFailed) has done called before AppendAsync returns, on
// the caller's goroutine, with seq 0. The record is copied. A nil done
// is allowed (fire and forget).
func (l *Log) AppendAsync(rec []byte, done func(seq uint64, err error)) {
	if done == nil {
		done = func(uint64, error) {}
	}
	if err := l.checkSize(len(rec)); err != nil {
		done(0, err)
		return
	}
	l.amu.Lock()
	if err := l.admit(frameSize(len(rec))); err != nil {
		done(0, err)
		return
	}
	b := l.cur
	seq := l.nextSeq
	b.buf = appendFrame(b.buf, seq, l.stamp(), rec)
	l.nextSeq++
	b.n++
	b.cbs = append(b.cbs, callback{seq: seq, fn: done})
	l.amu.Unlock()
	l.poke()
}

// commitLoop is the committer goroutine: it takes whatever is pending,
// writes it with one write and one sync, publishes it, and repeats.
func (l *Log) commitLoop() {
	defer close(l.done)
	defer close(l.cbq)
	tick := time.NewTicker(l.opts.RetentionInterval)
	defer tick.Stop()
	for {
		l.amu.Lock()
		b, closed := l.cur, l.closed
		take := b.n > 0
		if take {
			l.cur = l.newBatch()
			l.space.Broadcast()
		}
		l.amu.Unlock()
		if take {
			l.commit(b)
			continue
		}
		if closed {
			return
		}
		select {
		case <-l.kick:
		case <-tick.C:
			l.trim()
		case ch := <-l.trimc:
			ch <- l.trim()
		}
	}
}

// commit makes one batch durable and visible.
func (l *Log) commit(b *batch) {
	l.amu.Lock()
	err := l.err
	l.amu.Unlock()
	if err == nil {
		err = l.write(b)
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrFailed, err)
			l.amu.Lock()
			l.err = err
			l.space.Broadcast()
			l.amu.Unlock()
			l.opts.Logger.Error("eventlog: write failed; the log accepts no more records", "err", err)
		}
	}
	b.err = err
	if err == nil {
		l.durable.Store(b.first + b.n)
		l.nRecords.Add(b.n)
		l.nCommits.Add(1)
	}
	close(b.done)
	if err == nil {
		l.wake()
	}
	if len(b.cbs) > 0 {
		l.cbq <- b
	}
	if cap(b.buf) <= 2*maxBatchBytes {
		l.spare = b.buf[:0]
	}
	b.buf = nil
	if err == nil {
		l.trimFast()
	}
}

// write appends the batch to the active segment (rolling to a new one
// first when it would overflow) and syncs it.
func (l *Log) write(b *batch) error {
	// The batch's first sequence number is that of its first frame.
	h, _ := parseFrameHeader(b.buf, MaxRecordLimit)
	b.first = h.seq
	s := l.active
	off := s.size.Load()
	if off > segHeaderSize && off+int64(len(b.buf)) > l.opts.SegmentBytes {
		if err := l.createSegment(b.first); err != nil {
			return err
		}
		s, off = l.active, segHeaderSize
	}
	if l.f != nil {
		if err := l.prefill(off + int64(len(b.buf))); err != nil {
			return err
		}
		if _, err := l.f.WriteAt(b.buf, off); err != nil {
			return err
		}
		if err := datasync(l.f); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if l.f == nil {
		s.mem = append(s.mem, b.buf...)
	}
	s.addFrames(b.buf, off)
	s.mu.Unlock()
	s.size.Store(off + int64(len(b.buf)))
	l.bytes.Add(int64(len(b.buf)))
	return nil
}

// callbackLoop runs AppendAsync callbacks in sequence order.
func (l *Log) callbackLoop() {
	defer close(l.cbDone)
	for b := range l.cbq {
		for _, c := range b.cbs {
			if b.err != nil {
				c.fn(0, b.err)
			} else {
				c.fn(c.seq, nil)
			}
		}
	}
}

// trimFast applies retention after a commit when it is cheap to tell
// there is something to remove.
func (l *Log) trimFast() {
	l.smu.RLock()
	n := len(l.segs)
	l.smu.RUnlock()
	if n > 1 {
		l.trim()
	}
}

// trim removes expired and surplus segments, oldest first. Only the
// committer goroutine (and Open, before it starts) calls it.
func (l *Log) trim() error {
	if l.opts.MaxAge > 0 {
		cutoff := l.now() - int64(l.opts.MaxAge)
		s := l.active
		s.mu.Lock()
		expired := s.count > 0 && s.lastNanos < cutoff
		s.mu.Unlock()
		if expired {
			// Every record of the active segment has expired: seal it so it
			// can go, and continue in an empty one.
			if err := l.createSegment(l.durable.Load()); err != nil {
				return err
			}
		}
	}
	for {
		l.smu.RLock()
		if len(l.segs) < 2 {
			l.smu.RUnlock()
			return nil
		}
		s0, s1 := l.segs[0], l.segs[1]
		l.smu.RUnlock()
		drop := l.opts.MaxBytes > 0 && l.bytes.Load() > l.opts.MaxBytes
		why := "size"
		if !drop && l.opts.MaxAge > 0 {
			cutoff := l.now() - int64(l.opts.MaxAge)
			s1.mu.Lock()
			end, ok := s1.firstNanos, s1.hasFirst // s0's records are all <= s1's first
			s1.mu.Unlock()
			if !ok {
				if err := s0.ensureIndexed(l.opts.MaxRecordBytes); err != nil {
					return err
				}
				s0.mu.Lock()
				end = s0.lastNanos
				s0.mu.Unlock()
			}
			drop, why = end < cutoff, "age"
		}
		if !drop {
			return nil
		}
		l.smu.Lock()
		l.segs = append(l.segs[:0:0], l.segs[1:]...)
		l.first.Store(l.segs[0].base)
		l.smu.Unlock()
		l.bytes.Add(-s0.size.Load())
		l.opts.Logger.Info("eventlog: segment removed by retention", "first_seq", s0.base, "next_first", s1.base, "reason", why)
		if s0.path != "" {
			if err := os.Remove(s0.path); err != nil && !os.IsNotExist(err) {
				return err
			}
			if err := syncDir(l.dir); err != nil {
				return err
			}
		}
	}
}

// zeros is what prefill writes ahead of the data (in BSS: untouched pages
// cost nothing).
var zeros [1 << 20]byte

// prefill makes sure the active file has been written (with zeros) at
// least up to end, extending it a chunk at a time. Overwriting blocks that
// already exist lets each commit's fdatasync flush data alone instead of
// also a new file size and block allocation: about a third faster here.
// The zeros after the last record never verify as a frame, so recovery
// cuts them like any torn tail; sealing a segment cuts them first.
func (l *Log) prefill(end int64) error {
	if end <= l.filled {
		return nil
	}
	chunk := min(int64(preallocBytes), l.opts.SegmentBytes)
	target := l.filled + chunk
	if target < end {
		target = end
	}
	for l.filled < target {
		n := min(int64(len(zeros)), target-l.filled)
		if _, err := l.f.WriteAt(zeros[:n], l.filled); err != nil {
			return err
		}
		l.filled += n
	}
	return nil
}
