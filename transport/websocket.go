package transport

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gobwas/ws"

	"github.com/hubwire/hubwire/internal/ctxio"
)

// Subprotocol is the WebSocket subprotocol MQTT uses (MQTT 3.1.1 §6). It is
// requested by the client and required by the server, compared without
// regard to case (the Azure IoT C SDK sends "MQTT").
const Subprotocol = "mqtt"

// DefaultHandshakeTimeout bounds a server-side handshake (TLS and WebSocket
// upgrade) when no timeout is configured.
const DefaultHandshakeTimeout = 10 * time.Second

// maxUpgradeBytes bounds what either side reads of the other's opening
// handshake (request or response line and headers). gobwas/ws collects a
// line longer than its buffer without limit, so an unbounded read would let
// a peer that never sends a newline grow memory for the whole handshake
// timeout. Azure SDKs send well under 1 KiB.
const maxUpgradeBytes = 16 << 10

// limitedConn reads at most a fixed number of bytes from a connection and
// writes to it freely: the view of the connection an opening handshake gets.
type limitedConn struct {
	io.LimitedReader
	io.Writer
}

func newLimitedConn(c net.Conn) *limitedConn {
	return &limitedConn{LimitedReader: io.LimitedReader{R: c, N: maxUpgradeBytes}, Writer: c}
}

// clientProtocols is shared by every client upgrade; gobwas/ws only reads it.
var clientProtocols = []string{Subprotocol}

// upgradeClient performs the client side of the WebSocket opening handshake
// on conn and returns the framed connection.
func upgradeClient(ctx context.Context, conn net.Conn, u *url.URL, h http.Header) (*WSConn, error) {
	d := ws.Dialer{Protocols: clientProtocols}
	if len(h) > 0 {
		d.Header = ws.HandshakeHeaderHTTP(h)
	}
	var (
		hs  ws.Handshake
		wc  *WSConn
		err error
	)
	err = ctxio.Do(ctx, conn, func() error {
		br, shs, uerr := d.Upgrade(newLimitedConn(conn), u)
		if uerr != nil {
			return uerr
		}
		hs = shs
		wc = NewWSConn(conn, br, true)
		if br != nil {
			ws.PutReader(br)
		}
		return nil
	})
	switch {
	case errors.Is(err, ws.ErrHandshakeBadSubProtocol):
		return nil, fmt.Errorf("%w: server chose a subprotocol not offered", ErrSubprotocol)
	case err != nil:
		var se ws.StatusError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: server answered HTTP %d", ErrUpgrade, int(se))
		}
		if isTimeout(err) || errors.Is(err, net.ErrClosed) || errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrUpgrade, err)
	case !strings.EqualFold(hs.Protocol, Subprotocol):
		return nil, fmt.Errorf("%w: server answered without it", ErrSubprotocol)
	}
	return wc, nil
}

// serverUpgrade holds one server-side upgrade's outcome; its methods are the
// gobwas/ws Upgrader hooks.
type serverUpgrade struct {
	path     string
	protocol string
	err      error
}

func (s *serverUpgrade) onRequest(uri []byte) error {
	if s.path == "" {
		return nil
	}
	p := uri
	if i := bytes.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if string(p) == s.path {
		return nil
	}
	if up, err := url.PathUnescape(string(p)); err == nil && up == s.path {
		return nil
	}
	s.err = fmt.Errorf("%w: %q", ErrBadPath, p)
	return ws.RejectConnectionError(ws.RejectionStatus(http.StatusNotFound), ws.RejectionReason("websocket path not found"))
}

// selectProtocol picks the client's spelling of "mqtt" from a
// Sec-WebSocket-Protocol value, so the answer echoes what was offered.
func (s *serverUpgrade) selectProtocol(v []byte) (string, bool) {
	for tok := range bytes.SplitSeq(v, []byte{','}) {
		tok = bytes.TrimSpace(tok)
		if bytes.EqualFold(tok, []byte(Subprotocol)) {
			switch string(tok) {
			case "mqtt":
				s.protocol = "mqtt"
			case "MQTT":
				s.protocol = "MQTT"
			default:
				s.protocol = string(tok)
			}
			return s.protocol, true
		}
	}
	return "", true
}

func (s *serverUpgrade) beforeUpgrade() (ws.HandshakeHeader, error) {
	if s.protocol == "" {
		s.err = fmt.Errorf("%w: client did not offer it", ErrSubprotocol)
		return nil, ws.RejectConnectionError(ws.RejectionStatus(http.StatusBadRequest), ws.RejectionReason(`subprotocol "mqtt" required`))
	}
	return ws.HandshakeHeaderString(""), nil
}

// upgradeServer performs the server side of the WebSocket opening handshake
// on conn, which the caller bounds with a deadline. An empty path accepts
// any request path.
func upgradeServer(conn net.Conn, path string) (*WSConn, error) {
	s := &serverUpgrade{path: path}
	u := ws.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 512,
		OnRequest:       s.onRequest,
		ProtocolCustom:  s.selectProtocol,
		OnBeforeUpgrade: s.beforeUpgrade,
	}
	if _, err := u.Upgrade(newLimitedConn(conn)); err != nil {
		if s.err != nil {
			return nil, s.err
		}
		if isTimeout(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrUpgrade, err)
	}
	return NewWSConn(conn, nil, false), nil
}

// WSHandler is an http.Handler that upgrades requests to WebSocket
// connections carrying MQTT, for mounting the endpoint on an existing
// http.Server (for example next to a REST API on port 443). The TLS, if any,
// is the server's.
//
// A request for another path than Path gets 404, one without the "mqtt"
// subprotocol 400, and neither reaches OnConn.
type WSHandler struct {
	// Path is the only request path served; empty serves any path.
	Path string

	// OnConn receives each upgraded connection and owns it. It runs on the
	// request's goroutine and may block for the connection's lifetime (or
	// hand the connection to another goroutine, for example over a
	// channel, and return).
	OnConn func(c net.Conn)

	// OnHandshakeError, when set, is told about each rejected upgrade; err
	// is a *HandshakeError.
	OnHandshakeError func(err error)

	// HandshakeTimeout bounds writing the upgrade response. Zero or
	// negative means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

// ServeHTTP implements http.Handler.
func (h *WSHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, err error) {
		http.Error(w, err.Error(), status)
		if h.OnHandshakeError != nil {
			h.OnHandshakeError(&HandshakeError{Op: "websocket", RemoteAddr: r.RemoteAddr, Err: err})
		}
	}
	if h.Path != "" && r.URL.Path != h.Path {
		fail(http.StatusNotFound, fmt.Errorf("%w: %q", ErrBadPath, r.URL.Path))
		return
	}
	var s serverUpgrade
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		if _, _ = s.selectProtocol([]byte(v)); s.protocol != "" {
			break
		}
	}
	if s.protocol == "" {
		fail(http.StatusBadRequest, fmt.Errorf("%w: client did not offer it", ErrSubprotocol))
		return
	}
	u := ws.HTTPUpgrader{
		Timeout:  cmp.Or(max(h.HandshakeTimeout, 0), DefaultHandshakeTimeout),
		Protocol: func(p string) bool { return p == s.protocol },
	}
	conn, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		if h.OnHandshakeError != nil {
			h.OnHandshakeError(&HandshakeError{Op: "websocket", RemoteAddr: r.RemoteAddr, Err: fmt.Errorf("%w: %w", ErrUpgrade, err)})
		}
		return
	}
	wc := NewWSConn(conn, rw.Reader, false)
	if h.OnConn == nil {
		wc.Close()
		return
	}
	h.OnConn(wc)
}
