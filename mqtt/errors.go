package mqtt

import (
	"errors"
	"strconv"
)

// Errors returned by the client. CONNACK refusals are returned as
// packet.ConnackCode values (test with errors.Is(err,
// packet.ConnackNotAuthorized) or errors.As).
var (
	// ErrClosed is returned by calls on a closed client.
	ErrClosed = errors.New("mqtt: client closed")
	// ErrNotConnected is returned by QoS 0 publishes, subscribes and
	// unsubscribes while no connection is up (QoS 1 and 2 publishes are
	// stored and sent after reconnecting instead).
	ErrNotConnected = errors.New("mqtt: not connected")
	// ErrConnected is returned by Connect when the client is already
	// connected or reconnecting.
	ErrConnected = errors.New("mqtt: already connected")
	// ErrConnectionLost is returned for a subscribe or unsubscribe whose
	// connection closed before its acknowledgement arrived.
	ErrConnectionLost = errors.New("mqtt: connection lost")
	// ErrInFlightFull is returned by publishes when Config.FailWhenFull is
	// set and the in-flight window is full, and wrapped by the error of a
	// publish, subscribe or unsubscribe that finds all 65,535 packet ids
	// in use.
	ErrInFlightFull = errors.New("mqtt: in-flight window full")
	// ErrInvalidMessage is wrapped by errors about a Message or
	// Subscription that cannot be sent (bad topic, QoS 3, empty filter).
	ErrInvalidMessage = errors.New("mqtt: invalid message")
	// ErrPingTimeout is the cause reported when the broker did not answer
	// a PINGREQ within Config.PingTimeout.
	ErrPingTimeout = errors.New("mqtt: no PINGRESP within ping timeout")
	// ErrProtocol is wrapped by errors about packets the broker should not
	// have sent: an unexpected type, or one that does not decode (those
	// errors also match the packet package's error).
	ErrProtocol = errors.New("mqtt: protocol violation by broker")

	// ErrConnectTimeout is wrapped by the error of a connection attempt
	// that Config.ConnectTimeout ended (dial plus CONNECT/CONNACK). It is a
	// net.Error whose Timeout reports true. An attempt ended by the
	// deadline of the context given to Connect matches
	// context.DeadlineExceeded instead.
	ErrConnectTimeout error = &timeoutError{"mqtt: connect timed out (Config.ConnectTimeout)"}

	// ErrPending is wrapped, together with the context's error, by the
	// error of a QoS 1 or 2 Publish whose context ended after the message
	// was accepted: it is in the Store and will still be sent (and resent
	// across reconnects) until the broker acknowledges it or Close gives
	// up on it. Do not publish it again (that would send it twice); to
	// learn the outcome, use PublishAsync, whose callback reports it.
	ErrPending = errors.New("mqtt: publish accepted, acknowledgement pending")

	// ErrNotAccepted is wrapped, together with the context's error, by the
	// error of a QoS 1 or 2 Publish or PublishAsync whose context ended
	// while it waited for a slot in the full in-flight window: the message
	// was not stored and will not be sent. Publishing it again is safe.
	ErrNotAccepted = errors.New("mqtt: publish not accepted: in-flight window stayed full")
)

// timeoutError is a sentinel that is also a net.Error timeout.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }

// Timeout reports true: the operation ran out of time.
func (e *timeoutError) Timeout() bool { return true }

// Temporary reports true, like every timeout of package net.
func (e *timeoutError) Temporary() bool { return true }

// SubscribeError reports filters the broker refused (SUBACK return code
// 0x80). The other filters of the same Subscribe were granted.
type SubscribeError struct {
	// Filters are the refused filters, in the order they were given.
	Filters []string
}

// Error lists the refused filters, each quoted.
func (e *SubscribeError) Error() string {
	b := []byte("mqtt: subscription refused for ")
	for i, f := range e.Filters {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendQuote(b, f)
	}
	return string(b)
}

func invalid(what string, err error) error {
	if err == nil {
		return &wrapped{msg: "mqtt: " + what, err: ErrInvalidMessage}
	}
	return &wrapped{msg: "mqtt: " + what + ": " + err.Error(), err: ErrInvalidMessage, cause: err}
}

// wrapped is an error that matches two targets: a sentinel of this package
// and the underlying cause (such as a *packet.EncodeError).
type wrapped struct {
	msg   string
	err   error
	cause error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() []error {
	if e.cause == nil {
		return []error{e.err}
	}
	return []error{e.err, e.cause}
}
