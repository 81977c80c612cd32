package percent

// Text is what the functions of this package read: a string or a byte
// slice, so a buffer on the caller's stack can be encoded or decoded
// without a conversion.
type Text interface{ ~string | ~[]byte }

// Set marks the bytes an encoder writes as they are.
type Set [256]bool

// NewSet returns the set of ASCII letters and digits and the bytes of
// extra.
func NewSet(extra string) *Set {
	var s Set
	for c := 'a'; c <= 'z'; c++ {
		s[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		s[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		s[c] = true
	}
	for i := 0; i < len(extra); i++ {
		s[extra[i]] = true
	}
	return &s
}

const upperHex = "0123456789ABCDEF"

// EscapedLen returns the length of s after AppendEscape with keep.
func EscapedLen[T Text](s T, keep *Set) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if !keep[s[i]] {
			n += 2
		}
	}
	return n
}

// AppendEscape appends s to dst with every byte not in keep written as %XX
// (upper-case hex).
func AppendEscape[T Text](dst []byte, s T, keep *Set) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keep[c] {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&0xf])
	}
	return dst
}

// hexVal holds the value of each hex digit (either case) and 0xff for
// every other byte.
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c] = c - 'a' + 10
		t[c-'a'+'A'] = c - 'a' + 10
	}
	return t
}()

// Unhex returns the value of the hex digit c (either case).
func Unhex(c byte) (byte, bool) {
	v := hexVal[c]
	return v, v != 0xff
}

// Decode returns the byte at s[i], or the byte the escape %XX starting
// there stands for, and the index after it. ok is false when s[i] is a '%'
// not followed by two hex digits; next is then i.
func Decode[T Text](s T, i int) (c byte, next int, ok bool) {
	if s[i] != '%' {
		return s[i], i + 1, true
	}
	return decodeEscape(s, i)
}

// decodeEscape is Decode at a '%'.
func decodeEscape[T Text](s T, i int) (c byte, next int, ok bool) {
	if i+2 >= len(s) {
		return 0, i, false
	}
	hi, lo := hexVal[s[i+1]], hexVal[s[i+2]]
	if hi|lo > 0xf {
		return 0, i, false
	}
	return hi<<4 | lo, i + 3, true
}

// DecodeLenient is Decode that reads a '%' not followed by two hex digits
// as a literal '%'.
func DecodeLenient[T Text](s T, i int) (c byte, next int) {
	if s[i] == '%' {
		if c, next, ok := decodeEscape(s, i); ok {
			return c, next
		}
	}
	return s[i], i + 1
}

// AppendUnescape appends s to dst with every %XX decoded, strictly: ok is
// false, and dst holds what was decoded before it, if a '%' is not
// followed by two hex digits.
func AppendUnescape[T Text](dst []byte, s T) (_ []byte, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if c, _, ok = decodeEscape(s, i); !ok {
				return dst, false
			}
			i += 2
		}
		dst = append(dst, c)
	}
	return dst, true
}

// Valid reports whether every '%' in s starts a %XX escape.
func Valid[T Text](s T) bool {
	for i := 0; i < len(s); {
		if s[i] != '%' {
			i++
			continue
		}
		var ok bool
		if _, i, ok = decodeEscape(s, i); !ok {
			return false
		}
	}
	return true
}
