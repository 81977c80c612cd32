package iothub

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Twin limits (contract §5, current docs).
const (
	MaxTwinKeyLen     = 1024      // bytes of UTF-8 per key
	MaxTwinStringLen  = 4096      // bytes of UTF-8 per string value
	MaxTwinDepth      = 10        // objects and arrays nested below the section (the docs' "one" … "ten" example is valid)
	MaxTwinSectionLen = 32 * 1024 // desired or reported as TwinSectionSize counts it, $-members excluded
	MaxTwinInt        = 4503599627370495
	MinTwinInt        = -4503599627370496
)

// TwinSection is the desired or the reported half of a twin: its members
// (without the read-only "$version" and "$metadata") and its version.
//
// Props hold JSON values as decoded with json.Decoder.UseNumber: nil is
// never stored (null deletes), numbers are json.Number (so integers keep
// their exact digits), objects map[string]any, arrays []any.
type TwinSection struct {
	Version int64
	Props   map[string]any
}

// Twin is a device twin as a device sees it: the desired and reported
// sections (tags and identity fields are service-side only).
type Twin struct {
	Desired  TwinSection
	Reported TwinSection
}

// Clone returns a deep copy of t. Allocates.
func (t Twin) Clone() Twin {
	return Twin{
		Desired:  TwinSection{Version: t.Desired.Version, Props: cloneObject(t.Desired.Props)},
		Reported: TwinSection{Version: t.Reported.Version, Props: cloneObject(t.Reported.Props)},
	}
}

