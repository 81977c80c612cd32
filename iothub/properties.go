package iothub

import (
	"bytes"

	"github.com/hubwire/hubwire/internal/percent"
)

// A property bag is the query-string part of a telemetry, C2D or module-input
// topic: k1=v1&k2=v2 (contract §3, §4). Keys and values are percent-encoded;
// a space is %20 and never '+', and a '+' read from a bag stays '+'. A key
// alone ("k") is a null value, "k=" an empty one. Keys beginning "$." (sent as
// "%24." by the SDKs; both spellings are accepted) name system properties,
// and so does "iothub-ack" on C2D; every other key is an application property.

// SysProp names a system property of a message.
type SysProp uint8

// System properties, in the order AppendBag writes them.
const (
	SysNone            SysProp = iota // not a system property
	SysMessageID                      // $.mid: message-id
	SysCorrelationID                  // $.cid: correlation-id
	SysUserID                         // $.uid: user-id
	SysContentType                    // $.ct: content-type
	SysContentEncoding                // $.ce: content-encoding
	SysCreationTime                   // $.ctime: iothub-creation-time-utc
	SysExpiry                         // $.exp: absolute-expiry-time
	SysTo                             // $.to: to
	SysSchema                         // $.schema: iothub-message-schema
	SysSubject                        // $.sub: dt-subject (PnP component)
	SysInterfaceID                    // $.ifid: iothub-interface-id
	SysOutputName                     // $.on: output name (Edge modules)
	SysDiagID                         // $.diagid: diagnostics id
	SysDiagContext                    // $.diagctx: diagnostics context
	SysAck                            // iothub-ack: none|positive|negative|full (C2D)
	numSysProps
)

// sysKeys holds the decoded key of each system property.
var sysKeys = [numSysProps]string{
	SysMessageID:       "$.mid",
	SysCorrelationID:   "$.cid",
	SysUserID:          "$.uid",
	SysContentType:     "$.ct",
	SysContentEncoding: "$.ce",
	SysCreationTime:    "$.ctime",
	SysExpiry:          "$.exp",
	SysTo:              "$.to",
	SysSchema:          "$.schema",
	SysSubject:         "$.sub",
	SysInterfaceID:     "$.ifid",
	SysOutputName:      "$.on",
	SysDiagID:          "$.diagid",
	SysDiagContext:     "$.diagctx",
	SysAck:             "iothub-ack",
}

// wireKeys holds the encoded key of each system property as the SDKs send it.
var wireKeys = [numSysProps]string{
	SysMessageID:       "%24.mid",
	SysCorrelationID:   "%24.cid",
	SysUserID:          "%24.uid",
	SysContentType:     "%24.ct",
	SysContentEncoding: "%24.ce",
	SysCreationTime:    "%24.ctime",
	SysExpiry:          "%24.exp",
	SysTo:              "%24.to",
	SysSchema:          "%24.schema",
	SysSubject:         "%24.sub",
	SysInterfaceID:     "%24.ifid",
	SysOutputName:      "%24.on",
	SysDiagID:          "%24.diagid",
	SysDiagContext:     "%24.diagctx",
	SysAck:             "iothub-ack",
}

// Key returns the decoded key of p, e.g. "$.mid", or "" for SysNone.
func (p SysProp) Key() string {
	if p < numSysProps {
		return sysKeys[p]
	}
	return ""
}

// String returns p's key, or "SysNone".
func (p SysProp) String() string {
	if p == SysNone || p >= numSysProps {
		return "SysNone"
	}
	return sysKeys[p]
}

// ClassifyKey returns the system property a raw (still percent-encoded) bag
// key names, or SysNone. "$.mid" and "%24.mid" both give SysMessageID;
// matching is case-sensitive. It does not allocate.
func ClassifyKey(rawKey []byte) SysProp {
	key := rawKey
	// buf holds the decoded key. No system key is longer than 10 bytes, so
	// no spelling of one is longer than 30: longer keys are not system keys,
	// and shorter ones always fit, so AppendUnescape never grows buf (which
	// therefore stays on the stack).
	var buf [32]byte
	if bytes.IndexByte(rawKey, '%') >= 0 {
		if len(rawKey) > len(buf) {
			return SysNone
		}
		key = AppendUnescape(buf[:0], rawKey)
	}
	if len(key) > 2 && key[0] == '$' && key[1] == '.' {
		return sysByName(key[2:])
	}
	if string(key) == "iothub-ack" {
		return SysAck
	}
	return SysNone
}

