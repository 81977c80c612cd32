package iothub

import (
	"errors"
	"strconv"
)

// Sentinel errors for input this package rejects. Every error returned for
// bad input wraps exactly one of them, so callers branch with errors.Is.
var (
	// ErrUnknownTopic means a topic belongs to none of the families IoT Hub
	// uses (devices/… or $iothub/…), or to a sub-path the contract does not
	// define, e.g. "devices/d1/messages/other".
	ErrUnknownTopic = errors.New("iothub: unknown topic")

	// ErrMalformedTopic means a topic starts like a known route but a field
	// is missing or invalid: an empty or illegal device id, a status that is
	// not an integer, a twin response without $rid.
	ErrMalformedTopic = errors.New("iothub: malformed topic")

	// ErrUnsupportedFilter means a SUBSCRIBE filter is not one of the few
	// IoT Hub accepts (contract §7). The hub closes the connection for it.
	ErrUnsupportedFilter = errors.New("iothub: unsupported subscription filter")

	// ErrMalformedBag means a property bag has a pair with an empty key.
	ErrMalformedBag = errors.New("iothub: malformed property bag")

	// ErrMalformedUsername means an MQTT CONNECT username does not have the
	// shape {host}/{deviceId}[/{moduleId}]/?api-version=… (or the legacy
	// form without the '?').
	ErrMalformedUsername = errors.New("iothub: malformed username")
)

// Sentinels for the status classes of $iothub/…/res/{status} replies and of
// direct-method invocations. A *StatusError matches the sentinel of its
// status through errors.Is; so do the errors this package builds for the
// same condition locally (an invalid twin patch is ErrBadRequest before it
// is ever sent).
var (
	// ErrBadRequest (400): malformed JSON, an invalid twin patch (key,
	// depth, size), an out-of-range method timeout.
	ErrBadRequest = errors.New("iothub: bad request (400)")
	// ErrUnauthorized (401): often an expired SAS token.
	ErrUnauthorized = errors.New("iothub: unauthorized (401)")
	// ErrDeviceNotFound (404): the identity does not exist (404001).
	ErrDeviceNotFound = errors.New("iothub: device not found (404)")
	// ErrPreconditionFailed (412): a version or etag precondition failed.
	ErrPreconditionFailed = errors.New("iothub: precondition failed (412)")
	// ErrThrottled (429): retry after a backoff; the only status the C#
	// SDK retries.
	ErrThrottled = errors.New("iothub: throttled (429)")
	// ErrServerError (500–599): the hub failed.
	ErrServerError = errors.New("iothub: server error (5xx)")

	// ErrDeviceNotOnline is what a method invoker gets when the device is
	// not connected or not subscribed to $iothub/methods/POST/# (404103).
	ErrDeviceNotOnline = errors.New("iothub: device not online (404)")

	// ErrTimeout means no reply arrived for a request id before its
	// deadline. For a direct method the service reports it as 504
	// (504101 GatewayTimeout).
	ErrTimeout = errors.New("iothub: request timed out")

	// ErrConnectionLost fails requests that were in flight when the
	// connection dropped: twin and method traffic is QoS 0, so their replies
	// can never arrive on a new connection.
	ErrConnectionLost = errors.New("iothub: connection lost")

	// ErrDuplicateRequestID is returned when a request id is registered
	// while another request with the same id is still pending.
	ErrDuplicateRequestID = errors.New("iothub: duplicate request id")

	// ErrStaleResponse marks a reply whose request id is not pending any
	// more (it timed out, was cancelled, or was never ours). IoT Hub drops
	// such replies; callers should log and ignore it.
	ErrStaleResponse = errors.New("iothub: reply to no pending request")
)

// StatusError is a failure status carried by a reply topic
// ($iothub/twin/res/{status}/… or a direct method's answer). It matches the
// sentinel of its status class with errors.Is: 400 ErrBadRequest, 401
// ErrUnauthorized, 404 ErrDeviceNotFound, 412 ErrPreconditionFailed, 429
// ErrThrottled, 5xx ErrServerError (504 also ErrTimeout).
type StatusError struct {
	Op        string // e.g. "twin GET", "twin PATCH reported"
	Status    int    // the status from the topic
	RequestID string // the $rid of the request
	Body      []byte // the reply's body (its shape is undocumented); may be empty
}

