package iothub

import (
	"bytes"
	"math"
	"strconv"
)

// Subscription filters a device or module uses (contract §7). They are the
// only filters IoT Hub accepts besides the per-identity ones built by
// AppendC2DFilter and AppendModuleFilter.
const (
	TwinResponseFilter = "$iothub/twin/res/#"
	TwinDesiredFilter  = "$iothub/twin/PATCH/properties/desired/#"
	MethodsFilter      = "$iothub/methods/POST/#"
)

// MaxTopicLen is the longest MQTT topic name: its length is a 16-bit field.
const MaxTopicLen = 65535

// MaxIDLen is the longest device or module id IoT Hub accepts.
const MaxIDLen = 128

// MaxSubscriptions is the documented limit of subscriptions per connection
// (contract §7). What the hub does with a sixth is unconfirmed; closing the
// connection is the safe choice for an emulator.
const MaxSubscriptions = 5

// RouteKind classifies a topic.
type RouteKind uint8

// Route kinds. The comment gives the topic and who publishes it.
const (
	RouteUnknown           RouteKind = iota
	RouteTelemetry                   // devices/{d}[/modules/{m}]/messages/events/{bag}: device → hub
	RouteC2D                         // devices/{d}/messages/devicebound/{bag}: hub → device
	RouteModuleInput                 // devices/{d}/modules/{m}/inputs/{input}/{bag}: hub → module
	RouteTwinGet                     // $iothub/twin/GET/?$rid={rid}: device → hub
	RouteTwinPatchReported           // $iothub/twin/PATCH/properties/reported/?$rid={rid}: device → hub
	RouteTwinDesired                 // $iothub/twin/PATCH/properties/desired/?$version={v}: hub → device
	RouteTwinResponse                // $iothub/twin/res/{status}/?$rid={rid}[&$version={v}]: hub → device
	RouteMethodRequest               // $iothub/methods/POST/{name}/?$rid={rid}: hub → device
	RouteMethodResponse              // $iothub/methods/res/{status}/?$rid={rid}: device → hub
	numRouteKinds
)

var routeKindNames = [numRouteKinds]string{
	RouteUnknown:           "unknown",
	RouteTelemetry:         "telemetry",
	RouteC2D:               "c2d",
	RouteModuleInput:       "module-input",
	RouteTwinGet:           "twin-get",
	RouteTwinPatchReported: "twin-patch-reported",
	RouteTwinDesired:       "twin-desired",
	RouteTwinResponse:      "twin-response",
	RouteMethodRequest:     "method-request",
	RouteMethodResponse:    "method-response",
}

// String returns a short name such as "twin-response".
func (k RouteKind) String() string {
	if k < numRouteKinds {
		return routeKindNames[k]
	}
	return "RouteKind(" + strconv.Itoa(int(k)) + ")"
}

// FromDevice reports whether devices publish topics of kind k (and so
// whether the hub receives them).
func (k RouteKind) FromDevice() bool {
	switch k {
	case RouteTelemetry, RouteTwinGet, RouteTwinPatchReported, RouteMethodResponse:
		return true
	}
	return false
}

// PublishableBy reports whether the identity deviceID (moduleID empty) or
// deviceID/moduleID may publish a topic parsed into r (contract §7): its own
// telemetry, twin GET and reported PATCH, and method replies. Anything else
// (another identity's events, a hub → device topic) is a violation the hub
// answers by closing the connection. The ids in the topic are compared with
// SameID, so the Python SDK's percent-encoded spelling is the same identity.
func (r *Route) PublishableBy(deviceID, moduleID string) bool {
	switch r.Kind {
	case RouteTelemetry:
		return SameID(r.DeviceID, deviceID) && SameID(r.ModuleID, moduleID)
	case RouteTwinGet, RouteTwinPatchReported, RouteMethodResponse:
		return true
	}
	return false
}

