package iothub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Status codes a device answers when its own handling fails. They follow
// the C# device SDK's MethodResponseStatusCode (400 BadRequest, 500
// UserCodeException, 501 MethodNotImplemented). The C# SDK
// (InternalClient.OnMethodCalledAsync) answers a method with no handler and
// no default handler with 501 and an empty body; we answer 501 too, with a
// small JSON body that names the method, so the service caller sees why.
// The contract (§6) lets the device choose any status.
const (
	MethodStatusNotImplemented = 501 // no handler for the method and no default
	MethodStatusHandlerError   = 500 // the handler failed or returned a payload that is not JSON
)

// Direct-method limits (contract §6).
const (
	DefaultMethodTimeout = 30 * time.Second  // responseTimeoutInSeconds when 0
	MinMethodTimeout     = 5 * time.Second   // smallest responseTimeoutInSeconds
	MaxMethodTimeout     = 300 * time.Second // largest response and connect timeout
	MaxMethodPayload     = 128 * 1024        // bytes each way
)

// MethodRequest is a direct-method call as a device receives it.
type MethodRequest struct {
	Name      string
	RequestID string // the $rid to echo
	Payload   []byte // JSON or empty; owned by the request
}

// ParseMethodRequest copies a RouteMethodRequest route and its payload into
// a MethodRequest the handler may keep. Allocates.
func ParseMethodRequest(r *Route, payload []byte) (MethodRequest, error) {
	if r.Kind != RouteMethodRequest {
		return MethodRequest{}, &TopicError{Field: "not a method request: " + r.Kind.String(), Err: ErrUnknownTopic}
	}
	return MethodRequest{
		Name:      string(r.MethodName),
		RequestID: string(r.RequestID),
		Payload:   bytes.Clone(payload),
	}, nil
}

// MethodHandler answers a direct method: a status (any integer the device
// chooses) and a JSON payload or nil. A non-nil error answers
// MethodStatusHandlerError with the error text in a JSON body.
type MethodHandler func(ctx context.Context, req MethodRequest) (status int, payload []byte, err error)

// MethodMux dispatches direct methods to handlers by name, with an optional
// default for names without one. The zero value is ready to use; it is
// safe for concurrent use.
type MethodMux struct {
	mu       sync.RWMutex
	handlers map[string]MethodHandler
	def      MethodHandler
}

// Handle registers h for method name; a nil h removes it.
func (m *MethodMux) Handle(name string, h MethodHandler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h == nil {
		delete(m.handlers, name)
		return
	}
	if m.handlers == nil {
		m.handlers = make(map[string]MethodHandler)
	}
	m.handlers[name] = h
}

// HandleDefault registers h for methods without their own handler; nil
// removes it.
func (m *MethodMux) HandleDefault(h MethodHandler) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.def = h
}

// Lookup returns the handler for name (or the default), or nil.
func (m *MethodMux) Lookup(name string) MethodHandler {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if h, ok := m.handlers[name]; ok {
		return h
	}
	return m.def
}

// Dispatch runs the handler for req and returns the reply to publish on
// $iothub/methods/res/{status}/?$rid={rid}. An unknown method gets
// MethodStatusNotImplemented; a handler error, a panic in the handler, or a
// payload that is not valid JSON or is over MaxMethodPayload gets
// MethodStatusHandlerError; both with a JSON body {"message":"…"}. It runs
// the handler on the calling goroutine: call it off the connection's reader
// goroutine.
func (m *MethodMux) Dispatch(ctx context.Context, req MethodRequest) Action {
	h := m.Lookup(req.Name)
	if h == nil {
		return MethodResponse(req.RequestID, MethodStatusNotImplemented,
			errorBody("method not implemented: "+req.Name))
	}
	status, payload, err := callHandler(ctx, h, req)
	switch {
	case err != nil:
		return MethodResponse(req.RequestID, MethodStatusHandlerError, errorBody(err.Error()))
	case len(payload) > MaxMethodPayload:
		return MethodResponse(req.RequestID, MethodStatusHandlerError,
			errorBody("method "+req.Name+" returned a payload over 128 KB"))
	case len(payload) > 0 && !json.Valid(payload):
		return MethodResponse(req.RequestID, MethodStatusHandlerError,
			errorBody("method "+req.Name+" returned a payload that is not JSON"))
	}
	return MethodResponse(req.RequestID, status, payload)
}

// callHandler runs h and turns a panic into an error, so that a faulty
// handler costs one 500 reply, not the device client.
func callHandler(ctx context.Context, h MethodHandler, req MethodRequest) (status int, payload []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("method %s panicked: %v", req.Name, p)
		}
	}()
	return h(ctx, req)
}

// errorBody returns {"message":msg} as JSON.
func errorBody(msg string) []byte {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg}) // a struct of one string always marshals
	return b
}

// MethodResponse builds the reply to a direct method: topic
// $iothub/methods/res/{status}/?$rid={rid} (rid echoed verbatim) with the
// payload, which should be JSON or empty. The payload is copied.
func MethodResponse(rid string, status int, payload []byte) Action {
	return Action{
		Topic:   AppendMethodResponseTopic(nil, status, rid),
		Payload: bytes.Clone(payload),
	}
}

// MethodCall is a direct-method invocation as the service side makes it
// (POST /twins/{id}/methods with {"methodName","payload",
// "responseTimeoutInSeconds","connectTimeoutInSeconds"}).
type MethodCall struct {
	DeviceID string
	ModuleID string // empty for a device
	Name     string
	Payload  []byte // JSON or empty

	// ResponseTimeout: 0 means DefaultMethodTimeout; otherwise 5–300 s.
	ResponseTimeout time.Duration
	// ConnectTimeout: 0–300 s; 0 means the device must already be online.
	// A MethodTable does not wait for devices to connect: the emulator waits
	// up to ConnectTimeout before calling Invoke.
	ConnectTimeout time.Duration
}

