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
	// is raised to TLS 1.2 when lower, in the configurations its
	// GetConfigForClient returns too.
	TLS *tls.Config

	// HandshakeTimeout bounds each accepted connection's TLS handshake and
	// WebSocket upgrade together. Zero or negative means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// MaxPendingHandshakes bounds the connections taken from the socket
	// but not yet returned by Accept: those in their TLS handshake or
	// WebSocket upgrade, and those done and waiting for an Accept call.
	// While that many are pending the listener stops taking connections,
	// which then wait in the kernel's listen backlog, so a flood of slow
	// or silent clients costs at most this many goroutines and
	// descriptors, each for at most HandshakeTimeout. Zero means
	// DefaultMaxPendingHandshakes; negative means no bound. It does not
	// apply to tcp, whose Accept takes connections from the socket
	// itself.
	MaxPendingHandshakes int

	// OnHandshakeError, when set, is told about each accepted connection
	// whose handshake failed (the connection is closed and never returned
	// by Accept); err is a *HandshakeError. It is called from the
	// connection's handshake goroutine and must be safe for concurrent
	// use. Handshakes cut short by Close are not reported.
	OnHandshakeError func(err error)
}

// DefaultMaxPendingHandshakes is ListenConfig.MaxPendingHandshakes when
// unset: enough to keep two cores busy with TLS handshakes through a
// reconnect storm of thousands of devices, few enough that silent clients
// cannot pile up goroutines and descriptors without bound.
const DefaultMaxPendingHandshakes = 1024

// Listener accepts connections carrying MQTT byte streams on one URL. For
// tls and ws/wss the TLS handshake and the WebSocket upgrade run on a
// goroutine per connection, bounded by ListenConfig.HandshakeTimeout, so a
// slow client never delays Accept for others; Accept returns only
// connections whose handshakes succeeded. ListenConfig.MaxPendingHandshakes
// bounds how many connections are between the socket and Accept.
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

	// slots holds a token per pending connection (nil: no bound).
	slots chan struct{}
	// wg counts the accept loop and the handshake goroutines; Close
	// waits for them.
	wg sync.WaitGroup

	mu      sync.Mutex
	closed  bool                  // Close has begun; guarded by mu
	pending map[net.Conn]struct{} // raw connections in their handshakes
}

// Listen listens on the host and port of rawURL (port 0 picks a free one)
// with the URL's scheme: tcp (alias mqtt), tls (ssl, mqtts), ws or wss. For
// ws and wss a non-empty URL path is the only path served (upgrades to
// others get 404); an empty path serves any. The upgrade requires the
// "mqtt" subprotocol (400 otherwise). ctx bounds only the setup of the
// listening socket.
func Listen(ctx context.Context, rawURL string, cfg ListenConfig) (*Listener, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
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
		pending: make(map[net.Conn]struct{}),
	}
	if n := cmp.Or(cfg.MaxPendingHandshakes, DefaultMaxPendingHandshakes); n > 0 {
		l.slots = make(chan struct{}, n)
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
		l.wg.Add(1)
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
	case <-l.done: // closed: never hand out a connection any more
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.ln.Addr(), Err: net.ErrClosed}
	default:
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
// connections still in their handshakes, or done and not yet accepted, are
// closed. Close returns once every goroutine of the listener has ended
// (an OnHandshakeError call under way may still be running; it may itself
// call Close).
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		for c := range l.pending {
			c.Close() // ends its handshake now, not at the timeout
		}
		l.mu.Unlock()
		close(l.done)
		l.closeErr = l.ln.Close()
		l.wg.Wait()
	})
	return l.closeErr
}

// pendingCount returns the number of connections in their handshakes.
func (l *Listener) pendingCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}

// acquire takes a pending-connection slot, waiting while all are in use.
// It reports false if the listener closed meanwhile.
func (l *Listener) acquire() bool {
	if l.slots == nil {
		return true
	}
	select {
	case l.slots <- struct{}{}:
		return true
	case <-l.done:
		return false
	}
}

func (l *Listener) release() {
	if l.slots != nil {
		<-l.slots
	}
}

// track records c as in its handshake, unless the listener is closing.
func (l *Listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

// untrack forgets c and reports whether the listener is closing.
func (l *Listener) untrack(c net.Conn) (closing bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pending, c)
	return l.closed
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		if !l.acquire() {
			return
		}
		c, err := l.ln.Accept()
		if err != nil {
			l.release()
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
		if !l.track(c) {
			c.Close()
			l.release()
			return
		}
		l.wg.Add(1)
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
// handshake timeout and hands the result to Accept. It holds c's slot until
// then.
func (l *Listener) handshake(c net.Conn) {
	conn, err := l.serverHandshake(c)
	closing := l.untrack(c)
	if err != nil {
		c.Close()
		l.release()
		l.wg.Done()
		// The callback runs outside the listener's accounting: it may
		// take its time without holding a slot, and it may call Close.
		if l.onErr != nil && !closing {
			l.onErr(err)
		}
		return
	}
	defer l.wg.Done()
	defer l.release()
	if closing {
		conn.Close()
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