// Route is a classified topic. Its byte-slice fields alias the topic passed
// to ParseTopic: they are valid as long as that buffer is, and must be
// copied to be kept. Fields a kind does not use are zero.
type Route struct {
	Kind RouteKind

	DeviceID   []byte // telemetry, C2D, module input
	ModuleID   []byte // module telemetry, module input
	InputName  []byte // module input
	MethodName []byte // method request

	// Status is the {status} of a twin or method response.
	Status int

	// RequestID is the raw $rid value, echoed verbatim by the other side.
	RequestID []byte

	// Version is the $version of a desired-patch notification or of a twin
	// response that carries one (HasVersion).
	Version    int64
	HasVersion bool

	// Bag is the raw, still percent-encoded property bag of a telemetry, C2D
	// or module-input topic, without a leading '?' or trailing '/'. Decode it
	// with Properties.Parse or walk it with ScanBag.
	Bag []byte

	// Query is the raw query of a $iothub topic (after the '?'), for
	// parameters other than $rid and $version.
	Query []byte
}

// ParseTopic classifies a topic published by either side into a Route. It
// is lenient where the contract says to be: telemetry and C2D with or
// without the trailing '/', a '/' after the bag, a leading '?' on the bag,
// "$.mid" or "%24.mid" keys, "$iothub/…/" queries with or without the '?',
// and ids percent-encoded as the Python SDK writes them (DeviceID and
// ModuleID keep the spelling of the topic; compare them with SameID).
// Unknown topics give an error wrapping ErrUnknownTopic, topics of a known
// shape with a bad field one wrapping ErrMalformedTopic. It does not
// allocate.
func ParseTopic(topic []byte) (Route, error) {
	if len(topic) > MaxTopicLen {
		return Route{}, errTopicTooLong
	}
	if rest, ok := cutPrefix(topic, "devices/"); ok {
		return parseDevices(rest)
	}
	if rest, ok := cutPrefix(topic, "$iothub/"); ok {
		return parseIoTHub(rest)
	}
	return Route{}, errUnknown
}

func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix {
		return b[len(prefix):], true
	}
	return b, false
}

// cutSegment splits b at its first '/': the segment before it and what
// follows it. ok is false when b has no '/'.
func cutSegment(b []byte) (seg, rest []byte, ok bool) {
	if i := bytes.IndexByte(b, '/'); i >= 0 {
		return b[:i], b[i+1:], true
	}
	return b, nil, false
}

// idChars marks the bytes allowed in device and module ids (contract §7).
var idChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-:.+%_#*?!(),=@;$'" {
		t[c] = true
	}
	return t
}()

// ValidID reports whether id is a legal device or module id: 1–128
// characters from alphanumerics and - : . + % _ # * ? ! ( ) , = @ ; $ '.
func ValidID[T ~string | ~[]byte](id T) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !idChars[id[i]] {
			return false
		}
	}
	return true
}

// validTopicID reports whether id, as written in a topic or filter, names a
// legal identity: ValidID, or, when it holds percent escapes (the Python
// SDK's spelling), legal characters whose decoded form is 1–128 bytes.
func validTopicID(id []byte) bool {
	if ValidID(id) {
		return true
	}
	if len(id) > 3*MaxIDLen || bytes.IndexByte(id, '%') < 0 {
		return false
	}
	n := 0
	for i := 0; i < len(id); n++ {
		if !idChars[id[i]] {
			return false
		}
		_, i = nextUnescaped(id, i)
	}
	return n <= MaxIDLen
}

// SameID reports whether raw, a device or module id as written in a topic
// or filter, names the identity id. Most SDKs write ids as they are, but the
// Python SDK percent-encodes them (quote(id, safe="")), so
// "devices/00%3A11/…" is the topic of device "00:11"; both spellings name
// the same identity. An empty raw matches only an empty id. It does not
// allocate.
func SameID(raw []byte, id string) bool {
	if string(raw) == id {
		return true
	}
	return bytes.IndexByte(raw, '%') >= 0 && unescapedEqual(raw, id)
}

