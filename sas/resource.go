package sas

import "github.com/hubwire/hubwire/internal/percent"

// Escaping follows .NET's WebUtility.UrlEncode, which the C# device SDK and
// edgeHub use both for the ids inside a resource URI and for the whole URI
// in sr: ASCII letters, digits and - _ . ! * ( ) pass through, every other
// byte of the UTF-8 text becomes %XX with upper-case hex. For the characters
// IoT Hub allows in ids that means
//
//	kept:    - . _ * ! ( )
//	encoded: : %3A  + %2B  %% %25  # %23  ? %3F  , %2C  = %3D  @ %40
//	         ; %3B  $ %24  ' %27
//
// and in the second pass '/' becomes %2F and every '%' from the first pass
// becomes %25 (vector V5: dev#1 → dev%231 → dev%25231). The one deliberate
// difference from WebUtility is the space, which we write as %20 rather than
// '+': ids cannot hold a space, and our decoder reads '+' as a literal plus,
// so %20 keeps our own output round-tripping. Other SDKs escape a little
// differently (the Node SDK keeps ~ and writes ! ' ( ) * as lower-case
// %21 %27 %28 %29 %2a, Go's QueryEscape encodes ! * ( ), C writes
// lower-case hex). The signature covers sr exactly
// as sent, so all of them verify; ResourceCovers compares decoded segments,
// so scope checks do not depend on which characters a client chose to
// escape, nor on whether it escaped the ids inside the URI at all (the Node
// SDK does not).

// escapeKeep marks the bytes WebUtility.UrlEncode leaves as they are.
var escapeKeep = percent.NewSet("-_.!*()")

// text is what the decoding helpers read: a string or a byte slice, so a
// buffer on the caller's stack can be decoded without a conversion.
type text = percent.Text

// escapedLen returns the length of s after escaping.
func escapedLen(s string) int { return percent.EscapedLen(s, escapeKeep) }

// appendEscaped appends s percent-encoded as described above.
func appendEscaped(dst []byte, s string) []byte { return percent.AppendEscape(dst, s, escapeKeep) }

// Escape percent-encodes s the way IoT Hub SDKs encode ids and resource
// URIs (see the package documentation for the exact set). Allocates.
func Escape(s string) string {
	n := escapedLen(s)
	if n == len(s) {
		return s
	}
	return string(appendEscaped(make([]byte, 0, n), s))
}

// appendUnescaped appends s with every %XX decoded (either hex case). A '+'
// stays a '+'. ok is false if a '%' is not followed by two hex digits.
func appendUnescaped[T text](dst []byte, s T) (_ []byte, ok bool) {
	return percent.AppendUnescape(dst, s)
}

// validEscapes reports whether every '%' in s starts a %XX escape.
func validEscapes(s string) bool { return percent.Valid(s) }

// Unescape decodes every %XX in s. Unlike url.QueryUnescape it leaves '+'
// alone: a '+' in an id is always sent as %2B. It returns ErrMalformed if a
// '%' is not followed by two hex digits. Allocates when s holds an escape.
func Unescape(s string) (string, error) {
	i := 0
	for i < len(s) && s[i] != '%' {
		i++
	}
	if i == len(s) {
		return s, nil
	}
	var buf [128]byte // a sig or skn fits; the string is then the only allocation
	b, ok := appendUnescaped(buf[:0], s)
	if !ok {
		return "", &ParseError{What: "percent-encoding", Reason: "'%' not followed by two hex digits", Err: ErrMalformed}
	}
	return string(b), nil
}

// Identity names a device, or a module of a device, of one hub: what a SAS
// token signed with a device or module key stands for, and what
// Token.VerifyIdentity checks a token's scope against. The ids are raw, as
// in the registry and the MQTT client id ("dev#1", not "dev%231").
type Identity struct {
	Host     string // the hub's host name, e.g. "myhub.azure-devices.net"
	DeviceID string
	ModuleID string // "" for the device itself
}

// Resource returns the identity's resource URI as this package signs it,
// with the ids escaped (the C# SDK's and edgeHub's form): DeviceResource or
// ModuleResource. Allocates.
func (id Identity) Resource() string {
	return string(id.appendResource(make([]byte, 0, id.resourceLen())))
}

const devicesSeg, modulesSeg = "/devices/", "/modules/"

// resourceLen returns the length of the identity's resource URI.
func (id Identity) resourceLen() int {
	n := len(id.Host) + len(devicesSeg) + escapedLen(id.DeviceID)
	if id.ModuleID != "" {
		n += len(modulesSeg) + escapedLen(id.ModuleID)
	}
	return n
}

