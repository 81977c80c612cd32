package sas

import (
	"encoding/base64"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

const (
	// Prefix starts every token; exactly one space follows it.
	Prefix = "SharedAccessSignature"

	// MaxClockSkew is how long after its expiry a token is still accepted,
	// edgeHub's allowance for clock drift between device and hub.
	MaxClockSkew = 5 * time.Minute

	// maxExpiry is 9999-12-31T23:59:59Z; later se values are rejected so
	// that time arithmetic on Expiry can never overflow.
	maxExpiry = 253402300799

	// sigLen is the length of a base64 HMAC-SHA256 (32 bytes, padded).
	sigLen = 44
)

// strictBase64 rejects non-zero padding bits, so one signature has one text.
// (Encoding.Strict returns a fresh copy; keep one.)
var strictBase64 = base64.StdEncoding.Strict()

// Token is a shared access signature token:
//
//	SharedAccessSignature sr={EncodedResource}&sig={pct(Signature)}&se={Expiry}[&skn={pct(KeyName)}]
//
// A Token is a plain value, safe to copy and to share between goroutines;
// ParseToken and NewToken set Expiry in UTC, so their results compare with ==.
// Its String method returns the credential itself (it is the MQTT password);
// its LogValue hides the signature, so slog never logs a usable token.
type Token struct {
	// EncodedResource is the sr field exactly as it appears in the token:
	// the resource URI, percent-encoded (again). The signature covers these
	// bytes, so they are kept as sent, escape case included; Resource
	// decodes them.
	EncodedResource string

	// Signature is the base64 HMAC-SHA256, with the sig field's own
	// percent-encoding removed.
	Signature string

	// Expiry is the se field: the token is valid until Expiry (plus
	// MaxClockSkew). Only whole seconds count.
	Expiry time.Time

	// KeyName is the decoded skn field: the shared access policy whose key
	// signed the token, or "" for a device or module key.
	KeyName string
}

// NewToken signs a token for the resource URI resource (as DeviceResource or
// ModuleResource return it; NewToken escapes it once more for sr) with the
// raw key bytes. keyName is the policy name for a policy key and "" for a
// device or module key. expiry is truncated to whole seconds. Allocates the
// token's two strings (sr and sig).
func NewToken(resource string, key []byte, keyName string, expiry time.Time) Token {
	var srBuf [256]byte // most resources fit; the string is then the only allocation
	sr := string(appendEscaped(srBuf[:0], resource))
	sec := expiry.Unix()
	var mac [macLen]byte
	var digits [20]byte
	macInto(&mac, key, sr, strconv.AppendInt(digits[:0], sec, 10))
	var sig [sigLen]byte
	base64.StdEncoding.Encode(sig[:], mac[:])
	return Token{
		EncodedResource: sr,
		Signature:       string(sig[:]),
		Expiry:          time.Unix(sec, 0).UTC(),
		KeyName:         keyName,
	}
}

// NewTokenBase64 is NewToken with the key given in base64, as it appears in
// connection strings and the IoT Hub registry. It returns ErrInvalidKey if
// the key does not decode.
func NewTokenBase64(resource, key, keyName string, expiry time.Time) (Token, error) {
	k, err := DecodeKey(key)
	if err != nil {
		return Token{}, err
	}
	return NewToken(resource, k, keyName, expiry), nil
}

// DecodeKey decodes a base64 (standard alphabet, padded) shared access key.
// It returns ErrInvalidKey, without quoting the key, if s is empty or not
// base64. Allocates.
func DecodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, ErrInvalidKey
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) == 0 {
		return nil, ErrInvalidKey
	}
	return k, nil
}

// Resource returns EncodedResource with one level of percent-encoding
// removed: the resource URI, e.g. "myhub.azure-devices.net/devices/dev%231".
// Allocates when sr holds an escape.
func (t Token) Resource() (string, error) {
	return Unescape(t.EncodedResource)
}

// String returns the token text, fields in the order sr, sig, se, skn. It
// is the credential: do not log it (log the Token through slog instead).
func (t Token) String() string {
	var buf [256]byte // most tokens fit; then the string is the only allocation
	return string(t.appendTo(buf[:0]))
}

// AppendText appends the token text to b (encoding.TextAppender), so a
// client can write the MQTT password without an intermediate string. It
// returns ErrMalformed if the token could not be parsed back: an empty or
// badly escaped resource, a signature that is not base64 of 32 bytes, or
// an expiry before 1970 or after 9999.
func (t Token) AppendText(b []byte) ([]byte, error) {
	if err := t.check(); err != nil {
		return b, err
	}
	return t.appendTo(b), nil
}