// sysByName maps the part of a system key after "$." to its SysProp.
func sysByName(name []byte) SysProp {
	switch string(name) {
	case "mid":
		return SysMessageID
	case "cid":
		return SysCorrelationID
	case "uid":
		return SysUserID
	case "ct":
		return SysContentType
	case "ce":
		return SysContentEncoding
	case "ctime":
		return SysCreationTime
	case "exp":
		return SysExpiry
	case "to":
		return SysTo
	case "schema":
		return SysSchema
	case "sub":
		return SysSubject
	case "ifid":
		return SysInterfaceID
	case "on":
		return SysOutputName
	case "diagid":
		return SysDiagID
	case "diagctx":
		return SysDiagContext
	}
	return SysNone
}

// keyIs reports whether the raw bag key k decodes to s; the common
// unencoded spelling is compared directly.
func keyIs(k []byte, s string) bool {
	if string(k) == s {
		return true
	}
	return bytes.IndexByte(k, '%') >= 0 && unescapedEqual(k, s)
}

// Pair is one raw key/value pair of a property bag, still percent-encoded.
// Key and Value alias the bag.
type Pair struct {
	Key      []byte
	Value    []byte
	HasValue bool // false for a bare key ("k"), which means a null value
}

// BagIter walks a raw property bag pair by pair without allocating. Empty
// segments ("a=1&&b=2") are skipped. The zero BagIter is an empty bag.
type BagIter struct {
	rest []byte
	err  error
}

// ScanBag returns an iterator over bag. One leading '?' is skipped (a docs
// example shows it; real traffic has none).
func ScanBag(bag []byte) BagIter {
	if len(bag) > 0 && bag[0] == '?' {
		bag = bag[1:]
	}
	return BagIter{rest: bag}
}

// Next returns the next pair. It returns ok == false at the end of the bag or
// at a pair with an empty key ("=v"); Err tells the two apart.
func (it *BagIter) Next() (p Pair, ok bool) {
	for len(it.rest) > 0 {
		seg := it.rest
		if i := bytes.IndexByte(seg, '&'); i >= 0 {
			seg, it.rest = seg[:i], seg[i+1:]
		} else {
			it.rest = nil
		}
		if len(seg) == 0 {
			continue
		}
		if i := bytes.IndexByte(seg, '='); i >= 0 {
			p = Pair{Key: seg[:i], Value: seg[i+1:], HasValue: true}
		} else {
			p = Pair{Key: seg}
		}
		if len(p.Key) == 0 {
			it.rest, it.err = nil, ErrMalformedBag
			return Pair{}, false
		}
		return p, true
	}
	return Pair{}, false
}

// Err returns ErrMalformedBag if iteration stopped at a pair with an empty
// key, and nil otherwise.
func (it *BagIter) Err() error { return it.err }

// LookupBag returns the raw value of the first pair whose decoded key is key.
// found is false when the key is absent; a bare key is found with a nil value.
// It does not allocate.
func LookupBag(bag []byte, key string) (value []byte, found bool) {
	it := ScanBag(bag)
	for p, ok := it.Next(); ok; p, ok = it.Next() {
		if keyIs(p.Key, key) {
			return p.Value, true
		}
	}
	return nil, false
}

// unreserved marks the bytes written as-is by AppendEscape: RFC 3986
// unreserved characters. Everything else is percent-encoded, uppercase hex.
var unreserved = percent.NewSet("-._~")

// AppendEscape appends s percent-encoded for a property bag: RFC 3986
// unreserved characters as-is, every other byte as %XX (space is %20, '+'
// is %2B). It does not allocate when cap(dst) suffices.
func AppendEscape[T ~string | ~[]byte](dst []byte, s T) []byte {
	return percent.AppendEscape(dst, s, unreserved)
}

