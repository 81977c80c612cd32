package packet

import (
	"encoding/binary"
	"unicode/utf8"
)

// maxString is the longest UTF-8 string or binary field MQTT can carry: its
// length prefix is two bytes [MQTT-1.5.3].
const maxString = 65_535

// SWAR constants: eight bytes tested at once.
const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// hasZeroByte reports whether any byte of x is zero.
func hasZeroByte(x uint64) bool { return (x-lo8)&^x&hi8 != 0 }

// String checks. MQTT strings must be well-formed UTF-8 with no surrogate
// halves [MQTT-1.5.3-1] and no U+0000 [MQTT-1.5.3-2]. The spec lets a
// receiver close the connection on the other control characters
// (U+0001..U+001F, U+007F..U+009F) and non-characters but does not require
// it; hubwire accepts them, like mosquitto, so a peer's odd client id is not
// a reason to drop it. A U+FEFF at the start is kept, never stripped
// [MQTT-1.5.3-3].

// checkString validates an MQTT UTF-8 string. It returns "" or the rule
// broken.
func checkString(b []byte) string {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if x&hi8 != 0 {
			return checkStringSlow(b[i:])
		}
		if hasZeroByte(x) {
			return "MQTT-1.5.3-2"
		}
	}
	for ; i < len(b); i++ {
		c := b[i]
		if c >= 0x80 {
			return checkStringSlow(b[i:])
		}
		if c == 0 {
			return "MQTT-1.5.3-2"
		}
	}
	return ""
}

func checkStringSlow(b []byte) string {
	for _, c := range b {
		if c == 0 {
			return "MQTT-1.5.3-2"
		}
	}
	if !utf8.Valid(b) {
		return "MQTT-1.5.3-1"
	}
	return ""
}

// plus8 is '+' in every byte. '#' (0x23) and '+' (0x2B) differ only in
// bit 3, so OR-ing 0x08 into every byte turns both into '+' and one
// comparison finds either; no other byte becomes 0x2B that way.
const (
	plus8 = lo8 * '+'
	bit38 = lo8 * 0x08
)

// topicWord returns a word whose high bits are set if x holds a non-ASCII
// byte, a zero byte, '+' or '#' (and may be set at other bytes when it
// does): the fast path's test for "nothing unusual here".
//
//   - x itself carries the high bit of every non-ASCII byte;
//   - x - lo8 sets the high bit of a zero byte (0 - 1 = 0xFF); without a
//     zero byte nothing borrows, so ASCII bytes stay below 0x80;
//   - t = (x | 0x08) ^ '+' is zero exactly at '+' and '#', and t - lo8
//     flags those bytes the same way. t keeps x's high bit, so a non-ASCII
//     byte (already flagged) is the only other source of flags.
func topicWord(x uint64) uint64 {
	t := (x | bit38) ^ plus8
	return x | (x - lo8) | (t - lo8)
}

// checkTopicName validates a PUBLISH topic name: a non-empty
// [MQTT-4.7.3-1] MQTT string with no wildcard characters [MQTT-3.3.2-2]. It
// returns "" or the rule broken, and whether the failure is a malformed
// string (true) or a protocol violation (false).
//
// The common case, an ASCII topic, is checked eight bytes at a time without
// branches; anything unusual takes the byte-wise path.
func checkTopicName(b []byte) (rule string, isMalformed bool) {
	n := len(b)
	if n < 8 {
		if n == 0 {
			return "MQTT-4.7.3-1", false
		}
		for _, c := range b {
			if c >= 0x80 || c == 0 || c == '+' || c == '#' {
				return checkTopicNameSlow(b)
			}
		}
		return "", false
	}
	// The last word may overlap bytes checked below; that is harmless.
	acc := topicWord(binary.LittleEndian.Uint64(b[n-8:]))
	for r := b; len(r) >= 16; r = r[16:] {
		acc |= topicWord(binary.LittleEndian.Uint64(r)) | topicWord(binary.LittleEndian.Uint64(r[8:]))
	}
	if n&8 != 0 {
		acc |= topicWord(binary.LittleEndian.Uint64(b[n&^15:]))
	}
	if acc&hi8 != 0 {
		return checkTopicNameSlow(b)
	}
	return "", false
}

