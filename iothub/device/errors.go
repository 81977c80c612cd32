package device

import (
	"errors"
	"strconv"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/packet"
)

// Errors a Client returns. Every error it returns for a condition below
// matches the sentinel with errors.Is. Several are the iothub package's own
// sentinels, so a caller may test against either name.
var (
	// ErrInvalidConfig is wrapped by New for a Config it cannot use: a
	// malformed connection string, missing identity fields, an unknown
	// transport, unreadable certificate files.
	ErrInvalidConfig = errors.New("device: invalid config")

	// ErrUnauthorized means the hub refused the credentials: CONNACK 0x05
	// (or 0x04) even after one token renewal, or a twin status 401. A bad
	// key, an expired token that cannot be renewed, an unknown or disabled
	// identity all end here.
	ErrUnauthorized = iothub.ErrUnauthorized

	// ErrTokenExpired means the SAS token given in a connection string
	// (SharedAccessSignature=…) has expired and cannot be renewed. It also
	// matches ErrUnauthorized.
	ErrTokenExpired = &aliasError{msg: "device: SAS token expired (it cannot be renewed)", also: iothub.ErrUnauthorized}

	// ErrThrottled means the hub answered 429 (twin operations) and the
	// request was not retried further.
	ErrThrottled = iothub.ErrThrottled

	// ErrNotFound means the hub answered 404 (a twin request).
	ErrNotFound = iothub.ErrDeviceNotFound

	// ErrTimeout means a twin request got no reply before its deadline.
	ErrTimeout = iothub.ErrTimeout

	// ErrConnectionLost means a request was in flight when the connection
	// dropped and could not be completed.
	ErrConnectionLost = iothub.ErrConnectionLost

	// ErrKicked means the hub closed the connection right after it was
	// established again and again: another connection with the same
	// identity is taking it over (IoT Hub keeps one connection per
	// identity). The client stops rather than fight it.
	ErrKicked = errors.New("device: connection repeatedly closed by the hub: another client uses the same identity")

	// ErrUnreachable wraps failures to open the network connection (DNS,
	// TCP refused, TLS handshake, WebSocket upgrade, proxy).
	ErrUnreachable = errors.New("device: hub unreachable")

	// ErrClosed is returned by calls on a closed Client.
	ErrClosed = errors.New("device: client closed")

	// ErrNotConnected is returned by QoS 0 sends and twin requests while
	// the client has never connected.
	ErrNotConnected = errors.New("device: not connected")

	// ErrInvalidMessage is returned for a nil or unsendable message or
	// patch (a property that cannot be encoded, a topic over the limit).
	ErrInvalidMessage = errors.New("device: invalid message")
)

// aliasError is a sentinel that also matches another sentinel.
type aliasError struct {
	msg  string
	also error
}

func (e *aliasError) Error() string        { return e.msg }
func (e *aliasError) Is(target error) bool { return target == e.also }

// ConnectError is a CONNECT the hub refused with a CONNACK return code.
// Codes 4 and 5 match ErrUnauthorized.
type ConnectError struct {
	Code packet.ConnackCode
}

// Error formats the error as "device: hub refused CONNECT: code 5 (…)".
func (e *ConnectError) Error() string {
	return "device: hub refused CONNECT: code " + strconv.Itoa(int(e.Code)) + " (" + e.Code.Error() + ")"
}

// Is matches ErrUnauthorized for codes 4 and 5.
func (e *ConnectError) Is(target error) bool {
	return target == ErrUnauthorized && (e.Code == packet.ConnackBadUsernameOrPassword || e.Code == packet.ConnackNotAuthorized)
}

// Unwrap returns the packet.ConnackCode.
func (e *ConnectError) Unwrap() error { return e.Code }

// wrapErr is an error with a message that matches a sentinel and a cause.
type wrapErr struct {
	msg   string
	class error
	cause error
}

func (e *wrapErr) Error() string { return e.msg }
func (e *wrapErr) Unwrap() []error {
	if e.cause == nil {
		return []error{e.class}
	}
	return []error{e.class, e.cause}
}

func classErr(class error, msg string, cause error) error {
	if cause != nil {
		msg += ": " + cause.Error()
	}
	return &wrapErr{msg: msg, class: class, cause: cause}
}

func configErr(msg string, cause error) error {
	return classErr(ErrInvalidConfig, "device: "+msg, cause)
}
