// Package packet is hubwire's MQTT 3.1.1 wire codec: the 14 control packets,
// the fixed header and a stream Reader. It knows nothing of sockets,
// goroutines or IoT Hub.
//
// # Encoding
//
// Every packet type T has Size, the exact encoded length, and AppendBinary
// (encoding.BinaryAppender), which appends the packet to a caller's buffer
// and allocates only when that buffer lacks capacity. Encoding refuses what
// decoding would refuse, with one deliberate exception on the hot path:
// Publish.AppendBinary checks a PUBLISH's flags, packet identifier and
// lengths but trusts the topic's bytes, since scanning them costs more than
// the rest of the encoding. Publish.Validate checks them; the mqtt client
// calls it on every topic a caller hands in.
//
// # Decoding without copies
//
// T.Decode(frame) decodes one whole packet, fixed header included. It does
// not copy: the []byte fields of the decoded value (topics, payloads, client
// ids, filters) are views of frame and are valid only while frame is. Keep a
// value beyond that by copying it (Publish.Clone) or by decoding with
// UnmarshalBinary, which copies first. Empty byte fields decode as nil.
//
// Reader reads frames from an io.Reader into a pooled buffer; each frame is
// valid until the next call. Together, Reader.Next and Publish.Decode read
// and validate a stream of PUBLISH packets with no allocation at all.
//
// # Validation and errors
//
// Decoding is strict: fixed-header flags, remaining-length encoding, UTF-8
// strings without U+0000, topic names without wildcards, filter wildcard
// placement, QoS values, packet identifiers, CONNECT's flag combinations and
// trailing bytes are all checked, each against the statement of the spec it
// enforces. Every error for bad input is a *DecodeError whose Rule names the
// statement (for example "MQTT-3.3.2-2") and which wraps one class:
// ErrMalformed, ErrProtocol or ErrPacketTooLarge; test it with errors.Is.
// ErrUnsupportedProtocolLevel and ErrClientIDRejected mark the two CONNECT
// failures a server answers with a CONNACK code rather than a silent close.
// Nothing in this package panics on input.
//
// # Concurrency
//
// Packet values and Readers are not safe for concurrent use; distinct values
// may be used from distinct goroutines.
package packet