// appendResource appends the identity's resource URI to b.
func (id Identity) appendResource(b []byte) []byte {
	b = append(b, id.Host...)
	b = append(b, devicesSeg...)
	b = appendEscaped(b, id.DeviceID)
	if id.ModuleID != "" {
		b = append(b, modulesSeg...)
		b = appendEscaped(b, id.ModuleID)
	}
	return b
}

// DeviceResource returns the resource URI of a device identity,
// "{host}/devices/{Escape(deviceID)}", e.g.
// "myhub.azure-devices.net/devices/dev%231" for the id "dev#1". NewToken
// escapes this whole URI once more to make the sr field. Allocates.
func DeviceResource(host, deviceID string) string {
	return Identity{Host: host, DeviceID: deviceID}.Resource()
}

// ModuleResource returns the resource URI of a module identity,
// "{host}/devices/{Escape(deviceID)}/modules/{Escape(moduleID)}". An empty
// moduleID gives "{host}/devices/{Escape(deviceID)}/modules/". Allocates.
func ModuleResource(host, deviceID, moduleID string) string {
	if moduleID == "" {
		return DeviceResource(host, deviceID) + modulesSeg
	}
	return Identity{Host: host, DeviceID: deviceID, ModuleID: moduleID}.Resource()
}

// ResourceCovers reports whether the resource URI scope grants access to the
// resource URI resource: scope must be a prefix of resource by whole path
// segments, so "h/devices/a" covers "h/devices/a/modules/m" but not
// "h/devices/ab". resource is a resource URI as DeviceResource returns it
// (ids escaped once); scope is a token's decoded sr, which SDKs write in one
// of two forms: C# and edgeHub escape the ids inside it, as DeviceResource
// does ("h/devices/dev%231" for the id "dev#1"), while the Node SDK leaves
// them raw ("h/devices/dev#1"). A scope segment matches a resource segment
// when it equals the decoded id, or when its own decoding does, so both
// forms cover the same identity, whichever characters the SDK chose to
// escape ("dev%28" and "dev(" are the same id), and an escaped '/' is never
// a separator. The one ambiguity is inherent: "a%41" in a scope is the raw
// id "a%41" or the escaped id "aA", so it covers both; only a holder of a
// policy key, who may sign for either anyway, can make such a token for a
// device other than its own. The first segment, the host, compares
// case-insensitively (ASCII); the others case-sensitively, as IoT Hub ids
// are. A single trailing '/' on scope is ignored. An empty scope covers
// nothing, and a resource segment with a broken escape matches nothing.
// ResourceCovers does not allocate.
func ResourceCovers(scope, resource string) bool {
	return covers(scope, resource)
}

// covers is ResourceCovers for a scope and resource held in byte slices or
// strings.
func covers[S, R text](scope S, resource R) bool {
	if len(scope) > 0 && scope[len(scope)-1] == '/' {
		scope = scope[:len(scope)-1]
	}
	if len(scope) == 0 {
		return false
	}
	first := true
	for {
		ss, srest, smore := cutSlash(scope)
		rs, rrest, rmore := cutSlash(resource)
		if first {
			if !segmentEqual(ss, rs, true, true) {
				return false
			}
		} else if !segmentEqual(ss, rs, true, false) && !segmentEqual(ss, rs, false, false) {
			return false
		}
		if !smore {
			return true
		}
		if !rmore {
			return false // scope is longer than resource
		}
		scope, resource, first = srest, rrest, false
	}
}

// cutSlash splits s at its first '/'.
func cutSlash[T text](s T) (before, after T, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, s[len(s):], false
}

// segmentEqual compares segment a, decoded when decodeA is set and taken
// as raw bytes otherwise, with the decoded escaped segment b, without
// building either; fold makes ASCII letters compare case-insensitively.
func segmentEqual[A, B text](a A, b B, decodeA, fold bool) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, cb := a[i], b[j]
		if ca == cb && ca != '%' { // the common case: same plain byte
			i++
			j++
			continue
		}
		var ok bool
		if decodeA {
			if ca, i, ok = percent.Decode(a, i); !ok {
				return false
			}
		} else {
			i++
		}
		if cb, j, ok = percent.Decode(b, j); !ok {
			return false
		}
		if ca != cb && (!fold || lower(ca) != lower(cb)) {
			return false
		}
	}
	return i == len(a) && j == len(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
