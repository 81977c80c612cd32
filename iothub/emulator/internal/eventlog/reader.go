package eventlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"time"
)

// Record is one record read from the log.
type Record struct {
	Seq  uint64    // sequence number
	Time time.Time // enqueued time, given by the log when the record was appended
	// Data is the record as appended. It aliases a buffer of the reader:
	// valid until the reader's next call (Cursor.Next, the next callback of
	// Read); copy it to keep it.
	Data []byte
}

// Cursor reads records in sequence order from a position, reusing one
// buffer. It sees only durable records. A cursor positioned before First()
// (at the start, or because retention removed records it had not read yet)
// continues at First(); the jump shows as a gap in Record.Seq. A Cursor is
// not safe for concurrent use; any number of cursors may read one Log.
type Cursor struct {
	l    *Log
	next uint64 // sequence number of the next record to return
	seg  *segment
	off  int64    // offset in seg from which to scan for next
	f    *os.File // seg's file, opened by this cursor
	buf  []byte   // read window: bytes [bufOff, bufOff+len(buf)) of seg
	bOff int64
	err  error // sticky
}

// NewCursor returns a cursor whose first record is the one with sequence
// number from, or the oldest retained one if from is before First(). Use
// First() for the earliest position, Next() for the latest (only records
// appended from now on) and SeqAt for a time.
func (l *Log) NewCursor(from uint64) *Cursor {
	return &Cursor{l: l, next: from}
}

// Seq returns the sequence number of the record the cursor returns next
// (or would, if it exists yet).
func (c *Cursor) Seq() uint64 { return c.next }

// Close releases the cursor's file. The cursor must not be used after.
func (c *Cursor) Close() error {
	c.drop()
	c.err = ErrClosed
	return nil
}

func (c *Cursor) drop() {
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
	c.seg, c.buf = nil, c.buf[:0]
}

// Next returns the next record, waiting until it is durable, ctx ends
// (ctx.Err()) or the log closes (ErrClosed). Record.Data is valid until
// the next call.
func (c *Cursor) Next(ctx context.Context) (Record, error) {
	for {
		ch := c.l.waitCh()
		r, ok, err := c.TryNext()
		if ok || err != nil {
			return r, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Record{}, ctx.Err()
		case <-c.l.closing:
			return Record{}, ErrClosed
		}
	}
}

// TryNext returns the next record if it is durable now; ok is false when
// the cursor has caught up. A record that fails its checks gives an error
// wrapping ErrCorrupt, and so does every later call.
func (c *Cursor) TryNext() (r Record, ok bool, err error) {
	if c.err != nil {
		return r, false, c.err
	}
	if c.l.isDone.Load() {
		return r, false, ErrClosed
	}
	for {
		durable := c.l.durable.Load()
		if first := c.l.first.Load(); c.next < first {
			c.next = first
			c.drop()
		}
		if c.next >= durable {
			return r, false, nil
		}
		if c.seg == nil {
			if err := c.position(); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed by retention under us: First() moved
				}
				c.err = err
				return r, false, err
			}
		}
		sealed := c.seg.sealed.Load()
		end := c.seg.size.Load()
		if c.off >= end {
			if !sealed {
				return r, false, nil
			}
			done := c.seg
			c.drop() // on to the segment holding c.next
			if c.l.segFor(c.next) == done && c.next >= c.l.first.Load() {
				// The segment ended before the record its successor
				// expects: records are missing.
				c.err = fmt.Errorf("%w: %s ends before record %d", ErrCorrupt, segName(done.base), c.next)
				return r, false, c.err
			}
			continue
		}
		h, payload, n, err := c.frameAt(end)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				c.drop()
				continue
			}
			c.err = err
			return r, false, err
		}
		switch {
		case h.seq < c.next: // scanning forward from an index entry
			c.off += int64(n)
			continue
		case h.seq > c.next:
			c.err = fmt.Errorf("%w: %s: record %d found where %d belongs", ErrCorrupt, c.segLabel(), h.seq, c.next)
			return r, false, c.err
		}
		c.off += int64(n)
		c.next++
		return Record{Seq: h.seq, Time: time.Unix(0, h.nanos), Data: payload}, true, nil
	}
}

func (c *Cursor) segLabel() string {
	if c.seg.path == "" {
		return segName(c.seg.base)
	}
	return c.seg.path
}

// position finds the segment holding c.next and the index entry to scan
// from.
func (c *Cursor) position() error {
	s := c.l.segFor(c.next)
	if s.path != "" && !s.indexedNow() {
		if err := s.ensureIndexed(c.l.opts.MaxRecordBytes); err != nil {
			return err
		}
	}
	s.mu.Lock()
	_, off := s.lookup(c.next)
	s.mu.Unlock()
	if s.path != "" {
		f, err := os.Open(s.path)
		if err != nil {
			return err
		}
		c.f = f
	}
	c.seg, c.off, c.buf, c.bOff = s, off, c.buf[:0], off
	return nil
}