// sameRawID reports whether two ids as written in topics or filters name
// the same identity (see SameID). It does not allocate.
func sameRawID(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if len(a) > 3*MaxIDLen || len(b) > 3*MaxIDLen {
		return false
	}
	// A decoded id is never longer than its raw form, and valid ids are
	// at most MaxIDLen bytes, so these buffers suffice for any id that can
	// match (AppendUnescape never grows them past that) and stay on the
	// stack.
	var ba, bb [3 * MaxIDLen]byte
	return bytes.Equal(AppendUnescape(ba[:0], a), AppendUnescape(bb[:0], b))
}

// messageTail parses what follows ".../events" or ".../devicebound" or
// ".../inputs/{name}": nothing, or '/' and a bag. ok is false for anything
// else (e.g. "eventsX").
func messageTail(b []byte) (bag []byte, ok bool) {
	if len(b) == 0 {
		return nil, true
	}
	if b[0] != '/' {
		return nil, false
	}
	return normalizeBag(b[1:]), true
}

// normalizeBag drops leading '?' and trailing '/' so that parsing a rebuilt
// topic gives the same bag.
func normalizeBag(b []byte) []byte {
	for len(b) > 0 && b[0] == '?' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == '/' {
		b = b[:len(b)-1]
	}
	return b
}

func parseDevices(b []byte) (Route, error) {
	id, rest, ok := cutSegment(b)
	if !ok {
		return Route{}, errUnknown
	}
	if !validTopicID(id) {
		return Route{}, errDeviceID
	}
	r := Route{DeviceID: id}
	if tail, ok := cutPrefix(rest, "messages/events"); ok {
		if r.Bag, ok = messageTail(tail); ok {
			r.Kind = RouteTelemetry
			return r, nil
		}
		return Route{}, errUnknown
	}
	if tail, ok := cutPrefix(rest, "messages/devicebound"); ok {
		if r.Bag, ok = messageTail(tail); ok {
			r.Kind = RouteC2D
			return r, nil
		}
		return Route{}, errUnknown
	}
	rest, ok = cutPrefix(rest, "modules/")
	if !ok {
		return Route{}, errUnknown
	}
	mod, rest, ok := cutSegment(rest)
	if !ok {
		return Route{}, errUnknown
	}
	if !validTopicID(mod) {
		return Route{}, errModuleID
	}
	r.ModuleID = mod
	if tail, ok := cutPrefix(rest, "messages/events"); ok {
		if r.Bag, ok = messageTail(tail); ok {
			r.Kind = RouteTelemetry
			return r, nil
		}
		return Route{}, errUnknown
	}
	if rest, ok := cutPrefix(rest, "inputs/"); ok {
		name, tail := rest, []byte(nil)
		if i := bytes.IndexByte(rest, '/'); i >= 0 {
			name, tail = rest[:i], rest[i:]
		}
		if len(name) == 0 {
			return Route{}, errInputName
		}
		r.InputName = name
		r.Bag, _ = messageTail(tail) // tail is empty or starts with '/'
		r.Kind = RouteModuleInput
		return r, nil
	}
	return Route{}, errUnknown
}

func parseIoTHub(b []byte) (Route, error) {
	// The Route is filled through a pointer: it is large, and copying it
	// through every helper would cost more than the parsing.
	var r Route
	var err error
	switch {
	case bytes.HasPrefix(b, []byte("twin/res/")):
		r.Kind = RouteTwinResponse
		err = parseStatusQuery(&r, b[len("twin/res/"):])
	case bytes.HasPrefix(b, []byte("methods/res/")):
		r.Kind = RouteMethodResponse
		err = parseStatusQuery(&r, b[len("methods/res/"):])
	case bytes.HasPrefix(b, []byte("methods/POST/")):
		name, rest, ok := cutSegment(b[len("methods/POST/"):])
		switch {
		case !ok:
			err = errQuery
		case len(name) == 0:
			err = errMethodName
		default:
			r.Kind, r.MethodName = RouteMethodRequest, name
			err = parseQuery(&r, rest)
		}
	case bytes.HasPrefix(b, []byte("twin/GET/")):
		r.Kind = RouteTwinGet
		err = parseQuery(&r, b[len("twin/GET/"):])
	case bytes.HasPrefix(b, []byte("twin/PATCH/properties/reported/")):
		r.Kind = RouteTwinPatchReported
		err = parseQuery(&r, b[len("twin/PATCH/properties/reported/"):])
	case bytes.HasPrefix(b, []byte("twin/PATCH/properties/desired/")):
		r.Kind = RouteTwinDesired
		err = parseQuery(&r, b[len("twin/PATCH/properties/desired/"):])
	default:
		err = errUnknown
	}
	if err != nil {
		return Route{}, err
	}
	return r, nil
}

