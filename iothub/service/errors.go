package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Sentinel errors. Every failed call returns an *Error (or a transport or
// context error); errors.Is(err, ErrX) tells which class it is, from the
// reply's iothub-errorcode header, its envelope or, failing both, its
// status code.
var (
	// ErrBadRequest is 400 ArgumentInvalid (400004) and other 400s: a
	// malformed body, a bad id, a twin over its limits, an unsupported query.
	ErrBadRequest = errors.New("service: bad request")
	// ErrUnauthorized is 401 IotHubUnauthorizedAccess (401002): a bad,
	// expired or missing token, or a policy that lacks the right.
	ErrUnauthorized = errors.New("service: unauthorized")
	// ErrQueueFull is 403 DeviceMaximumQueueDepthExceeded (403004): the
	// device's cloud-to-device queue is full.
	ErrQueueFull = errors.New("service: device queue full")
	// ErrNotFound is any 404; the more specific ErrDeviceNotFound,
	// ErrModuleNotFound and ErrDeviceNotOnline match it too.
	ErrNotFound = errors.New("service: not found")
	// ErrDeviceNotFound is 404 DeviceNotFound (404001).
	ErrDeviceNotFound = errors.New("service: device not found")
	// ErrModuleNotFound is 404 ModuleNotFound (404010).
	ErrModuleNotFound = errors.New("service: module not found")
	// ErrDeviceNotOnline is 404 DeviceNotOnline (404103): a direct method's
	// device did not connect, or did not subscribe, within the connect timeout.
	ErrDeviceNotOnline = errors.New("service: device not online")
	// ErrAlreadyExists is any 409; ErrDeviceAlreadyExists and
	// ErrModuleAlreadyExists match it too.
	ErrAlreadyExists = errors.New("service: already exists")
	// ErrDeviceAlreadyExists is 409 DeviceAlreadyExists (409001).
	ErrDeviceAlreadyExists = errors.New("service: device already exists")
	// ErrModuleAlreadyExists is 409 ModuleAlreadyExistsOnDevice (409301).
	ErrModuleAlreadyExists = errors.New("service: module already exists on device")
	// ErrPreconditionFailed is 412 PreconditionFailed (412001): the If-Match
	// etag did not match.
	ErrPreconditionFailed = errors.New("service: precondition failed")
	// ErrMessageTooLarge is 413 MessageTooLarge (413001).
	ErrMessageTooLarge = errors.New("service: message too large")
	// ErrThrottled is 429 ThrottlingException (429001).
	ErrThrottled = errors.New("service: throttled")
	// ErrServer is a 5xx other than 504.
	ErrServer = errors.New("service: server error")
	// ErrTimeout is 504 GatewayTimeout (504101): the device did not answer
	// a direct method within its response timeout.
	ErrTimeout = errors.New("service: timed out waiting for the device")
)

// codeNames maps the iothub-errorcode names and numeric codes the hub sends
// to the sentinels they mean.
var codeNames = map[string]error{
	"ArgumentInvalid":                 ErrBadRequest,
	"ArgumentNull":                    ErrBadRequest,
	"BadFormat":                       ErrBadRequest,
	"InvalidProtocolVersion":          ErrBadRequest,
	"IotHubUnauthorizedAccess":        ErrUnauthorized,
	"IotHubUnauthorized":              ErrUnauthorized,
	"Unauthorized":                    ErrUnauthorized,
	"DeviceMaximumQueueDepthExceeded": ErrQueueFull,
	"IotHubQuotaExceeded":             ErrThrottled,
	"DeviceNotFound":                  ErrDeviceNotFound,
	"ModuleNotFound":                  ErrModuleNotFound,
	"DeviceNotOnline":                 ErrDeviceNotOnline,
	"DeviceAlreadyExists":             ErrDeviceAlreadyExists,
	"ModuleAlreadyExistsOnDevice":     ErrModuleAlreadyExists,
	"PreconditionFailed":              ErrPreconditionFailed,
	"MessageTooLarge":                 ErrMessageTooLarge,
	"ThrottlingException":             ErrThrottled,
	"ThrottleBacklogLimitExceeded":    ErrThrottled,
	"GatewayTimeout":                  ErrTimeout,
	"ServerError":                     ErrServer,
	"ServiceUnavailable":              ErrServer,
	"400004":                          ErrBadRequest,
	"401002":                          ErrUnauthorized,
	"403004":                          ErrQueueFull,
	"404001":                          ErrDeviceNotFound,
	"404010":                          ErrModuleNotFound,
	"404103":                          ErrDeviceNotOnline,
	"409001":                          ErrDeviceAlreadyExists,
	"409301":                          ErrModuleAlreadyExists,
	"412001":                          ErrPreconditionFailed,
	"413001":                          ErrMessageTooLarge,
	"429001":                          ErrThrottled,
	"504101":                          ErrTimeout,
}

// Error is a reply of the hub with an error status.
type Error struct {
	// Op is the client method that failed, e.g. "GetDevice".
	Op string
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the error code name from the iothub-errorcode header, or from
	// the envelope when the header is missing, e.g. "DeviceNotFound".
	Code string
	// Number is the numeric IoT Hub error code when the reply names one
	// (404103), else 0.
	Number int
	// Message is the hub's description of the error.
	Message string
	// TrackingID is the hub's tracking id, when the reply has one.
	TrackingID string
}

// Error formats e as "service: GetDevice: 404 DeviceNotFound: …".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("service: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.Code != "" {
		b.WriteByte(' ')
		b.WriteString(e.Code)
	}
	if e.Number != 0 {
		b.WriteString(" (")
		b.WriteString(strconv.Itoa(e.Number))
		b.WriteByte(')')
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// class returns the most specific sentinel e belongs to.
func (e *Error) class() error {
	if c, ok := codeNames[e.Code]; ok {
		return c
	}
	if e.Number != 0 {
		if c, ok := codeNames[strconv.Itoa(e.Number)]; ok {
			return c
		}
	}
	switch {
	case e.StatusCode == http.StatusBadRequest:
		return ErrBadRequest
	case e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden:
		return ErrUnauthorized
	case e.StatusCode == http.StatusNotFound:
		return ErrNotFound
	case e.StatusCode == http.StatusConflict:
		return ErrAlreadyExists
	case e.StatusCode == http.StatusPreconditionFailed:
		return ErrPreconditionFailed
	case e.StatusCode == http.StatusRequestEntityTooLarge:
		return ErrMessageTooLarge
	case e.StatusCode == http.StatusTooManyRequests:
		return ErrThrottled
	case e.StatusCode == http.StatusGatewayTimeout:
		return ErrTimeout
	case e.StatusCode >= 500:
		return ErrServer
	}
	return nil
}

// Is reports whether e is of the class target: its own sentinel, and the
// generic ErrNotFound or ErrAlreadyExists for the specific 404s and 409s.
func (e *Error) Is(target error) bool {
	c := e.class()
	if c == nil {
		return false
	}
	if c == target {
		return true
	}
	switch target {
	case ErrNotFound:
		return c == ErrDeviceNotFound || c == ErrModuleNotFound || c == ErrDeviceNotOnline
	case ErrAlreadyExists:
		return c == ErrDeviceAlreadyExists || c == ErrModuleAlreadyExists
	}
	return false
}

// envelopeA is the registry/twin/auth error body:
// {"Message":"ErrorCode:<Name>;<text>","ExceptionMessage":"Tracking ID:…"}.
// Envelope B puts a JSON string in Message:
// {"errorCode":404103,"trackingId":…,"message":…,"info":…,"timestampUtc":…}.
type envelopeA struct {
	Message          string `json:"Message"`
	ExceptionMessage string `json:"ExceptionMessage"`
}

type envelopeB struct {
	ErrorCode  json.Number `json:"errorCode"`
	TrackingID string      `json:"trackingId"`
	Message    string      `json:"message"`
}

// parseError builds the *Error of an error reply with body b (already
// bounded by the caller).
func parseError(op string, resp *http.Response, b []byte) *Error {
	e := &Error{Op: op, StatusCode: resp.StatusCode, Code: strings.TrimSpace(resp.Header.Get("iothub-errorcode"))}
	// Member names are matched exactly: envelope A says "Message", the bare
	// envelope B "message".
	var members map[string]json.RawMessage
	if json.Unmarshal(b, &members) == nil {
		var a envelopeA
		json.Unmarshal(members["Message"], &a.Message)
		json.Unmarshal(members["ExceptionMessage"], &a.ExceptionMessage)
		msg := strings.TrimSpace(a.Message)
		switch {
		case strings.HasPrefix(msg, "{"):
			e.readB([]byte(msg))
		case msg != "" || a.ExceptionMessage != "":
			// "ErrorCode:DeviceNotFound;Device d1 not found": the name,
			// then the text.
			if rest, ok := strings.CutPrefix(msg, "ErrorCode:"); ok {
				name, text, _ := strings.Cut(rest, ";")
				if e.Code == "" {
					e.Code = strings.TrimSpace(name)
				}
				msg = text
			}
			e.Message = strings.TrimSpace(msg)
			if t, ok := strings.CutPrefix(a.ExceptionMessage, "Tracking ID:"); ok {
				t, _, _ = strings.Cut(t, "-")
				e.TrackingID = t
			}
		case members["errorCode"] != nil:
			e.readB(b)
		}
	} else if len(b) > 0 && len(b) <= 512 && !json.Valid(b) && !strings.ContainsAny(string(b), "\x00") {
		e.Message = strings.TrimSpace(string(b))
	}
	if e.Number == 0 {
		if n, err := strconv.Atoi(e.Code); err == nil && n >= 100000 {
			e.Number = n
		} else {
			e.Number = nameNumbers[e.Code]
		}
	}
	if e.Code == "" && e.Number != 0 {
		e.Code = numberNames[e.Number]
	}
	return e
}

// readB reads envelope B's inner object.
func (e *Error) readB(b []byte) {
	var inner envelopeB
	if json.Unmarshal(b, &inner) != nil {
		return
	}
	if n, err := strconv.Atoi(inner.ErrorCode.String()); err == nil {
		e.Number = n
	}
	e.Message = inner.Message
	e.TrackingID = inner.TrackingID
}

// nameNumbers is numberNames reversed.
var nameNumbers = func() map[string]int {
	m := make(map[string]int, len(numberNames))
	for n, name := range numberNames {
		m[name] = n
	}
	return m
}()

// numberNames names the numeric codes for replies that carry only a number.
var numberNames = map[int]string{
	400004: "ArgumentInvalid",
	401002: "IotHubUnauthorizedAccess",
	403004: "DeviceMaximumQueueDepthExceeded",
	404001: "DeviceNotFound",
	404010: "ModuleNotFound",
	404103: "DeviceNotOnline",
	409001: "DeviceAlreadyExists",
	409301: "ModuleAlreadyExistsOnDevice",
	412001: "PreconditionFailed",
	413001: "MessageTooLarge",
	429001: "ThrottlingException",
	504101: "GatewayTimeout",
}

// ErrConfig is matched by the errors of New: a connection string that is
// not a service (policy) connection string, or unusable Options.
var ErrConfig = errors.New("service: invalid configuration")

// configError is returned by New for an unusable connection string or
// Options; it matches ErrConfig and wraps cause, if any.
func configError(cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if cause != nil {
		return fmt.Errorf("%w: %s: %w", ErrConfig, msg, cause)
	}
	return fmt.Errorf("%w: %s", ErrConfig, msg)
}