func (s *segment) indexedNow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.indexed
}

// segFor returns the segment holding seq (the oldest if seq precedes it).
func (l *Log) segFor(seq uint64) *segment {
	l.smu.RLock()
	defer l.smu.RUnlock()
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > seq })
	if i == 0 {
		return l.segs[0]
	}
	return l.segs[i-1]
}

// frameAt decodes the frame at c.off, which lies before end.
func (c *Cursor) frameAt(end int64) (frameHeader, []byte, int, error) {
	hdr, err := c.window(frameHeaderSize, end)
	if err != nil {
		return frameHeader{}, nil, 0, err
	}
	maxRec := c.l.opts.MaxRecordBytes
	h, ok := parseFrameHeader(hdr, maxRec)
	if !ok || c.off+int64(frameSize(h.n)) > end {
		return h, nil, 0, fmt.Errorf("%w: %s: bad record length at offset %d", ErrCorrupt, c.segLabel(), c.off)
	}
	frame, err := c.window(frameSize(h.n), end)
	if err != nil {
		return h, nil, 0, err
	}
	h, payload, n, ok := decodeFrame(frame, maxRec)
	if !ok {
		return h, nil, 0, fmt.Errorf("%w: %s: checksum mismatch at offset %d", ErrCorrupt, c.segLabel(), c.off)
	}
	return h, payload, n, nil
}

// window returns n bytes of the segment at c.off (n is a verified size at
// most a frame of MaxRecordBytes). In memory it is a view of the segment;
// on disk, of the cursor's read buffer, refilled with one ReadAt.
func (c *Cursor) window(n int, end int64) ([]byte, error) {
	if c.f == nil {
		c.seg.mu.Lock()
		mem := c.seg.mem[:end]
		c.seg.mu.Unlock()
		return mem[c.off : c.off+int64(n)], nil
	}
	if c.off >= c.bOff && c.off+int64(n) <= c.bOff+int64(len(c.buf)) {
		i := c.off - c.bOff
		return c.buf[i : i+int64(n)], nil
	}
	want := max(n, 64<<10)
	if cap(c.buf) < want {
		c.buf = make([]byte, want)
	}
	c.buf = c.buf[:cap(c.buf)]
	if avail := end - c.off; int64(len(c.buf)) > avail {
		c.buf = c.buf[:avail]
	}
	m, err := c.f.ReadAt(c.buf, c.off)
	if m < len(c.buf) && err == nil {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && !(err == io.EOF && m == len(c.buf)) {
		c.buf = c.buf[:0]
		return nil, fmt.Errorf("%w: %s: short read at offset %d: %w", ErrCorrupt, c.segLabel(), c.off, err)
	}
	c.bOff = c.off
	return c.buf[:n], nil
}

// Read calls fn for up to max durable records from sequence number from
// (the oldest retained if from is before First()), in order, without
// waiting for more; it stops early when fn returns false. It returns the
// sequence number to continue from. Record.Data is valid only during fn.
func (l *Log) Read(from uint64, max int, fn func(Record) bool) (next uint64, err error) {
	c := l.NewCursor(from)
	defer c.Close()
	for i := 0; i < max; i++ {
		r, ok, err := c.TryNext()
		if err != nil {
			return c.next, err
		}
		if !ok {
			break
		}
		if !fn(r) {
			break
		}
	}
	return c.next, nil
}

// SeqAt returns the sequence number of the oldest retained record enqueued
// at or after t, or Next() when there is none yet. A reader started there
// reads from t on, as an Event Hubs reader started from an enqueued time.
func (l *Log) SeqAt(t time.Time) (uint64, error) {
	nanos := t.UnixNano()
	l.smu.RLock()
	segs := append([]*segment(nil), l.segs...)
	l.smu.RUnlock()
	// The first segment whose successor starts at or after t (or is empty,
	// or is missing): every earlier segment ends before t.
	k := 0
	for ; k < len(segs)-1; k++ {
		n := segs[k+1]
		n.mu.Lock()
		after := !n.hasFirst || n.firstNanos >= nanos
		n.mu.Unlock()
		if after {
			break
		}
	}
	s := segs[k]
	if s.path != "" {
		if err := s.ensureIndexed(l.opts.MaxRecordBytes); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	seq, _ := s.lookupTime(nanos)
	s.mu.Unlock()
	c := l.NewCursor(seq)
	defer c.Close()
	for {
		r, ok, err := c.TryNext()
		if err != nil {
			return 0, err
		}
		if !ok || r.Time.UnixNano() >= nanos {
			if ok {
				return r.Seq, nil
			}
			return c.next, nil
		}
	}
}
