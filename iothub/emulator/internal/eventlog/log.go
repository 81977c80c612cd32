package eventlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
)

// Log is an append-only, segmented log of opaque records. It is safe for
// concurrent use by multiple goroutines.
type Log struct {
	dir  string // "" in memory
	opts Options
	lock *os.File // the directory lock, nil in memory

	// Append side, guarded by amu.
	amu       sync.Mutex
	space     sync.Cond // signalled when the committer takes a batch
	nextSeq   uint64    // sequence number of the next record appended
	lastNanos int64     // the last enqueued time given, kept monotonic
	cur       *batch    // records waiting for the committer
	closed    bool
	err       error // sticky write failure
	kick      chan struct{}

	// Committer-owned.
	active *segment
	f      *os.File // active segment file, nil in memory
	filled int64    // bytes of f written (data, then zeros ahead of it)
	spare  []byte
	trimc  chan chan error

	// Segment list: read by cursors under smu.RLock, changed only by the
	// committer (and Open) under smu.Lock.
	smu  sync.RWMutex
	segs []*segment

	durable atomic.Uint64 // sequence number after the last durable record
	first   atomic.Uint64 // sequence number of the oldest retained record
	bytes   atomic.Int64  // total size of all segments
	isDone  atomic.Bool

	nmu    sync.Mutex
	notify chan struct{} // closed and replaced when records become durable
	nwait  bool          // someone holds notify

	closing   chan struct{} // closed by Close
	done      chan struct{} // closed when the committer has exited
	cbq       chan *batch   // committed batches with callbacks, in order
	cbDone    chan struct{}
	closeOnce sync.Once
	closeErr  error

	nRecords  atomic.Uint64
	nCommits  atomic.Uint64
	truncated int64
}

// batch is a group of records committed with one write and one sync.
type batch struct {
	buf   []byte
	first uint64
	n     uint64
	cbs   []callback
	done  chan struct{}
	err   error // set before done is closed
}

type callback struct {
	seq uint64
	fn  func(seq uint64, err error)
}

// Open opens the log kept in dir, creating the directory and the first
// segment when needed, or, when dir is "", a log held only in memory. On
// disk it takes an exclusive lock on the directory (ErrLocked if another
// Log holds it) and checks the newest segment record by record, cutting a
// torn or corrupt tail left by a crash; older segments are checked when
// first read. Records appended before a crash whose Append returned
// successfully are always kept.
func Open(dir string, opts Options) (*Log, error) {
	opts, err := opts.withDefaults(dir == "")
	if err != nil {
		return nil, err
	}
	l := &Log{
		dir:     dir,
		opts:    opts,
		kick:    make(chan struct{}, 1),
		trimc:   make(chan chan error),
		notify:  make(chan struct{}),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		cbq:     make(chan *batch, 64),
		cbDone:  make(chan struct{}),
	}
	l.space.L = &l.amu
	if dir == "" {
		s := &segment{base: 0, mem: appendSegHeader(make([]byte, 0, 64<<10), 0), indexed: true}
		s.size.Store(segHeaderSize)
		l.segs = []*segment{s}
		l.active = s
		l.bytes.Store(segHeaderSize)
	} else if err := l.openDir(); err != nil {
		if l.f != nil {
			l.f.Close()
		}
		unlockDir(l.lock)
		return nil, err
	}
	l.cur = l.newBatch()
	l.first.Store(l.segs[0].base)
	l.trim()
	go l.commitLoop()
	go l.callbackLoop()
	return l, nil
}

