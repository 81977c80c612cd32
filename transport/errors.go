package transport

import (
	"context"
	"errors"
	"net"
	"strconv"
)

// Sentinel errors. Errors returned by this package wrap one of these (or an
// error of the layer below, such as a *net.OpError or a TLS alert) so callers
// branch with errors.Is.
var (
	// ErrUnsupportedScheme is returned for a URL whose scheme is none of
	// tcp, mqtt, tls, ssl, mqtts, ws, wss (or, for a proxy URL, http, https,
	// socks5, socks5h).
	ErrUnsupportedScheme = errors.New("transport: unsupported URL scheme")

	// ErrInvalidURL is returned for a URL that cannot be parsed or has no
	// host.
	ErrInvalidURL = errors.New("transport: invalid URL")

	// ErrNoTLSConfig is returned by Listen for a TLS scheme (tls, ssl, mqtts,
	// wss) without a certificate in ListenConfig.TLS.
	ErrNoTLSConfig = errors.New("transport: TLS listener needs a tls.Config with a certificate")

	// ErrUpgrade is returned when the WebSocket opening handshake fails: the
	// server answered a status other than 101, or a malformed response, or
	// the client sent a malformed request.
	ErrUpgrade = errors.New("transport: websocket upgrade failed")

	// ErrSubprotocol is returned when the WebSocket peer does not agree on
	// the "mqtt" subprotocol: the server answered the upgrade without it, or
	// the client did not offer it.
	ErrSubprotocol = errors.New(`transport: websocket subprotocol "mqtt" not negotiated`)

	// ErrBadPath is reported by listeners and handlers for a WebSocket
	// upgrade request to a path other than the configured one; the client
	// receives 404.
	ErrBadPath = errors.New("transport: websocket path not served here")

	// ErrProxy is returned when a proxy refuses or fails to open the tunnel.
	// A *ProxyError carries the HTTP status of a CONNECT proxy.
	ErrProxy = errors.New("transport: proxy failed")

	// ErrProxyAuth is returned when an HTTP proxy answers 407 Proxy
	// Authentication Required. It wraps ErrProxy.
	ErrProxyAuth = &ProxyError{StatusCode: 407, Status: "407 Proxy Authentication Required"}

	// ErrWebSocketProtocol is returned by WSConn.Read when the peer breaks
	// RFC 6455 framing (an unmasked client frame, a reserved bit, a bad
	// continuation) or sends a text frame, which MQTT over WebSocket forbids
	// [MQTT-6.0.0-1]. The connection is then unusable.
	ErrWebSocketProtocol = errors.New("transport: websocket protocol violation")
)

// ProxyError is an HTTP CONNECT proxy's refusal. It wraps ErrProxy, and
// errors.Is(err, ErrProxyAuth) holds for a 407 answer.
type ProxyError struct {
	// StatusCode is the proxy's HTTP status code.
	StatusCode int
	// Status is the proxy's status line, such as "403 Forbidden".
	Status string
}

// Error returns the proxy's status line with context.
func (e *ProxyError) Error() string {
	return "transport: proxy refused CONNECT: " + e.Status
}

// Unwrap returns ErrProxy.
func (e *ProxyError) Unwrap() error { return ErrProxy }

// Is reports whether target is ErrProxyAuth and e is a 407 answer.
func (e *ProxyError) Is(target error) bool {
	t, ok := target.(*ProxyError)
	return ok && t == ErrProxyAuth && e.StatusCode == 407
}

// CloseError is returned by WSConn.Read when the peer closed the WebSocket
// with a status other than normal closure (1000), going away (1001) or no
// status; those end the stream with io.EOF.
type CloseError struct {
	// Code is the WebSocket close status code, such as 1002 or 1011.
	Code int
	// Reason is the peer's UTF-8 reason text, possibly empty.
	Reason string
}

// Error returns the close status and reason.
func (e *CloseError) Error() string {
	s := "transport: websocket closed by peer with status " + strconv.Itoa(e.Code)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// DialError describes a failed dial: which step failed, for which URL, and
// why. It implements net.Error, so a dial that ran out of time (context
// deadline, Config.Timeout, an I/O timeout) reports Timeout() == true.
type DialError struct {
	// Op is the step that failed: "dial", "proxy", "tls" or "websocket".
	Op string
	// URL is the dialed URL without user information.
	URL string
	// Err is the cause.
	Err error
}

// Error names the step, the URL and the cause.
func (e *DialError) Error() string {
	return "transport: " + e.Op + " " + e.URL + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *DialError) Unwrap() error { return e.Err }

// Timeout reports whether the dial failed because time ran out.
func (e *DialError) Timeout() bool { return isTimeout(e.Err) }

// Temporary reports the same as Timeout. It exists to implement net.Error.
func (e *DialError) Temporary() bool { return isTimeout(e.Err) }

var _ net.Error = (*DialError)(nil)

// HandshakeError describes a failed server-side handshake (TLS or WebSocket
// upgrade) of an accepted connection, as passed to
// ListenConfig.OnHandshakeError and WSHandler.OnHandshakeError. It implements
// net.Error: a client that sent nothing within the handshake timeout gives
// Timeout() == true.
type HandshakeError struct {
	// Op is "tls" or "websocket".
	Op string
	// RemoteAddr is the peer's address.
	RemoteAddr string
	// Err is the cause; it wraps ErrBadPath, ErrSubprotocol or ErrUpgrade
	// for WebSocket rejections.
	Err error
}

// Error names the handshake, the peer and the cause.
func (e *HandshakeError) Error() string {
	return "transport: " + e.Op + " handshake from " + e.RemoteAddr + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *HandshakeError) Unwrap() error { return e.Err }

// Timeout reports whether the handshake ran out of time.
func (e *HandshakeError) Timeout() bool { return isTimeout(e.Err) }

// Temporary reports the same as Timeout. It exists to implement net.Error.
func (e *HandshakeError) Temporary() bool { return isTimeout(e.Err) }

var _ net.Error = (*HandshakeError)(nil)

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