func checkTopicNameSlow(b []byte) (string, bool) {
	if r := checkString(b); r != "" {
		return r, true
	}
	for _, c := range b {
		if c == '+' || c == '#' {
			return "MQTT-3.3.2-2", false
		}
	}
	return "", false
}

// checkTopicFilter validates a SUBSCRIBE/UNSUBSCRIBE topic filter: a
// non-empty MQTT string [MQTT-4.7.3-1] in which '#' is alone in the last
// level [MQTT-4.7.1-2] and '+' is alone in its level [MQTT-4.7.1-3].
func checkTopicFilter(b []byte) (rule string, isMalformed bool) {
	if len(b) == 0 {
		return "MQTT-4.7.3-1", false
	}
	// Most filters have no wildcard, or only a trailing "#": for those the
	// topic-name check of the rest is the whole verdict.
	if n := len(b); n >= 2 && b[n-1] == '#' && b[n-2] == '/' {
		if r, _ := checkTopicName(b[:n-2]); r == "" {
			return "", false
		}
	} else if r, _ := checkTopicName(b); r == "" {
		return "", false
	}
	return checkTopicFilterSlow(b)
}

// checkTopicFilterSlow is the byte-by-byte filter check, the reference the
// fast path in checkTopicFilter is tested against.
func checkTopicFilterSlow(b []byte) (rule string, isMalformed bool) {
	if len(b) == 0 {
		return "MQTT-4.7.3-1", false
	}
	if r := checkString(b); r != "" {
		return r, true
	}
	for i, c := range b {
		switch c {
		case '#':
			if i != len(b)-1 || (i > 0 && b[i-1] != '/') {
				return "MQTT-4.7.1-2", false
			}
		case '+':
			if (i > 0 && b[i-1] != '/') || (i+1 < len(b) && b[i+1] != '/') {
				return "MQTT-4.7.1-3", false
			}
		}
	}
	return "", false
}

// ValidateTopicName reports whether b may be used as the topic of a PUBLISH:
// non-empty, well-formed UTF-8 without U+0000 and free of '+' and '#'. The
// error wraps ErrMalformed or ErrProtocol.
func ValidateTopicName(b []byte) error {
	if r, m := checkTopicName(b); r != "" {
		return classErr(0, "topic name", r, m)
	}
	return nil
}

// ValidateTopicFilter reports whether b is a valid subscription filter:
// non-empty, well-formed UTF-8 without U+0000, with '#' only alone as the
// last level and '+' only alone in a level. The error wraps ErrMalformed or
// ErrProtocol.
func ValidateTopicFilter(b []byte) error {
	if r, m := checkTopicFilter(b); r != "" {
		return classErr(0, "topic filter", r, m)
	}
	return nil
}

func classErr(t Type, field, rule string, isMalformed bool) error {
	if isMalformed {
		return malformed(t, field, rule)
	}
	return protocolErr(t, field, rule)
}