// openDir loads the segments of l.dir and recovers the newest one.
func (l *Log) openDir() error {
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	lock, err := lockDir(l.dir)
	if err != nil {
		return err
	}
	l.lock = lock
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var bases []uint64
	for _, e := range ents {
		if b, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, b)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })

	// The newest segment: drop it if its creation was torn (no whole
	// header, so it cannot hold a record), otherwise scan and repair it.
	for len(bases) > 0 {
		base := bases[len(bases)-1]
		path := filepath.Join(l.dir, segName(base))
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if fi.Size() >= segHeaderSize {
			break
		}
		l.opts.Logger.Warn("eventlog: removing segment torn at creation", "file", path, "bytes", fi.Size())
		if err := os.Remove(path); err != nil {
			return err
		}
		if err := syncDir(l.dir); err != nil {
			return err
		}
		bases = bases[:len(bases)-1]
	}
	if len(bases) == 0 {
		return l.createSegment(0)
	}
	for _, base := range bases[:len(bases)-1] {
		s, err := l.loadSealed(base)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
		l.bytes.Add(s.size.Load())
	}
	if err := l.recoverLast(bases[len(bases)-1]); err != nil {
		return err
	}
	// Check that segments follow each other where it is cheap to (bases
	// increase; a sealed segment's records end where its successor begins
	// is checked when it is indexed).
	for i := 1; i < len(l.segs); i++ {
		if l.segs[i].base <= l.segs[i-1].base {
			return fmt.Errorf("%w: segment bases out of order", ErrCorrupt)
		}
	}
	if n := len(l.segs); n > 1 && l.active.count == 0 {
		// The active segment is empty: the previous one holds the newest
		// enqueued time, which keeps times monotonic across the restart.
		prev := l.segs[n-2]
		if err := prev.ensureIndexed(l.opts.MaxRecordBytes); err != nil {
			return err
		}
		if prev.base+prev.count != l.active.base {
			return fmt.Errorf("%w: %s ends at %d, next segment starts at %d", ErrCorrupt, segName(prev.base), prev.base+prev.count, l.active.base)
		}
		l.lastNanos = prev.lastNanos
	}
	return nil
}

// loadSealed reads what Open needs of a sealed segment: its header and its
// first record's header.
func (l *Log) loadSealed(base uint64) (*segment, error) {
	path := filepath.Join(l.dir, segName(base))
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var hdr [segHeaderSize + frameHeaderSize]byte
	n, err := io.ReadFull(f, hdr[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	if b, ok := parseSegHeader(hdr[:n]); !ok || b != base {
		return nil, fmt.Errorf("%w: %s: bad segment header", ErrCorrupt, path)
	}
	if n < len(hdr) {
		return nil, fmt.Errorf("%w: %s: sealed segment without records", ErrCorrupt, path)
	}
	h, ok := parseFrameHeader(hdr[segHeaderSize:], l.opts.MaxRecordBytes)
	if !ok || h.seq != base {
		return nil, fmt.Errorf("%w: %s: bad first record", ErrCorrupt, path)
	}
	s := &segment{base: base, path: path, hasFirst: true, firstNanos: h.nanos}
	s.size.Store(fi.Size())
	s.sealed.Store(true)
	return s, nil
}

// recoverLast opens the newest segment for appending after cutting any
// torn or corrupt tail.
func (l *Log) recoverLast(base uint64) error {
	path := filepath.Join(l.dir, segName(base))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	l.f = f
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	var hdr [segHeaderSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return err
	}
	if b, ok := parseSegHeader(hdr[:]); !ok || b != base {
		return fmt.Errorf("%w: %s: bad segment header", ErrCorrupt, path)
	}
	res, err := scanFrames(f, base, fi.Size(), l.opts.MaxRecordBytes)
	if err != nil {
		return err
	}
	if res.end < fi.Size() {
		cut := fi.Size() - res.end
		l.opts.Logger.Warn("eventlog: cutting torn tail", "file", path, "offset", res.end, "bytes", cut, "next_seq", res.next)
		if err := f.Truncate(res.end); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		l.truncated = cut
	}
	s := &segment{base: base, path: path, indexed: true, idx: res.idx, count: res.count,
		firstNanos: res.firstNanos, lastNanos: res.lastNanos, hasFirst: res.hasFirst}
	s.size.Store(res.end)
	l.segs = append(l.segs, s)
	l.bytes.Add(res.end)
	l.active = s
	l.filled = res.end
	l.nextSeq = res.next
	l.durable.Store(res.next)
	l.lastNanos = res.lastNanos
	return nil
}

// createSegment makes base the active segment, durably: the file with its
// header is synced, and so is the directory, before any record goes in.
func (l *Log) createSegment(base uint64) error {
	s := &segment{base: base, indexed: true}
	if l.dir == "" {
		s.mem = appendSegHeader(make([]byte, 0, 64<<10), base)
	} else {
		if err := l.sealActiveFile(); err != nil {
			return err
		}
		s.path = filepath.Join(l.dir, segName(base))
		f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.Write(appendSegHeader(nil, base)); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		if err := syncDir(l.dir); err != nil {
			f.Close()
			return err
		}
		if l.f != nil {
			l.f.Close()
		}
		l.f = f
		l.filled = segHeaderSize
	}
	s.size.Store(segHeaderSize)
	if l.active != nil {
		l.active.sealed.Store(true)
	}
	l.smu.Lock()
	l.segs = append(l.segs, s)
	l.smu.Unlock()
	l.active = s
	l.bytes.Add(segHeaderSize)
	return nil
}

// Close commits the records already appended (their Append calls and
// callbacks complete), stops the log and releases the directory. Waiting
// readers return ErrClosed. Close is idempotent.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.amu.Lock()
		l.closed = true
		l.space.Broadcast()
		l.amu.Unlock()
		close(l.closing)
		l.poke()
		<-l.done
		<-l.cbDone
		l.isDone.Store(true)
		if l.f != nil {
			l.closeErr = l.sealActiveFile()
			if err := l.f.Close(); l.closeErr == nil {
				l.closeErr = err
			}
		}
		unlockDir(l.lock)
	})
	return l.closeErr
}

