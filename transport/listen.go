package transport

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ListenConfig configures Listen. The zero value serves tcp and ws; the TLS
// schemes need TLS.
type ListenConfig struct {
	// TLS is the server configuration for tls, ssl, mqtts and wss: the
	// certificate, and client-certificate policy in ClientAuth
	// (tls.RequireAndVerifyClientCert to require one,
	// tls.VerifyClientCertIfGiven or tls.RequestClientCert to request one
	// without requiring it, as IoT Hub does). It is cloned and MinVersion
	// is raised to TLS 1.2 when lower.
	TLS *tls.Config

	// HandshakeTimeout bounds each accepted connection's TLS handshake and
	// WebSocket upgrade together. Zero or negative means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// OnHandshakeError, when set, is told about each accepted connection
	// whose handshake failed (the connection is closed and never returned
	// by Accept); err is a *HandshakeError. It is called from the
	// connection's handshake goroutine and must be safe for concurrent
	// use.
	OnHandshakeError func(err error)
}

// Listener accepts connections carrying MQTT byte streams on one URL. For
// tls and ws/wss the TLS handshake and the WebSocket upgrade run on a
// goroutine per connection, bounded by ListenConfig.HandshakeTimeout, so a
// slow client never delays Accept for others; Accept returns only
// connections whose handshakes succeeded.
//
// A Listener is safe for concurrent use by multiple goroutines.
type Listener struct {
	ln      net.Listener
	kind    int
	url     string
	path    string
	tlsConf *tls.Config
	timeout time.Duration
	onErr   func(error)

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	errMu     sync.Mutex
	acceptErr error // the inner listener's fatal error
	failed    chan struct{}
}

// Listen listens on the host and port of rawURL (port 0 picks a free one)
// with the URL's scheme: tcp (alias mqtt), tls (ssl, mqtts), ws or wss. For
// ws and wss a non-empty URL path is the only path served (upgrades to
// others get 404); an empty path serves any. The upgrade requires the
// "mqtt" subprotocol (400 otherwise). ctx bounds only the setup of the
// listening socket.
func Listen(ctx context.Context, rawURL string, cfg ListenConfig) (*Listener, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	s, ok := schemes[strings.ToLower(u.Scheme)]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedScheme, u.Scheme)
	}
	l := &Listener{
		kind:    s.kind,
		timeout: cmp.Or(max(cfg.HandshakeTimeout, 0), DefaultHandshakeTimeout),
		onErr:   cfg.OnHandshakeError,
		conns:   make(chan net.Conn),
		done:    make(chan struct{}),
		failed:  make(chan struct{}),
	}
	if s.kind == kindTLS || s.kind == kindWSS {
		if l.tlsConf, err = serverTLSConfig(cfg.TLS); err != nil {
			return nil, err
		}
	}
	if s.kind == kindWS || s.kind == kindWSS {
		l.path = u.Path
	}
	port := u.Port()
	if port == "" {
		port = s.port
	}
	var lc net.ListenConfig
	l.ln, err = lc.Listen(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, err
	}
	pub := url.URL{Scheme: strings.ToLower(u.Scheme), Host: l.ln.Addr().String(), Path: l.path}
	l.url = pub.String()
	if l.kind != kindTCP {
		go l.acceptLoop()
	}
	return l, nil
}

// URL returns the URL clients dial to reach l, with the bound port (for
// example "wss://127.0.0.1:40123/$iothub/websocket").
func (l *Listener) URL() string { return l.url }

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Accept waits for the next connection whose handshakes succeeded. After
// Close it returns an error matching net.ErrClosed. For tls the result is a
// *tls.Conn, for ws and wss a *WSConn; TLSConnectionState reads the peer's
// certificates from either.
func (l *Listener) Accept() (net.Conn, error) {
	if l.kind == kindTCP {
		return l.ln.Accept()
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.ln.Addr(), Err: net.ErrClosed}
	case <-l.failed:
		l.errMu.Lock()
		defer l.errMu.Unlock()
		return nil, l.acceptErr
	}
}

// Close stops listening. Connections already returned by Accept stay open;
// connections still in their handshakes are closed.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.closeErr = l.ln.Close()
	})
	return l.closeErr
}

func (l *Listener) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporaryAcceptError(err) {
				// Out of file descriptors and the like: back off as
				// net/http does, then try again.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(backoff):
				case <-l.done:
					return
				}
				continue
			}
			l.errMu.Lock()
			l.acceptErr = err
			l.errMu.Unlock()
			close(l.failed)
			return
		}
		backoff = 0
		go l.handshake(c)
	}
}

// isTemporaryAcceptError reports errors worth retrying Accept after: the
// process ran out of descriptors or memory for a moment, or the peer went
// away before Accept.
func isTemporaryAcceptError(err error) bool {
	for _, e := range [...]error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// handshake runs the TLS handshake and WebSocket upgrade of c within the
// handshake timeout and hands the result to Accept.
func (l *Listener) handshake(c net.Conn) {
	conn, err := l.serverHandshake(c)
	if err != nil {
		c.Close()
		if l.onErr != nil {
			l.onErr(err)
		}
		return
	}
	select {
	case l.conns <- conn:
	case <-l.done:
		conn.Close()
	}
}

func (l *Listener) serverHandshake(c net.Conn) (net.Conn, error) {
	remote := c.RemoteAddr().String()
	_ = c.SetDeadline(time.Now().Add(l.timeout))
	conn := c
	if l.tlsConf != nil {
		tc := tls.Server(c, l.tlsConf)
		if err := tc.Handshake(); err != nil {
			return nil, &HandshakeError{Op: "tls", RemoteAddr: remote, Err: err}
		}
		conn = tc
	}
	if l.kind == kindWS || l.kind == kindWSS {
		wc, err := upgradeServer(conn, l.path)
		if err != nil {
			return nil, &HandshakeError{Op: "websocket", RemoteAddr: remote, Err: err}
		}
		conn = wc
	}
	_ = c.SetDeadline(time.Time{})
	return conn, nil
}

var _ net.Listener = (*Listener)(nil)