// MatchTopic reports whether the topic name matches the subscription
// filter, following MQTT 3.1.1 §4.7: '+' matches exactly one level, '#'
// matches the parent level and any number of levels below it, and a filter
// starting with a wildcard never matches a topic starting with '$'
// [MQTT-4.7.2-1]. Both arguments are assumed valid.
func MatchTopic(filter, topic []byte) bool {
	if len(topic) > 0 && topic[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	fi, ti := 0, 0
	for {
		if fi >= len(filter) {
			return ti >= len(topic)
		}
		switch filter[fi] {
		case '#':
			return true
		case '+':
			for ti < len(topic) && topic[ti] != '/' {
				ti++
			}
			fi++
		default:
			for fi < len(filter) && filter[fi] != '/' {
				if ti >= len(topic) || topic[ti] != filter[fi] {
					return false
				}
				fi++
				ti++
			}
			if ti < len(topic) && topic[ti] != '/' {
				return false
			}
		}
		// Both at a level boundary (or an end).
		if fi >= len(filter) {
			return ti >= len(topic)
		}
		// filter[fi] == '/'
		if ti >= len(topic) {
			// "a/#" matches "a": the filter's rest must be exactly "/#".
			return len(filter)-fi == 2 && filter[fi+1] == '#'
		}
		fi++
		ti++
	}
}

// reader reads the fields of a packet body. It never panics: every read is
// bounds-checked and a short body becomes a malformed-packet error naming
// the field.
type reader struct {
	b   []byte
	off int
	t   Type
}

func (r *reader) u8(field string) (byte, error) {
	if r.off >= len(r.b) {
		return 0, malformedDetail(r.t, field, "truncated", "MQTT-2.2.3")
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) u16(field string) (uint16, error) {
	if len(r.b)-r.off < 2 {
		return 0, malformedDetail(r.t, field, "truncated", "MQTT-2.2.3")
	}
	v := binary.BigEndian.Uint16(r.b[r.off:])
	r.off += 2
	return v, nil
}

func (r *reader) id(field string) (ID, error) {
	v, err := r.u16(field)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return 0, &DecodeError{Type: r.t, Field: field, Detail: "zero", Rule: "MQTT-2.3.1-1", Err: ErrProtocol}
	}
	return ID(v), nil
}

// bytes reads a two-byte length prefix and that many bytes, as a view.
// An empty field is returned as nil.
func (r *reader) bytes(field string) ([]byte, error) {
	if len(r.b)-r.off < 2 {
		return nil, malformedDetail(r.t, field, "length truncated", "MQTT-1.5.3")
	}
	n := int(binary.BigEndian.Uint16(r.b[r.off:]))
	r.off += 2
	if len(r.b)-r.off < n {
		return nil, malformedDetail(r.t, field, "length exceeds packet", "MQTT-1.5.3")
	}
	if n == 0 {
		return nil, nil
	}
	v := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return v, nil
}

// string reads a length-prefixed MQTT UTF-8 string, as a view.
func (r *reader) string(field string) ([]byte, error) {
	v, err := r.bytes(field)
	if err != nil {
		return nil, err
	}
	if rule := checkString(v); rule != "" {
		return nil, malformed(r.t, field, rule)
	}
	return v, nil
}

// filter reads a length-prefixed topic filter of a SUBSCRIBE or
// UNSUBSCRIBE and checks it, as a view.
func (r *reader) filter() ([]byte, error) {
	f, err := r.bytes("topic filter")
	if err != nil {
		return nil, err
	}
	if rule, m := checkTopicFilter(f); rule != "" {
		return nil, classErr(r.t, "topic filter", rule, m)
	}
	return f, nil
}

func (r *reader) rest() []byte {
	if r.off >= len(r.b) {
		return nil
	}
	return r.b[r.off:]
}

func (r *reader) done() error {
	if r.off != len(r.b) {
		return malformed(r.t, "trailing bytes after packet", "MQTT-2.2.3")
	}
	return nil
}

func appendU16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendBytes(dst, b []byte) []byte {
	dst = append(dst, byte(len(b)>>8), byte(len(b)))
	return append(dst, b...)
}

// checkLen returns an encode error if a string or binary field is longer
// than its two-byte length prefix can say.
func checkLen(t Type, field string, b []byte) error {
	if len(b) > maxString {
		return encodeErr(t, field+" (longer than 65,535 bytes)", "MQTT-1.5.3", ErrPacketTooLarge)
	}
	return nil
}

// checkEncString checks a UTF-8 string field for encoding.
func checkEncString(t Type, field string, b []byte) error {
	if err := checkLen(t, field, b); err != nil {
		return err
	}
	if r := checkString(b); r != "" {
		return encodeErr(t, field, r, ErrMalformed)
	}
	return nil
}

// checkEncFilter checks a topic filter for encoding in a SUBSCRIBE or
// UNSUBSCRIBE.
func checkEncFilter(t Type, f []byte) error {
	if err := checkLen(t, "topic filter", f); err != nil {
		return err
	}
	if r, m := checkTopicFilter(f); r != "" {
		return encodeErr(t, "topic filter", r, classOf(m))
	}
	return nil
}

func checkRemaining(t Type, rem int) error {
	if rem > MaxRemainingLength {
		return encodeErr(t, "remaining length (over 268,435,455)", "MQTT-2.2.3", ErrPacketTooLarge)
	}
	return nil
}