// Timeouts returns the effective response and connect timeouts, or an error
// wrapping ErrBadRequest when either is out of range.
func (c *MethodCall) Timeouts() (response, connect time.Duration, err error) {
	response = c.ResponseTimeout
	if response == 0 {
		response = DefaultMethodTimeout
	}
	if response < MinMethodTimeout || response > MaxMethodTimeout {
		return 0, 0, &TopicError{Field: "responseTimeoutInSeconds must be 5–300", Err: ErrBadRequest}
	}
	if c.ConnectTimeout < 0 || c.ConnectTimeout > MaxMethodTimeout {
		return 0, 0, &TopicError{Field: "connectTimeoutInSeconds must be 0–300", Err: ErrBadRequest}
	}
	return response, c.ConnectTimeout, nil
}

// MethodResult is a device's answer to a direct method.
type MethodResult struct {
	Status  int
	Payload []byte // JSON or empty, as the device sent it
}

// AppendJSON appends the service-side answer {"status":s,"payload":p}; an
// empty payload is null, one that is not JSON is sent as a JSON string.
func (r MethodResult) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"status":`...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, `,"payload":`...)
	switch {
	case len(r.Payload) == 0:
		dst = append(dst, "null"...)
	case json.Valid(r.Payload):
		dst = append(dst, r.Payload...)
	default:
		s, _ := json.Marshal(string(r.Payload)) // a string always marshals
		dst = append(dst, s...)
	}
	return append(dst, '}')
}

type methodTarget struct{ device, module string }

// MethodTable is the hub side of direct methods: an invocation table keyed
// by request id, so the caller waiting on a Waiter gets the device's
// answer, ErrTimeout (504) when no answer comes within the response
// timeout, or ErrDeviceNotOnline (404) at once when the device is not
// connected and subscribed. It does no I/O and is safe for concurrent use;
// one table can serve every device.
type MethodTable struct {
	reqs *Correlator[MethodResult]
}

// NewMethodTable returns an empty table; clock nil means SystemClock.
func NewMethodTable(clock Clock) *MethodTable {
	return &MethodTable{reqs: NewCorrelator[MethodResult]("method invoke", "m", clock)}
}

// Invoke validates call and registers it. online says whether the target
// is connected and subscribed to $iothub/methods/POST/#; if not, Invoke
// returns ErrDeviceNotOnline. On success it returns the request to publish
// to the device ($iothub/methods/POST/{name}/?$rid={rid}, QoS 0) and the
// Waiter for its answer. Errors: ErrBadRequest (a name that cannot be a
// topic level or that the Node SDK mis-reads, see validMethodName; timeouts out of range, payload not JSON or over 128 KB),
// ErrDeviceNotOnline.
func (t *MethodTable) Invoke(call MethodCall, online bool) (Action, *Waiter[MethodResult], error) {
	resp, _, err := call.Timeouts()
	if err != nil {
		return Action{}, nil, err
	}
	switch {
	case !validMethodName(call.Name):
		return Action{}, nil, &TopicError{Field: "method name", Err: ErrBadRequest}
	case len(call.Payload) > MaxMethodPayload:
		return Action{}, nil, &TopicError{Field: "payload over 128 KB", Err: ErrBadRequest}
	case len(call.Payload) > 0 && !json.Valid(call.Payload):
		return Action{}, nil, &TopicError{Field: "payload is not JSON", Err: ErrBadRequest}
	case !online:
		return Action{}, nil, ErrDeviceNotOnline
	}
	w := t.reqs.Start(resp, methodTarget{call.DeviceID, call.ModuleID})
	return Action{
		Topic:   AppendMethodRequestTopic(nil, call.Name, w.RequestID()),
		Payload: bytes.Clone(call.Payload),
	}, w, nil
}

// validMethodName reports whether name can be the {name} level of
// $iothub/methods/POST/{name}/: not empty, no '/' (a level separator), no
// '+' or '#' (wildcards), a valid MQTT topic string (UTF-8 without U+0000,
// [MQTT-1.5.3-1], [MQTT-1.5.3-2]), and none of ? space ' ^ \ ` | " < > { },
// which the Node device SDK's method dispatch alters or breaks (a '?' loses
// the $rid, so the device could not even answer).
func validMethodName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/+#\x00? '^\\`|\"<>{}") && utf8.ValidString(name)
}

// HandleResponse completes the invocation a device answered: r must be a
// RouteMethodResponse published by identity deviceID/moduleID. The payload
// is copied. A reply to no pending invocation, or from another identity
// than the one invoked, returns ErrStaleResponse and is dropped.
func (t *MethodTable) HandleResponse(deviceID, moduleID string, r *Route, payload []byte) error {
	if r.Kind != RouteMethodResponse {
		return &TopicError{Field: "not a method response: " + r.Kind.String(), Err: ErrUnknownTopic}
	}
	w := t.reqs.Peek(r.RequestID)
	if w == nil || w.Meta() != (methodTarget{deviceID, moduleID}) {
		return &requestError{op: "method reply", rid: string(r.RequestID), err: ErrStaleResponse}
	}
	if w = t.reqs.Take(r.RequestID); w == nil {
		return &requestError{op: "method reply", rid: string(r.RequestID), err: ErrStaleResponse}
	}
	w.Complete(MethodResult{Status: r.Status, Payload: bytes.Clone(payload)}, nil)
	return nil
}

// Pending returns the number of invocations awaiting an answer.
func (t *MethodTable) Pending() int { return t.reqs.Len() }