func (t Token) appendTo(b []byte) []byte {
	b = append(b, Prefix...)
	b = append(b, " sr="...)
	b = append(b, t.EncodedResource...)
	b = append(b, "&sig="...)
	b = appendEscaped(b, t.Signature)
	b = append(b, "&se="...)
	b = strconv.AppendInt(b, t.Expiry.Unix(), 10)
	if t.KeyName != "" {
		b = append(b, "&skn="...)
		b = appendEscaped(b, t.KeyName)
	}
	return b
}

// check reports ErrMalformed for a Token that String would not write in a
// form ParseToken accepts.
func (t Token) check() error {
	if t.EncodedResource == "" || !validEscapes(t.EncodedResource) || !printable(t.EncodedResource) {
		return ErrMalformed
	}
	if se := t.Expiry.Unix(); se < 0 || se > maxExpiry {
		return ErrMalformed
	}
	var raw [macLen + 2]byte
	if !decodeSig(&raw, t.Signature) {
		return ErrMalformed
	}
	return nil
}

// LogValue shows the token with its signature hidden, for log/slog.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("sr", t.EncodedResource),
		slog.String("sig", redacted),
		slog.Int64("se", t.Expiry.Unix()),
		slog.String("skn", t.KeyName),
	)
}

// printable reports whether s is all printable ASCII other than space: the
// only bytes a token's fields can hold once percent-encoded.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// ParseToken parses a token strictly, per the IoT Hub contract: the text is
// "SharedAccessSignature" and exactly one space, then '&'-separated
// name=value pairs (split on the first '='), in any order. sr, sig and se
// are required, skn optional; an unknown or repeated field is an error, and
// so is an empty one other than skn (the Azure IoT C SDK writes "&skn=" with
// no value for device keys, which reads as KeyName ""), as are bytes outside printable ASCII, a broken %XX escape, a sig
// that is not base64 of 32 bytes, and an se that is not a canonical decimal
// number of seconds between 1970 and 9999. sr is kept raw (the signature
// covers it as sent); sig and skn are decoded. Every error is a *ParseError
// matching ErrMalformed. Allocates only for a sig or skn that holds escapes.
func ParseToken(s string) (Token, error) {
	rest, ok := strings.CutPrefix(s, Prefix+" ")
	if !ok {
		return Token{}, tokenError("", "does not start with \"SharedAccessSignature \"")
	}
	if !printable(rest) {
		return Token{}, tokenError("", "holds a space, control or non-ASCII byte")
	}
	if rest == "" {
		return Token{}, tokenError("", "has no fields")
	}
	var t Token
	var seen [4]bool // indexed like fieldNames
	for more := true; more; {
		var pair string
		pair, rest, more = strings.Cut(rest, "&")
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			return Token{}, tokenError("", "a field has no '='")
		}
		idx := fieldIndex(name)
		if idx < 0 {
			if !plainName(name) {
				return Token{}, tokenError("", "unknown field (not shown: it may hold a secret)")
			}
			return Token{}, tokenError(name, "unknown field")
		}
		if seen[idx] {
			return Token{}, tokenError(name, "repeated")
		}
		seen[idx] = true
		if value == "" && idx != 3 {
			// An empty skn is a device or module key's token as the C SDK
			// writes it (it always appends "&skn=" and passes "" for
			// device keys); every other field needs a value.
			return Token{}, tokenError(name, "empty")
		}
		if !validEscapes(value) {
			return Token{}, tokenError(name, "'%' not followed by two hex digits")
		}
		switch idx {
		case 0:
			t.EncodedResource = value
		case 1:
			sig, _ := Unescape(value)
			var raw [macLen + 2]byte
			if !decodeSig(&raw, sig) {
				return Token{}, tokenError(name, "not base64 of 32 bytes")
			}
			t.Signature = sig
		case 2:
			sec, ok := parseSeconds(value)
			if !ok {
				return Token{}, tokenError(name, "not a decimal number of seconds from 1970 to 9999")
			}
			t.Expiry = time.Unix(sec, 0).UTC()
		case 3:
			t.KeyName, _ = Unescape(value)
		}
	}
	for i, name := range fieldNames[:3] {
		if !seen[i] {
			return Token{}, tokenError(name, "missing")
		}
	}
	return t, nil
}

var fieldNames = [4]string{"sr", "sig", "se", "skn"}

func fieldIndex(name string) int {
	for i, n := range fieldNames {
		if name == n {
			return i
		}
	}
	return -1
}

// parseSeconds accepts the decimal digits of 0..maxExpiry without sign or
// leading zeros, since the signature covers se as written and String must
// write it back the same.
func parseSeconds(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 12 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n <= maxExpiry
}

// decodeSig decodes a base64 signature into raw and reports whether it is
// exactly 32 bytes of padded standard base64. It does not allocate.
func decodeSig(raw *[macLen + 2]byte, sig string) bool {
	if len(sig) != sigLen {
		return false
	}
	var src [sigLen]byte
	copy(src[:], sig)
	n, err := strictBase64.Decode(raw[:], src[:])
	return err == nil && n == macLen
}
