package packet

import (
	"errors"
	"io"

	"github.com/hubwire/hubwire/internal/bufpool"
)

// Frame is one whole packet as read from a stream, fixed header included.
// A Frame returned by Reader.Next is a view of the Reader's buffer.
type Frame []byte

// Type returns the packet type in the frame's first byte.
func (f Frame) Type() Type { return Type(f[0] >> 4) }

// Flags returns the fixed-header flags in the frame's first byte.
func (f Frame) Flags() byte { return f[0] & 0x0F }

// defaultReadBuffer is the buffer a Reader starts with and returns to after
// a larger packet: enough for a burst of small packets in one read.
const defaultReadBuffer = 4096

// Reader splits a byte stream into MQTT packets.
//
// Next returns each packet as a Frame that aliases a pooled buffer owned by
// the Reader and stays valid until the next call to Next, ReadPacket or
// Release. Reading a stream of packets allocates nothing in steady state.
//
// The fixed header is parsed and checked before any packet body is
// buffered: a remaining length above the Reader's maximum packet size gives
// ErrPacketTooLarge without growing the buffer, and bad type bits, flags or
// a malformed remaining length fail as soon as the header's bytes arrive.
// Such framing errors are sticky: every later call returns the same error,
// since the stream cannot be resynchronised. Errors from the underlying
// io.Reader (a timeout, say) are returned as they are and are not sticky;
// bytes already read stay buffered.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	src   io.Reader
	max   int
	bufp  *[]byte // pooled; nil until the first read and after Release
	buf   []byte  // *bufp[:cap]
	start int     // first unread byte
	end   int     // end of buffered bytes
	err   error   // sticky framing error
	ioErr error   // error that came with the last bytes read, not yet returned
}

// NewReader returns a Reader of packets from r that rejects packets larger
// than maxPacketSize bytes (fixed header included). maxPacketSize <= 0
// means MaxPacketSize, the protocol's limit.
func NewReader(r io.Reader, maxPacketSize int) *Reader {
	if maxPacketSize <= 0 || maxPacketSize > MaxPacketSize {
		maxPacketSize = MaxPacketSize
	}
	return &Reader{src: r, max: maxPacketSize}
}

// Reset discards any buffered bytes and sticky error and makes the Reader
// read from src. It keeps the buffer.
func (r *Reader) Reset(src io.Reader) {
	r.src = src
	r.start, r.end = 0, 0
	r.err, r.ioErr = nil, nil
}

// Buffered returns the number of bytes read from the stream but not yet
// returned as frames.
func (r *Reader) Buffered() int { return r.end - r.start }

// Release returns the Reader's buffer to the pool, invalidating the last
// frame. Buffered bytes not yet returned are kept in a fresh buffer. Call it
// when a connection closes or goes idle; the Reader stays usable.
func (r *Reader) Release() {
	if r.bufp == nil {
		return
	}
	pending := r.end - r.start
	old := r.bufp
	if pending == 0 {
		r.bufp, r.buf = nil, nil
	} else {
		r.bufp = bufpool.Get(pending)
		r.buf = (*r.bufp)[:cap(*r.bufp)]
		copy(r.buf, (*old)[:cap(*old)][r.start:r.end])
	}
	r.start, r.end = 0, pending
	bufpool.Put(old)
}

// Next returns the next whole packet. At a clean end of stream it returns
// io.EOF; a stream that ends inside a packet gives io.ErrUnexpectedEOF.
func (r *Reader) Next() (Frame, error) {
	if r.err != nil {
		return nil, r.err
	}
	for {
		avail := r.buf[r.start:r.end]
		need := 2
		if len(avail) > 0 {
			var size int
			if len(avail) >= 3 && (avail[1] < 0x80 || (avail[2] < 0x80 && avail[2] != 0)) {
				// Fast path: a one- or two-byte remaining length, complete.
				if err := checkFirstByte(avail[0]); err != nil {
					r.err = err
					return nil, err
				}
				if avail[1] < 0x80 {
					size = 2 + int(avail[1])
				} else {
					size = 3 + (int(avail[1]&0x7F) | int(avail[2])<<7)
				}
			} else {
				h, n, err := ParseHeader(avail)
				switch {
				case err == ErrShortBuffer:
					// The header is incomplete: read on before judging
					// the size, so a split stream fails like a whole one.
					if err := r.fill(len(avail) + 1); err != nil {
						return nil, err
					}
					continue
				case err != nil:
					r.err = err
					return nil, err
				default:
					size = n + h.Remaining
				}
			}
			if size > r.max {
				r.err = &DecodeError{Type: Type(avail[0] >> 4), Field: "packet size (over the limit)", Err: ErrPacketTooLarge}
				return nil, r.err
			}
			if size <= len(avail) {
				r.start += size
				return Frame(avail[:size:size]), nil
			}
			need = size
		}
		if err := r.fill(need); err != nil {
			return nil, err
		}
	}
}

// fill makes room for need bytes and reads once, returning as soon as any
// new bytes arrive, so that Next checks each header byte as early as it
// can: the same bytes give the same verdict however the stream is split.
func (r *Reader) fill(need int) error {
	if r.start == r.end {
		r.start, r.end = 0, 0
		if cap(r.buf) > defaultReadBuffer && need <= defaultReadBuffer {
			r.Release() // drop a buffer grown for one large packet
		}
	}
	if r.bufp == nil || len(r.buf)-r.start < need {
		pending := r.end - r.start
		if r.bufp == nil || len(r.buf) < need {
			size := max(need, defaultReadBuffer)
			nb := bufpool.Get(size)
			buf := (*nb)[:cap(*nb)]
			copy(buf, r.buf[r.start:r.end])
			if r.bufp != nil {
				bufpool.Put(r.bufp)
			}
			r.bufp, r.buf = nb, buf
		} else {
			copy(r.buf, r.buf[r.start:r.end])
		}
		r.start, r.end = 0, pending
	}
	if err := r.ioErr; err != nil {
		r.ioErr = nil
		return r.eofErr(err)
	}
	for empty := 0; ; empty++ {
		n, err := r.src.Read(r.buf[r.end:])
		r.end += n
		if n > 0 {
			r.ioErr = err // reported once the buffered bytes are used up
			return nil
		}
		if err != nil {
			return r.eofErr(err)
		}
		// A reader returning (0, nil) again and again would spin; io.Reader
		// discourages it, and we give up rather than loop forever.
		if empty == 100 {
			return io.ErrNoProgress
		}
	}
}

// eofErr turns io.EOF into io.ErrUnexpectedEOF when a packet is partly
// read, and leaves other errors as they are.
func (r *Reader) eofErr(err error) error {
	if errors.Is(err, io.EOF) && r.end != r.start {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadPacket reads the next packet and decodes it into a new value that
// owns its memory (it does not alias the Reader's buffer). Allocates.
func (r *Reader) ReadPacket() (Packet, error) {
	f, err := r.Next()
	if err != nil {
		return nil, err
	}
	p := New(f.Type())
	if err := p.UnmarshalBinary(f); err != nil {
		return nil, err
	}
	return p, nil
}