// nextUnescaped decodes one byte of raw starting at i and returns it with
// the index of the following byte. A '%' not followed by two hex digits is
// kept literally, as .NET's Uri.UnescapeDataString (used by the hub) does;
// '+' stays '+'.
func nextUnescaped(raw []byte, i int) (byte, int) {
	return percent.DecodeLenient(raw, i)
}

// AppendUnescape appends raw percent-decoded. '+' is kept as '+'; a '%' not
// followed by two hex digits is kept literally. It does not allocate when
// cap(dst) suffices.
func AppendUnescape(dst, raw []byte) []byte {
	if bytes.IndexByte(raw, '%') < 0 {
		return append(dst, raw...)
	}
	for i := 0; i < len(raw); {
		var c byte
		c, i = nextUnescaped(raw, i)
		dst = append(dst, c)
	}
	return dst
}

// Unescape returns raw percent-decoded as a string. Allocates.
func Unescape(raw []byte) string {
	if bytes.IndexByte(raw, '%') < 0 {
		return string(raw)
	}
	var buf [128]byte
	return string(AppendUnescape(buf[:0], raw))
}

// unescapedEqual reports whether raw, percent-decoded, equals s.
func unescapedEqual(raw []byte, s string) bool {
	j := 0
	for i := 0; i < len(raw); {
		var c byte
		c, i = nextUnescaped(raw, i)
		if j >= len(s) || s[j] != c {
			return false
		}
		j++
	}
	return j == len(s)
}

// AppendPair appends key=value to a property bag being built in dst,
// percent-encoding both. It writes a '&' first unless dst is empty or ends
// in '/' or '?', which is where every bag in a topic starts. It does not
// allocate when cap(dst) suffices.
func AppendPair[K, V ~string | ~[]byte](dst []byte, key K, value V) []byte {
	dst = appendSep(dst)
	dst = AppendEscape(dst, key)
	dst = append(dst, '=')
	return AppendEscape(dst, value)
}

// AppendNullPair appends a bare key (a null value) to a bag in dst; see
// AppendPair for the separator rule.
func AppendNullPair[K ~string | ~[]byte](dst []byte, key K) []byte {
	return AppendEscape(appendSep(dst), key)
}

func appendSep(dst []byte) []byte {
	if n := len(dst); n > 0 && dst[n-1] != '/' && dst[n-1] != '?' {
		dst = append(dst, '&')
	}
	return dst
}

// Property is one decoded application property.
type Property struct {
	Key   string
	Value string
	Null  bool // the key had no '=' (a null value); Value is then ""
}

// Properties are the decoded properties of a telemetry, C2D or module-input
// message: the system properties as named fields and the application
// properties in bag order. An empty system field means "absent"; a system
// property that arrives null or empty decodes as absent.
//
// The zero value is empty and ready to use.
type Properties struct {
	MessageID       string // $.mid
	CorrelationID   string // $.cid
	UserID          string // $.uid
	ContentType     string // $.ct, e.g. "application/json"
	ContentEncoding string // $.ce, e.g. "utf-8"
	CreationTime    string // $.ctime, ISO-8601 UTC
	Expiry          string // $.exp, ISO-8601
	To              string // $.to
	Schema          string // $.schema
	Subject         string // $.sub (PnP component)
	InterfaceID     string // $.ifid
	OutputName      string // $.on (Edge modules)
	DiagID          string // $.diagid
	DiagContext     string // $.diagctx
	Ack             string // iothub-ack on C2D: none, positive, negative or full

	// App holds the application properties in bag order. Keys must not be
	// system keys ("$.mid", "iothub-ack", …): those are written but read back
	// into the named fields.
	App []Property
}

// sys returns a pointer to the field of p that holds system property k.
func (p *Properties) sys(k SysProp) *string {
	switch k {
	case SysMessageID:
		return &p.MessageID
	case SysCorrelationID:
		return &p.CorrelationID
	case SysUserID:
		return &p.UserID
	case SysContentType:
		return &p.ContentType
	case SysContentEncoding:
		return &p.ContentEncoding
	case SysCreationTime:
		return &p.CreationTime
	case SysExpiry:
		return &p.Expiry
	case SysTo:
		return &p.To
	case SysSchema:
		return &p.Schema
	case SysSubject:
		return &p.Subject
	case SysInterfaceID:
		return &p.InterfaceID
	case SysOutputName:
		return &p.OutputName
	case SysDiagID:
		return &p.DiagID
	case SysDiagContext:
		return &p.DiagContext
	case SysAck:
		return &p.Ack
	}
	return nil
}