// Error formats the error as "iothub: twin GET (rid 3): status 429".
func (e *StatusError) Error() string {
	b := make([]byte, 0, 64)
	b = append(b, "iothub: "...)
	b = append(b, e.Op...)
	if e.RequestID != "" {
		b = append(b, " (rid "...)
		b = append(b, e.RequestID...)
		b = append(b, ')')
	}
	b = append(b, ": status "...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	return string(b)
}

// Is reports whether target is the sentinel of e's status class.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.Status == 400
	case ErrUnauthorized:
		return e.Status == 401
	case ErrDeviceNotFound:
		return e.Status == 404
	case ErrPreconditionFailed:
		return e.Status == 412
	case ErrThrottled:
		return e.Status == 429
	case ErrServerError:
		return e.Status >= 500 && e.Status <= 599
	case ErrTimeout:
		return e.Status == 504
	}
	return false
}

// StatusOf maps an error to the status IoT Hub would report for it: the
// status of a *StatusError, 400 for ErrBadRequest (invalid twin patches,
// out-of-range timeouts), 404 for ErrDeviceNotOnline and ErrDeviceNotFound,
// 504 for ErrTimeout, 429 for ErrThrottled, 401 for ErrUnauthorized, 412 for
// ErrPreconditionFailed, 200 for nil and 500 for anything else. The emulator
// uses it to answer twin requests and method invocations.
func StatusOf(err error) int {
	if err == nil {
		return 200
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	switch {
	case errors.Is(err, ErrBadRequest):
		return 400
	case errors.Is(err, ErrUnauthorized):
		return 401
	case errors.Is(err, ErrDeviceNotOnline), errors.Is(err, ErrDeviceNotFound):
		return 404
	case errors.Is(err, ErrPreconditionFailed):
		return 412
	case errors.Is(err, ErrThrottled):
		return 429
	case errors.Is(err, ErrTimeout):
		return 504
	}
	return 500
}

// statusErr returns nil for a success status (< 300) and a *StatusError
// otherwise. Allocates on failure only.
func statusErr(op string, status int, rid []byte, body []byte) error {
	if status >= 200 && status < 300 {
		return nil
	}
	return &StatusError{Op: op, Status: status, RequestID: string(rid), Body: append([]byte(nil), body...)}
}

// TopicError says why a topic, filter or username was rejected. It wraps
// ErrUnknownTopic, ErrMalformedTopic, ErrUnsupportedFilter or
// ErrMalformedUsername; the message is built only when Error is called.
type TopicError struct {
	Field string // the part being read, e.g. "device id", "status", "$rid"
	Err   error
}

// Error formats the error as "iothub: malformed topic: device id".
func (e *TopicError) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Field
}

// Unwrap returns the sentinel.
func (e *TopicError) Unwrap() error { return e.Err }

// Errors used on hot reject paths are preallocated so a flood of bad topics
// costs no allocation.
var (
	errUnknown        = &TopicError{Err: ErrUnknownTopic}
	errTopicTooLong   = &TopicError{Field: "longer than 65535 bytes", Err: ErrMalformedTopic}
	errDeviceID       = &TopicError{Field: "device id", Err: ErrMalformedTopic}
	errModuleID       = &TopicError{Field: "module id", Err: ErrMalformedTopic}
	errInputName      = &TopicError{Field: "input name", Err: ErrMalformedTopic}
	errMethodName     = &TopicError{Field: "method name", Err: ErrMalformedTopic}
	errStatus         = &TopicError{Field: "status", Err: ErrMalformedTopic}
	errRID            = &TopicError{Field: "$rid", Err: ErrMalformedTopic}
	errVersion        = &TopicError{Field: "$version", Err: ErrMalformedTopic}
	errQuery          = &TopicError{Field: "query (want /?…)", Err: ErrMalformedTopic}
	errFilter         = &TopicError{Err: ErrUnsupportedFilter}
	errFilterDeviceID = &TopicError{Field: "device id", Err: ErrUnsupportedFilter}
	errFilterModuleID = &TopicError{Field: "module id", Err: ErrUnsupportedFilter}
)