// AppendJSON appends the twin as IoT Hub answers a GET:
// {"desired":{…,"$version":n},"reported":{…,"$version":m}} with no
// $metadata. Member order is sorted, "$version" last. Allocates
// (encoding/json).
func (t Twin) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"desired":`...)
	dst = appendSection(dst, t.Desired.Props, t.Desired.Version)
	dst = append(dst, `,"reported":`...)
	dst = appendSection(dst, t.Reported.Props, t.Reported.Version)
	return append(dst, '}')
}

// appendSection writes props as a JSON object with "$version":v as its last
// member.
func appendSection(dst []byte, props map[string]any, v int64) []byte {
	dst = appendObject(dst, props)
	dst = dst[:len(dst)-1] // drop '}'
	if len(props) > 0 {
		dst = append(dst, ',')
	}
	dst = append(dst, `"$version":`...)
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, '}')
}

// appendObject writes m as compact JSON with sorted keys; a nil map is {}.
// Patches keep their nil (null) members.
func appendObject(dst []byte, m map[string]any) []byte {
	if len(m) == 0 {
		return append(dst, "{}"...)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // write '<', '>' and '&' as IoT Hub does, not as \u003c…
	if err := enc.Encode(m); err != nil {
		// Only values this package decoded are stored, and they always
		// marshal; keep the output valid JSON regardless.
		return append(dst, "{}"...)
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// TwinError says why a twin document or patch was rejected. It matches
// ErrBadRequest (status 400) with errors.Is.
type TwinError struct {
	Path   string // dotted path to the offending member, e.g. "a.b"; "" for the whole document
	Reason string
}

// Error formats the error as "iothub: invalid twin patch at a.b: key contains '$'".
func (e *TwinError) Error() string {
	if e.Path == "" {
		return "iothub: invalid twin patch: " + e.Reason
	}
	return "iothub: invalid twin patch at " + e.Path + ": " + e.Reason
}

// Is reports whether target is ErrBadRequest.
func (e *TwinError) Is(target error) bool { return target == ErrBadRequest }

// decodeJSONObject decodes body as exactly one JSON object, numbers as
// json.Number.
func decodeJSONObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &TwinError{Reason: "malformed JSON: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &TwinError{Reason: "malformed JSON: data after the top-level value"}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &TwinError{Reason: "not a JSON object"}
	}
	return m, nil
}

// ParseTwinPatch decodes and validates a patch a device (reported) or the
// service (desired) sends: one JSON object whose keys and values obey the
// twin limits, null meaning "delete". Keys starting with '$' are rejected,
// as are the other forbidden key characters ('.', space, C0/C1 controls).
// Errors are *TwinError (errors.Is ErrBadRequest). Allocates.
func ParseTwinPatch(body []byte) (map[string]any, error) {
	if len(body) > MaxTwinSectionLen*2 {
		return nil, &TwinError{Reason: "patch larger than " + strconv.Itoa(MaxTwinSectionLen*2) + " bytes"}
	}
	m, err := decodeJSONObject(body)
	if err != nil {
		return nil, err
	}
	if err := validateObject(m, 0, ""); err != nil {
		return nil, err
	}
	return m, nil
}

// ValidateTwinKey checks one member name against the twin key rules: 1–1024
// bytes of valid UTF-8 without '.', '$', space or C0/C1 control characters.
func ValidateTwinKey(k string) error {
	switch {
	case k == "":
		return errors.New("empty key")
	case len(k) > MaxTwinKeyLen:
		return errors.New("key longer than 1024 bytes")
	case !utf8.ValidString(k):
		return errors.New("key is not valid UTF-8")
	}
	for _, r := range k {
		switch {
		case r == '.':
			return errors.New("key contains '.'")
		case r == '$':
			return errors.New("key contains '$'")
		case r == ' ':
			return errors.New("key contains a space")
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			return errors.New("key contains a control character")
		}
	}
	return nil
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// validateObject checks an object at nesting level depth and its members.
// The section (the patch itself) is level 0, an object or array that is one
// of its members level 1, and so on; the device-twins guide's example of
// the deepest valid document nests ten objects below the section, so
// levels up to MaxTwinDepth are allowed.
func validateObject(m map[string]any, depth int, path string) error {
	if depth > MaxTwinDepth {
		return &TwinError{Path: path, Reason: "nesting deeper than 10"}
	}
	for k, v := range m {
		p := joinPath(path, k)
		if err := ValidateTwinKey(k); err != nil {
			return &TwinError{Path: p, Reason: err.Error()}
		}
		if err := validateValue(v, depth, p); err != nil {
			return err
		}
	}
	return nil
}

func validateValue(v any, depth int, path string) error {
	switch x := v.(type) {
	case nil, bool:
		return nil
	case string:
		if len(x) > MaxTwinStringLen {
			return &TwinError{Path: path, Reason: "string longer than 4096 bytes"}
		}
		return nil
	case json.Number:
		return validateNumber(x, path)
	case map[string]any:
		return validateObject(x, depth+1, path)
	case []any:
		if depth+1 > MaxTwinDepth {
			return &TwinError{Path: path, Reason: "nesting deeper than 10"}
		}
		for i, e := range x {
			if err := validateValue(e, depth+1, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		return nil
	}
	return &TwinError{Path: path, Reason: "unsupported value type"}
}

func validateNumber(n json.Number, path string) error {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || i < MinTwinInt || i > MaxTwinInt {
			return &TwinError{Path: path, Reason: "integer outside -4503599627370496..4503599627370495"}
		}
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return &TwinError{Path: path, Reason: "number out of range"}
	}
	return nil
}

// TwinSectionSize returns the size of a twin section as IoT Hub counts it
// against MaxTwinSectionLen (device-twins guide, "Device twin size"): the
// sum, over every member at every level, of the key's length and the
// value's; keys and string values count their UTF-8 bytes without C0/C1
// control characters, numbers 8 bytes, booleans 4, objects the sum of
// their members. Arrays, which the guide predates, count the sum of their
// elements. props holds no "$" members (they are excluded from the count).
func TwinSectionSize(props map[string]any) int {
	n := 0
	for k, v := range props {
		n += twinStringSize(k) + twinValueSize(v)
	}
	return n
}

func twinValueSize(v any) int {
	switch x := v.(type) {
	case string:
		return twinStringSize(x)
	case json.Number, float64:
		return 8
	case bool:
		return 4
	case map[string]any:
		return TwinSectionSize(x)
	case []any:
		n := 0
		for _, e := range x {
			n += twinValueSize(e)
		}
		return n
	}
	return 0 // null: not stored
}

// twinStringSize counts the UTF-8 bytes of s that are not C0 or C1 control
// characters.
func twinStringSize(s string) int {
	n := len(s)
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			n -= utf8.RuneLen(r)
		}
	}
	return n
}

// checkSectionSize returns a *TwinError if an operation takes a section
// from old to new and new is over MaxTwinSectionLen as TwinSectionSize
// counts it. IoT Hub refuses only operations that would increase a section
// past the limit, so one that does not grow it passes.
func checkSectionSize(old, new map[string]any) error {
	n := TwinSectionSize(new)
	if n > MaxTwinSectionLen && n > TwinSectionSize(old) {
		return &TwinError{Reason: "section would be " + strconv.Itoa(n) + " bytes, over 32768"}
	}
	return nil
}

// MergePatch applies a JSON merge patch (RFC 7396) to dst in place and
// returns it (a nil dst is allocated): members whose patch value is null
// are deleted, objects merge recursively, anything else replaces. Values
// are deep-copied from patch, so the two never share structure.
func MergePatch(dst, patch map[string]any) map[string]any {
	if dst == nil {
		dst = make(map[string]any, len(patch))
	}
	for k, pv := range patch {
		if pv == nil {
			delete(dst, k)
			continue
		}
		if po, ok := pv.(map[string]any); ok {
			do, _ := dst[k].(map[string]any)
			dst[k] = MergePatch(do, po)
			continue
		}
		dst[k] = cloneValue(pv)
	}
	return dst
}

// DiffPatch returns the merge patch that turns old into new: members gone
// from new are null, changed members carry their new value, objects present
// in both are diffed recursively. It returns an empty (non-nil) map when
// old and new are equal. Allocates.
func DiffPatch(old, new map[string]any) map[string]any {
	d := make(map[string]any)
	for k := range old {
		if _, ok := new[k]; !ok {
			d[k] = nil
		}
	}
	for k, nv := range new {
		ov, ok := old[k]
		if !ok {
			d[k] = cloneValue(nv)
			continue
		}
		oo, ook := ov.(map[string]any)
		no, nok := nv.(map[string]any)
		if ook && nok {
			if sub := DiffPatch(oo, no); len(sub) > 0 {
				d[k] = sub
			}
			continue
		}
		if !reflect.DeepEqual(ov, nv) {
			d[k] = cloneValue(nv)
		}
	}
	return d
}

func cloneObject(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = cloneValue(v)
	}
	return c
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneObject(x)
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = cloneValue(e)
		}
		return c
	}
	return v
}

// stripDollar removes the top-level "$…" members ($version, $metadata) of
// a section and returns the $version if there was a valid one.
func stripDollar(m map[string]any) (version int64, ok bool) {
	for k, v := range m {
		if !strings.HasPrefix(k, "$") {
			continue
		}
		if k == "$version" {
			if n, isNum := v.(json.Number); isNum {
				if i, err := n.Int64(); err == nil {
					version, ok = i, true
				}
			}
		}
		delete(m, k)
	}
	return version, ok
}

// ParseTwin decodes a twin GET reply body. Both the current shape
// {"desired":{…},"reported":{…}} and the 2017–18 one wrapped in
// {"properties":…} are accepted; "$version" becomes the section's Version,
// "$metadata" and other "$" members are dropped. It is lenient about what
// the hub stores (the hub validated it). Allocates.
func ParseTwin(body []byte) (Twin, error) {
	m, err := decodeJSONObject(body)
	if err != nil {
		return Twin{}, err
	}
	if p, ok := m["properties"].(map[string]any); ok {
		m = p
	}
	var t Twin
	for name, s := range map[string]*TwinSection{"desired": &t.Desired, "reported": &t.Reported} {
		raw, present := m[name]
		if !present {
			s.Props = map[string]any{}
			continue
		}
		obj, ok := raw.(map[string]any)
		if !ok {
			return Twin{}, &TwinError{Path: name, Reason: "not a JSON object"}
		}
		s.Version, _ = stripDollar(obj)
		s.Props = obj
	}
	return t, nil
}

// ParseDesiredPatch decodes the body of a desired-properties notification,
// e.g. {"fw":"1.2","old":null,"$version":8}: the patch without its "$"
// members, and the body's $version if it has one. Allocates.
func ParseDesiredPatch(body []byte) (patch map[string]any, version int64, hasVersion bool, err error) {
	m, err := decodeJSONObject(body)
	if err != nil {
		return nil, 0, false, err
	}
	version, hasVersion = stripDollar(m)
	return m, version, hasVersion, nil
}

// AppendPatchJSON appends patch as compact JSON (sorted keys, null members
// kept) with "$version":version as its last member, the body of a
// desired-properties notification. Allocates (encoding/json).
func AppendPatchJSON(dst []byte, patch map[string]any, version int64) []byte {
	return appendSection(dst, patch, version)
}
