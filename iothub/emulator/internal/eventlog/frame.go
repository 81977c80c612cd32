package eventlog

import (
	"encoding/binary"
	"hash/crc32"
)

// Record frame, little endian:
//
//	0   uint32  payload length n
//	4   uint32  CRC-32C over bytes [0:4] and [8:24+n]
//	8   uint64  sequence number
//	16  int64   enqueued time, Unix nanoseconds
//	24  n bytes payload
const frameHeaderSize = 24

// Segment header, little endian:
//
//	0   [8]byte "hwevlog\x00"
//	8   uint32  format version (1)
//	12  uint32  zero
//	16  uint64  sequence number of the segment's first record
//	24  uint32  zero
//	28  uint32  CRC-32C over bytes [0:28]
const (
	segHeaderSize = 32
	formatVersion = 1
	segMagic      = "hwevlog\x00"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameSize is the number of bytes a record of n payload bytes occupies.
func frameSize(n int) int { return frameHeaderSize + n }

// appendFrame appends the frame of one record to dst.
func appendFrame(dst []byte, seq uint64, nanos int64, payload []byte) []byte {
	off := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, 0, 0, 0, 0) // CRC, filled below
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(nanos))
	dst = append(dst, payload...)
	binary.LittleEndian.PutUint32(dst[off+4:], frameCRC(dst[off:]))
	return dst
}

// frameCRC computes the checksum of a whole frame (header and payload).
func frameCRC(frame []byte) uint32 {
	c := crc32.Update(0, castagnoli, frame[0:4])
	return crc32.Update(c, castagnoli, frame[8:])
}

// frameHeader is the decoded fixed part of a frame.
type frameHeader struct {
	n     int // payload length, already checked against the record limit
	crc   uint32
	seq   uint64
	nanos int64
}

// parseFrameHeader decodes the fixed part of a frame from b, which must hold
// at least frameHeaderSize bytes. ok is false when the length field exceeds
// maxRecord: such a frame is corrupt and nothing may be allocated for it.
func parseFrameHeader(b []byte, maxRecord int) (h frameHeader, ok bool) {
	n := binary.LittleEndian.Uint32(b[0:4])
	if uint64(n) > uint64(maxRecord) {
		return h, false
	}
	return frameHeader{
		n:     int(n),
		crc:   binary.LittleEndian.Uint32(b[4:8]),
		seq:   binary.LittleEndian.Uint64(b[8:16]),
		nanos: int64(binary.LittleEndian.Uint64(b[16:24])),
	}, true
}

// decodeFrame decodes the frame at the start of b. It returns the header,
// the payload (aliasing b) and the frame's size. ok is false when b does not
// start with a whole, intact frame of at most maxRecord payload bytes: too
// short, an oversized length field or a checksum mismatch.
func decodeFrame(b []byte, maxRecord int) (h frameHeader, payload []byte, size int, ok bool) {
	if len(b) < frameHeaderSize {
		return h, nil, 0, false
	}
	h, ok = parseFrameHeader(b, maxRecord)
	if !ok || len(b)-frameHeaderSize < h.n {
		return h, nil, 0, false
	}
	size = frameHeaderSize + h.n
	if frameCRC(b[:size]) != h.crc {
		return h, nil, 0, false
	}
	return h, b[frameHeaderSize:size], size, true
}

// appendSegHeader appends the header of a segment whose first record has
// sequence number base.
func appendSegHeader(dst []byte, base uint64) []byte {
	off := len(dst)
	dst = append(dst, segMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, formatVersion)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, base)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[off:off+28], castagnoli))
}

// parseSegHeader checks a segment header and returns its base sequence
// number.
func parseSegHeader(b []byte) (base uint64, ok bool) {
	if len(b) < segHeaderSize || string(b[:8]) != segMagic {
		return 0, false
	}
	if binary.LittleEndian.Uint32(b[28:32]) != crc32.Checksum(b[:28], castagnoli) {
		return 0, false
	}
	if binary.LittleEndian.Uint32(b[8:12]) != formatVersion {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[16:24]), true
}