// First returns the sequence number of the oldest retained record, or
// Next() when the log is empty.
func (l *Log) First() uint64 { return l.first.Load() }

// Next returns the sequence number the next durable record will have: one
// more than the newest durable record's. It is the "latest" position: a
// reader that starts there sees only records appended from now on.
// Sequence numbers start at 0 and never repeat, across restarts too.
func (l *Log) Next() uint64 { return l.durable.Load() }

// Last returns the newest durable record's sequence number; ok is false
// when the log holds no record.
func (l *Log) Last() (seq uint64, ok bool) {
	n, f := l.durable.Load(), l.first.Load()
	if n > f {
		return n - 1, true
	}
	return 0, false
}

// Stats are counters of a Log, for tests, benchmarks and metrics.
type Stats struct {
	Records   uint64 // records committed since Open
	Commits   uint64 // batches committed since Open; on disk each is one write and one fsync
	Segments  int    // segments retained
	Bytes     int64  // total size of the retained segments
	First     uint64 // as First()
	Next      uint64 // as Next()
	Truncated int64  // bytes cut from the newest segment at Open: a torn tail, or zeros preallocated before a crash
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	l.smu.RLock()
	n := len(l.segs)
	l.smu.RUnlock()
	return Stats{
		Records:   l.nRecords.Load(),
		Commits:   l.nCommits.Load(),
		Segments:  n,
		Bytes:     l.bytes.Load(),
		First:     l.first.Load(),
		Next:      l.durable.Load(),
		Truncated: l.truncated,
	}
}

// now returns the clock's time in Unix nanoseconds.
func (l *Log) now() int64 { return l.opts.Now().UnixNano() }

// waitCh returns a channel closed when more records become durable or the
// log closes.
func (l *Log) waitCh() <-chan struct{} {
	l.nmu.Lock()
	l.nwait = true
	ch := l.notify
	l.nmu.Unlock()
	return ch
}

func (l *Log) wake() {
	l.nmu.Lock()
	if l.nwait {
		close(l.notify)
		l.notify = make(chan struct{})
		l.nwait = false
	}
	l.nmu.Unlock()
}

func (l *Log) poke() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Wait blocks until a record with sequence number seq or later is durable
// (Next() > seq), ctx ends (its error is returned) or the log closes
// (ErrClosed).
func (l *Log) Wait(ctx context.Context, seq uint64) error {
	for {
		ch := l.waitCh()
		if l.durable.Load() > seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-l.closing:
			return ErrClosed
		}
	}
}

// Trim applies retention now: it removes the oldest segments while the log
// is over MaxBytes or while all of a segment's records are older than
// MaxAge (a segment whose newest record has expired is sealed first, so an
// idle log empties too). The log does this by itself after every commit
// and every RetentionInterval; Trim is for tests with a manual clock.
func (l *Log) Trim() error {
	ch := make(chan error, 1)
	select {
	case l.trimc <- ch:
		return <-ch
	case <-l.done:
		return ErrClosed
	}
}

// sealActiveFile cuts the zeros preallocated after the active segment's
// data and syncs the file, so that a sealed segment (and a cleanly closed
// one) ends exactly at its last record.
func (l *Log) sealActiveFile() error {
	if l.f == nil || l.filled <= l.active.size.Load() {
		return nil
	}
	if err := l.f.Truncate(l.active.size.Load()); err != nil {
		return err
	}
	if err := l.f.Sync(); err != nil {
		return err
	}
	l.filled = l.active.size.Load()
	return nil
}