// Get returns the value of system property k ("" when absent).
func (p *Properties) Get(k SysProp) string {
	if f := p.sys(k); f != nil {
		return *f
	}
	return ""
}

// Set sets system property k; "" removes it. Set(SysNone, …) does nothing.
func (p *Properties) Set(k SysProp, v string) {
	if f := p.sys(k); f != nil {
		*f = v
	}
}

// Add appends an application property.
func (p *Properties) Add(key, value string) {
	p.App = append(p.App, Property{Key: key, Value: value})
}

// Lookup returns the value of the first application property named key.
func (p *Properties) Lookup(key string) (value string, ok bool) {
	for _, a := range p.App {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// Reset empties p, keeping the capacity of App.
func (p *Properties) Reset() {
	app := p.App[:0]
	*p = Properties{App: app}
}

// AppendBag appends p as a percent-encoded property bag: the system
// properties in SysProp order with the SDKs' "%24." spelling, then the
// application properties in order. See AppendPair for the separator rule.
// It does not allocate when cap(dst) suffices.
func (p *Properties) AppendBag(dst []byte) []byte { return p.appendBag(dst, false) }

// appendHubBag is AppendBag for a bag the hub sends (C2D, module input): a
// null application property is written "k=" (empty), never as a bare key,
// which the Node SDK reads as the string "undefined" and the Python SDK
// fails on.
func (p *Properties) appendHubBag(dst []byte) []byte { return p.appendBag(dst, true) }

func (p *Properties) appendBag(dst []byte, noNull bool) []byte {
	for k := SysMessageID; k < numSysProps; k++ {
		v := *p.sys(k)
		if v == "" {
			continue
		}
		dst = appendSep(dst)
		dst = append(dst, wireKeys[k]...)
		dst = append(dst, '=')
		dst = AppendEscape(dst, v)
	}
	for _, a := range p.App {
		if a.Null && !noNull {
			dst = AppendNullPair(dst, a.Key)
		} else {
			dst = AppendPair(dst, a.Key, a.Value)
		}
	}
	return dst
}

// Parse replaces p's contents with the decoded bag of a hub → device
// message (C2D or module input), where iothub-ack is a system property. A
// later duplicate of a system property wins; application properties keep
// every pair in order. It returns ErrMalformedBag for a pair with an empty
// key. Allocates the decoded strings.
func (p *Properties) Parse(bag []byte) error { return p.parse(bag, false) }

// ParseD2C is Parse for the bag of a device's telemetry (contract §3): the
// "$." keys a device may set are system properties, and every other key is
// an application property, iothub-ack included (only the hub sets it, on
// C2D). The emulator decodes device publishes with it.
func (p *Properties) ParseD2C(bag []byte) error { return p.parse(bag, true) }

func (p *Properties) parse(bag []byte, d2c bool) error {
	p.Reset()
	it := ScanBag(bag)
	for pr, ok := it.Next(); ok; pr, ok = it.Next() {
		if k := ClassifyKey(pr.Key); k != SysNone && !(d2c && k == SysAck) {
			*p.sys(k) = Unescape(pr.Value)
			continue
		}
		a := Property{Key: Unescape(pr.Key), Null: !pr.HasValue}
		if pr.HasValue {
			a.Value = Unescape(pr.Value)
		}
		p.App = append(p.App, a)
	}
	return it.Err()
}

// ParseProperties decodes a property bag. Allocates.
func ParseProperties(bag []byte) (Properties, error) {
	var p Properties
	err := p.Parse(bag)
	return p, err
}

// CountedSize returns the bytes of p that count toward a D2C message's
// 256 KB limit (contract §3): the system-property values plus the
// application-property names and values, decoded.
func (p *Properties) CountedSize() int {
	n := 0
	for k := SysMessageID; k < numSysProps; k++ {
		n += len(*p.sys(k))
	}
	for _, a := range p.App {
		n += len(a.Key) + len(a.Value)
	}
	return n
}