func parseStatusQuery(r *Route, b []byte) error {
	status, rest, ok := cutSegment(b)
	if !ok {
		return errQuery
	}
	n, ok := parseStatus(status)
	if !ok {
		return errStatus
	}
	r.Status = n
	return parseQuery(r, rest)
}

// parseStatus parses an optionally negative decimal integer in the 32-bit
// range: a device may answer a method with any integer status (the C# and
// C SDKs take an int), and the service reports it as one.
func parseStatus(b []byte) (int, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}

// parseVersion parses a non-negative decimal of at most 18 digits.
func parseVersion(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseQuery reads the "?$rid=…&$version=…" part of a $iothub topic and
// checks that the parameters the kind needs are present.
func parseQuery(r *Route, q []byte) error {
	if len(q) > 0 && q[0] == '?' {
		q = q[1:]
	}
	r.Query = q
	// Only the parameters a kind defines are recorded, so that rebuilding
	// the topic from the Route and parsing it again gives the same Route.
	wantRID := r.Kind != RouteTwinDesired
	wantVersion := r.Kind == RouteTwinDesired || r.Kind == RouteTwinResponse
	var haveRID bool
	it := ScanBag(q)
	for p, ok := it.Next(); ok; p, ok = it.Next() {
		switch {
		case wantRID && !haveRID && keyIs(p.Key, "$rid"):
			if len(p.Value) == 0 {
				return errRID
			}
			r.RequestID, haveRID = p.Value, true
		case wantVersion && !r.HasVersion && keyIs(p.Key, "$version"):
			v, ok := parseVersion(p.Value)
			if !ok {
				return errVersion
			}
			r.Version, r.HasVersion = v, true
		}
	}
	if wantRID && !haveRID {
		return errRID
	}
	if r.Kind == RouteTwinDesired && !r.HasVersion {
		return errVersion
	}
	return nil
}

// AppendTopic appends the canonical topic for r: what the builders below
// write for its fields (Bag raw as it is). Parsing the result gives r back,
// apart from Query, which holds only $rid and $version afterwards. It does
// not allocate when cap(dst) suffices.
func (r *Route) AppendTopic(dst []byte) []byte {
	switch r.Kind {
	case RouteTelemetry:
		dst = appendIdentity(dst, r.DeviceID, r.ModuleID)
		dst = append(dst, "/messages/events/"...)
		return append(dst, r.Bag...)
	case RouteC2D:
		dst = appendIdentity(dst, r.DeviceID, nil)
		dst = append(dst, "/messages/devicebound/"...)
		return append(dst, r.Bag...)
	case RouteModuleInput:
		dst = appendIdentity(dst, r.DeviceID, r.ModuleID)
		dst = append(dst, "/inputs/"...)
		dst = append(dst, r.InputName...)
		dst = append(dst, '/')
		return append(dst, r.Bag...)
	case RouteTwinGet:
		return AppendTwinGetTopic(dst, r.RequestID)
	case RouteTwinPatchReported:
		return AppendTwinPatchReportedTopic(dst, r.RequestID)
	case RouteTwinDesired:
		return AppendTwinDesiredTopic(dst, r.Version)
	case RouteTwinResponse:
		v := int64(-1)
		if r.HasVersion {
			v = r.Version
		}
		return AppendTwinResponseTopic(dst, r.Status, r.RequestID, v)
	case RouteMethodRequest:
		return AppendMethodRequestTopic(dst, r.MethodName, r.RequestID)
	case RouteMethodResponse:
		return AppendMethodResponseTopic(dst, r.Status, r.RequestID)
	}
	return dst
}

func appendIdentity[T ~string | ~[]byte](dst []byte, deviceID, moduleID T) []byte {
	dst = append(dst, "devices/"...)
	dst = append(dst, deviceID...)
	if len(moduleID) > 0 {
		dst = append(dst, "/modules/"...)
		dst = append(dst, moduleID...)
	}
	return dst
}

// AppendTelemetryTopic appends devices/{deviceID}/messages/events/{bag}, or
// the module form devices/{deviceID}/modules/{moduleID}/messages/events/{bag}
// when moduleID is not empty. props may be nil (the topic then ends in '/').
// More pairs can be added with AppendPair. Ids are written unencoded. It
// does not allocate when cap(dst) suffices.
func AppendTelemetryTopic(dst []byte, deviceID, moduleID string, props *Properties) []byte {
	dst = appendIdentity(dst, deviceID, moduleID)
	dst = append(dst, "/messages/events/"...)
	if props != nil {
		dst = props.AppendBag(dst)
	}
	return dst
}

// AppendC2DFilter appends devices/{deviceID}/messages/devicebound/#, the
// filter a device subscribes to for cloud-to-device messages.
func AppendC2DFilter(dst []byte, deviceID string) []byte {
	dst = appendIdentity(dst, deviceID, "")
	return append(dst, "/messages/devicebound/#"...)
}

// AppendC2DTopic appends devices/{deviceID}/messages/devicebound/{bag}, the
// topic the hub delivers a cloud-to-device message on (no leading '?').
// props may be nil.
func AppendC2DTopic(dst []byte, deviceID string, props *Properties) []byte {
	dst = appendIdentity(dst, deviceID, "")
	dst = append(dst, "/messages/devicebound/"...)
	if props != nil {
		dst = props.appendHubBag(dst)
	}
	return dst
}

// AppendModuleFilter appends devices/{deviceID}/modules/{moduleID}/#, the
// filter an Edge module subscribes to for its inputs.
func AppendModuleFilter(dst []byte, deviceID, moduleID string) []byte {
	dst = appendIdentity(dst, deviceID, moduleID)
	return append(dst, "/#"...)
}

// AppendModuleInputTopic appends
// devices/{deviceID}/modules/{moduleID}/inputs/{input}/{bag}, the topic a
// message routed to an Edge module's input arrives on. props may be nil.
func AppendModuleInputTopic(dst []byte, deviceID, moduleID, input string, props *Properties) []byte {
	dst = appendIdentity(dst, deviceID, moduleID)
	dst = append(dst, "/inputs/"...)
	dst = append(dst, input...)
	dst = append(dst, '/')
	if props != nil {
		dst = props.appendHubBag(dst)
	}
	return dst
}

// AppendTwinGetTopic appends $iothub/twin/GET/?$rid={rid}. The request id is
// written verbatim, so it must be a valid bag value (the ids NewRequestID
// makes are).
func AppendTwinGetTopic[T ~string | ~[]byte](dst []byte, rid T) []byte {
	dst = append(dst, "$iothub/twin/GET/?$rid="...)
	return append(dst, rid...)
}

// AppendTwinPatchReportedTopic appends
// $iothub/twin/PATCH/properties/reported/?$rid={rid}.
func AppendTwinPatchReportedTopic[T ~string | ~[]byte](dst []byte, rid T) []byte {
	dst = append(dst, "$iothub/twin/PATCH/properties/reported/?$rid="...)
	return append(dst, rid...)
}

// AppendTwinDesiredTopic appends
// $iothub/twin/PATCH/properties/desired/?$version={version}, the topic of a
// desired-properties notification.
func AppendTwinDesiredTopic(dst []byte, version int64) []byte {
	dst = append(dst, "$iothub/twin/PATCH/properties/desired/?$version="...)
	return strconv.AppendInt(dst, version, 10)
}

// AppendTwinResponseTopic appends $iothub/twin/res/{status}/?$rid={rid},
// followed by &$version={version} when version >= 0 (the reply to a
// reported-properties PATCH carries the new version; a GET reply does not).
// rid is echoed verbatim.
func AppendTwinResponseTopic[T ~string | ~[]byte](dst []byte, status int, rid T, version int64) []byte {
	dst = append(dst, "$iothub/twin/res/"...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, "/?$rid="...)
	dst = append(dst, rid...)
	if version >= 0 {
		dst = append(dst, "&$version="...)
		dst = strconv.AppendInt(dst, version, 10)
	}
	return dst
}

// AppendMethodRequestTopic appends $iothub/methods/POST/{name}/?$rid={rid}.
func AppendMethodRequestTopic[N, T ~string | ~[]byte](dst []byte, name N, rid T) []byte {
	dst = append(dst, "$iothub/methods/POST/"...)
	dst = append(dst, name...)
	dst = append(dst, "/?$rid="...)
	return append(dst, rid...)
}

// AppendMethodResponseTopic appends $iothub/methods/res/{status}/?$rid={rid};
// rid is echoed verbatim from the request.
func AppendMethodResponseTopic[T ~string | ~[]byte](dst []byte, status int, rid T) []byte {
	dst = append(dst, "$iothub/methods/res/"...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, "/?$rid="...)
	return append(dst, rid...)
}

// FilterKind classifies a SUBSCRIBE filter.
type FilterKind uint8

// The filters IoT Hub accepts (contract §7).
const (
	FilterUnknown       FilterKind = iota
	FilterC2D                      // devices/{d}/messages/devicebound/#
	FilterTwinResponses            // $iothub/twin/res/#
	FilterTwinDesired              // $iothub/twin/PATCH/properties/desired/#
	FilterMethods                  // $iothub/methods/POST/#
	FilterModule                   // devices/{d}/modules/{m}/#
	FilterModuleInputs             // devices/{d}/modules/{m}/inputs/# (Python SDK)
	FilterModuleC2D                // devices/{d}/modules/{m}/messages/devicebound/# (C and Java module clients)
	numFilterKinds
)

var filterKindNames = [numFilterKinds]string{
	FilterUnknown:       "unknown",
	FilterC2D:           "c2d",
	FilterTwinResponses: "twin-responses",
	FilterTwinDesired:   "twin-desired",
	FilterMethods:       "methods",
	FilterModule:        "module",
	FilterModuleInputs:  "module-inputs",
	FilterModuleC2D:     "module-c2d",
}

// String returns a short name such as "twin-desired".
func (k FilterKind) String() string {
	if k < numFilterKinds {
		return filterKindNames[k]
	}
	return "FilterKind(" + strconv.Itoa(int(k)) + ")"
}

// Filter is a classified SUBSCRIBE filter. DeviceID and ModuleID alias the
// filter passed to ParseFilter, spelled as the subscriber wrote them (the
// Python SDK percent-encodes ids, and then expects deliveries on topics
// spelled the same way: build them from these bytes).
type Filter struct {
	Kind     FilterKind
	DeviceID []byte
	ModuleID []byte

	// AnyDevice is set for devices/+/messages/devicebound/#, the C2D filter
	// of the Embedded C SDK (azure-sdk-for-c, AZ_IOT_HUB_CLIENT_C2D_SUBSCRIBE_TOPIC),
	// which IoT Hub accepts: the '+' stands for the subscriber's own id.
	// DeviceID is then nil.
	AnyDevice bool
}

// ParseFilter recognises the only SUBSCRIBE filters IoT Hub accepts and
// returns an error wrapping ErrUnsupportedFilter for any other (the hub
// closes the connection for those; it never answers SUBACK 0x80). Besides
// the filters of contract §7 it accepts two that official SDKs send to IoT
// Hub: devices/+/messages/devicebound/# (Embedded C SDK) and
// devices/{d}/modules/{m}/messages/devicebound/# (C and Java module
// clients; IoT Hub delivers nothing on it, modules get no C2D). It does not
// check that the ids belong to the subscriber: use AllowedFor. It does not
// allocate.
func ParseFilter(filter []byte) (Filter, error) {
	switch string(filter) {
	case TwinResponseFilter:
		return Filter{Kind: FilterTwinResponses}, nil
	case TwinDesiredFilter:
		return Filter{Kind: FilterTwinDesired}, nil
	case MethodsFilter:
		return Filter{Kind: FilterMethods}, nil
	}
	rest, ok := cutPrefix(filter, "devices/")
	if !ok {
		return Filter{}, errFilter
	}
	id, rest, ok := cutSegment(rest)
	if !ok {
		return Filter{}, errFilter
	}
	if string(id) == "+" && string(rest) == "messages/devicebound/#" {
		return Filter{Kind: FilterC2D, AnyDevice: true}, nil
	}
	if !validFilterID(id) {
		return Filter{}, errFilterDeviceID
	}
	if string(rest) == "messages/devicebound/#" {
		return Filter{Kind: FilterC2D, DeviceID: id}, nil
	}
	rest, ok = cutPrefix(rest, "modules/")
	if !ok {
		return Filter{}, errFilter
	}
	mod, rest, ok := cutSegment(rest)
	if !ok {
		return Filter{}, errFilter
	}
	if !validFilterID(mod) {
		return Filter{}, errFilterModuleID
	}
	switch string(rest) {
	case "#":
		return Filter{Kind: FilterModule, DeviceID: id, ModuleID: mod}, nil
	case "inputs/#":
		return Filter{Kind: FilterModuleInputs, DeviceID: id, ModuleID: mod}, nil
	case "messages/devicebound/#":
		return Filter{Kind: FilterModuleC2D, DeviceID: id, ModuleID: mod}, nil
	}
	return Filter{}, errFilter
}

// AllowedFor reports whether identity deviceID (moduleID empty) or
// deviceID/moduleID may subscribe with f: a C2D filter must name the device
// itself (or be the '+' form) and is refused to modules, a module filter
// must name the module itself, and the $iothub filters are open to every
// identity. Ids are compared with SameID. A filter that is not allowed is a
// violation the hub answers by closing the connection.
func (f *Filter) AllowedFor(deviceID, moduleID string) bool {
	switch f.Kind {
	case FilterC2D:
		return moduleID == "" && (f.AnyDevice || SameID(f.DeviceID, deviceID))
	case FilterModule, FilterModuleInputs, FilterModuleC2D:
		return moduleID != "" && SameID(f.DeviceID, deviceID) && SameID(f.ModuleID, moduleID)
	case FilterTwinResponses, FilterTwinDesired, FilterMethods:
		return true
	}
	return false
}

// validFilterID is validTopicID without '+' and '#', which a filter would
// read as wildcards.
func validFilterID(id []byte) bool {
	return validTopicID(id) && bytes.IndexByte(id, '+') < 0 && bytes.IndexByte(id, '#') < 0
}

// Matches reports whether a topic parsed into r is delivered to a
// subscription with filter f. The emulator uses it to decide which of a
// connection's subscriptions receive a hub → device publish. Ids match in
// either spelling (see SameID); the '+' C2D filter matches any C2D topic
// (the emulator routes only the subscriber's own). It does not allocate.
func (f *Filter) Matches(r *Route) bool {
	switch f.Kind {
	case FilterC2D:
		return r.Kind == RouteC2D && (f.AnyDevice || sameRawID(r.DeviceID, f.DeviceID))
	case FilterTwinResponses:
		return r.Kind == RouteTwinResponse
	case FilterTwinDesired:
		return r.Kind == RouteTwinDesired
	case FilterMethods:
		return r.Kind == RouteMethodRequest
	case FilterModule, FilterModuleInputs:
		return r.Kind == RouteModuleInput && sameRawID(r.DeviceID, f.DeviceID) && sameRawID(r.ModuleID, f.ModuleID)
	}
	// FilterModuleC2D: IoT Hub delivers nothing to modules on it.
	return false
}
