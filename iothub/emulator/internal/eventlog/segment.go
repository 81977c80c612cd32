package eventlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

const segSuffix = ".seg"

// segment is one file of the log (or one byte slice in memory). Records in
// it have consecutive sequence numbers starting at base.
type segment struct {
	base uint64
	path string // "" in memory

	// size is the number of durable bytes, header included; sealed turns
	// true once no more records will be added. The committer stores size
	// before it publishes the log's durable sequence number and seals a
	// segment before writing to its successor, so a reader that loads
	// durable, then sealed, then size sees a consistent picture.
	size   atomic.Int64
	sealed atomic.Bool

	mu      sync.Mutex
	mem     []byte       // memory mode: header and durable frames
	idx     []indexEntry // sparse: one entry per indexEvery bytes
	indexed bool         // idx, lastNanos and count cover all of size
	count   uint64       // records, valid when indexed
	// firstNanos is the first record's enqueued time (hasFirst); lastNanos
	// the last one's, valid when indexed.
	firstNanos int64
	lastNanos  int64
	hasFirst   bool
}

// indexEntry locates one record inside its segment.
type indexEntry struct {
	seq   uint64
	off   int64
	nanos int64
}

func segName(base uint64) string { return fmt.Sprintf("%020d%s", base, segSuffix) }

// parseSegName returns the base of a segment file name.
func parseSegName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// addFrames records the frames of a just-committed batch, which starts at
// offset off of the segment, in the index. Callers hold s.mu.
func (s *segment) addFrames(buf []byte, off int64) {
	for len(buf) >= frameHeaderSize {
		h, _ := parseFrameHeader(buf, MaxRecordLimit)
		if !s.hasFirst {
			s.hasFirst = true
			s.firstNanos = h.nanos
		}
		if len(s.idx) == 0 || off-s.idx[len(s.idx)-1].off >= indexEvery {
			s.idx = append(s.idx, indexEntry{seq: h.seq, off: off, nanos: h.nanos})
		}
		s.lastNanos = h.nanos
		s.count++
		n := frameSize(h.n)
		buf = buf[n:]
		off += int64(n)
	}
}

// lookup returns the index entry from which to scan for seq: the last one
// at or before it, or the segment start. Callers hold s.mu.
func (s *segment) lookup(seq uint64) (uint64, int64) {
	i := sort.Search(len(s.idx), func(i int) bool { return s.idx[i].seq > seq })
	if i == 0 {
		return s.base, segHeaderSize
	}
	return s.idx[i-1].seq, s.idx[i-1].off
}

// lookupTime returns the index entry from which to scan for the first
// record enqueued at or after nanos. Callers hold s.mu.
func (s *segment) lookupTime(nanos int64) (uint64, int64) {
	i := sort.Search(len(s.idx), func(i int) bool { return s.idx[i].nanos >= nanos })
	if i == 0 {
		return s.base, segHeaderSize
	}
	return s.idx[i-1].seq, s.idx[i-1].off
}

// scanResult is what a sequential pass over a segment's frames found.
type scanResult struct {
	end        int64 // offset after the last intact frame
	next       uint64
	idx        []indexEntry
	count      uint64
	firstNanos int64
	lastNanos  int64
	hasFirst   bool
	bad        bool // stopped at a frame that is torn, corrupt or out of sequence
}

// scanFrames reads frames from r, which is positioned at offset
// segHeaderSize of a segment with the given base, until EOF, limit bytes
// or the first frame that fails its checks. Allocation is bounded by
// maxRecord: a length field is checked before any buffer grows for it.
func scanFrames(r io.Reader, base uint64, limit int64, maxRecord int) (scanResult, error) {
	res := scanResult{end: segHeaderSize, next: base}
	br := newFrameReader(r, maxRecord)
	for res.end < limit {
		frame, err := br.next(limit - res.end)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return res, nil
			}
			if errors.Is(err, errBadFrame) {
				res.bad = true
				return res, nil
			}
			return res, err
		}
		h, _ := parseFrameHeader(frame, maxRecord)
		if h.seq != res.next {
			res.bad = true
			return res, nil
		}
		if !res.hasFirst {
			res.hasFirst, res.firstNanos = true, h.nanos
		}
		if len(res.idx) == 0 || res.end-res.idx[len(res.idx)-1].off >= indexEvery {
			res.idx = append(res.idx, indexEntry{seq: h.seq, off: res.end, nanos: h.nanos})
		}
		res.lastNanos = h.nanos
		res.count++
		res.next++
		res.end += int64(len(frame))
	}
	return res, nil
}

var errBadFrame = errors.New("bad frame")

// frameReader reads whole, verified frames from a stream with one reused
// buffer.
type frameReader struct {
	r         io.Reader
	buf       []byte
	start     int // unread data is buf[start:end]
	end       int
	maxRecord int
	eof       bool
}

func newFrameReader(r io.Reader, maxRecord int) *frameReader {
	return &frameReader{r: r, buf: make([]byte, 256<<10), maxRecord: maxRecord}
}

// fill makes at least n bytes available, growing the buffer when n exceeds
// it (n is always a verified frame size). It returns io.EOF or
// io.ErrUnexpectedEOF when the stream ends first.
func (fr *frameReader) fill(n int) error {
	for fr.end-fr.start < n {
		if fr.eof {
			if fr.end == fr.start {
				return io.EOF
			}
			return io.ErrUnexpectedEOF
		}
		if fr.start > 0 && len(fr.buf)-fr.start < n {
			fr.end = copy(fr.buf, fr.buf[fr.start:fr.end])
			fr.start = 0
		}
		if len(fr.buf) < n {
			nb := make([]byte, n)
			fr.end = copy(nb, fr.buf[fr.start:fr.end])
			fr.start = 0
			fr.buf = nb
		}
		m, err := fr.r.Read(fr.buf[fr.end:])
		fr.end += m
		if err == io.EOF {
			fr.eof = true
		} else if err != nil {
			return err
		}
	}
	return nil
}

// next returns the next frame, valid until the following call. A frame
// that is torn (the stream ends inside it, or it would pass remain bytes),
// too long or fails its CRC gives errBadFrame; a clean end gives io.EOF.
func (fr *frameReader) next(remain int64) ([]byte, error) {
	if err := fr.fill(frameHeaderSize); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, errBadFrame
		}
		return nil, err
	}
	h, ok := parseFrameHeader(fr.buf[fr.start:], fr.maxRecord)
	n := frameSize(h.n)
	if !ok || int64(n) > remain {
		return nil, errBadFrame
	}
	if err := fr.fill(n); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, errBadFrame
		}
		return nil, err
	}
	frame := fr.buf[fr.start : fr.start+n]
	if frameCRC(frame) != h.crc {
		return nil, errBadFrame
	}
	fr.start += n
	return frame, nil
}

// ensureIndexed builds the index of a sealed segment found at Open, the
// first time something needs to look inside it.
func (s *segment) ensureIndexed(maxRecord int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indexed {
		return nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	size := s.size.Load()
	res, err := scanFrames(io.NewSectionReader(f, segHeaderSize, size-segHeaderSize), s.base, size, maxRecord)
	if err != nil {
		return err
	}
	if res.bad || res.end != size {
		return fmt.Errorf("%w: %s: record %d at offset %d does not verify", ErrCorrupt, filepath.Base(s.path), res.next, res.end)
	}
	s.idx, s.count, s.lastNanos, s.indexed = res.idx, res.count, res.lastNanos, true
	return nil
}
