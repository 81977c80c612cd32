package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hubwire/hubwire/internal/ctxio"
)

// Dialer opens connections to one URL. Each call dials anew; a Dialer is
// safe for concurrent use by multiple goroutines.
type Dialer interface {
	// DialContext connects and completes every handshake (proxy tunnel,
	// TLS, WebSocket upgrade) before ctx is done. The returned net.Conn
	// carries the MQTT byte stream; the caller closes it.
	DialContext(ctx context.Context) (net.Conn, error)
}

// Config configures NewDialer. The zero value dials directly, verifies TLS
// servers against the system roots and requests the WebSocket path "/".
type Config struct {
	// TLS configures the client side of tls, ssl, mqtts and wss: root CAs,
	// a client certificate for X.509 authentication, a server name. It is
	// cloned; ServerName is set from the URL host when empty (IoT Hub needs
	// SNI) and MinVersion is raised to TLS 1.2 when lower. nil means the
	// defaults.
	TLS *tls.Config

	// Proxy returns the proxy for a target URL (the URL given to
	// NewDialer), or nil for a direct connection. Supported proxy schemes:
	// http and https (an HTTP CONNECT tunnel, with Basic authentication
	// from the URL's user information) and socks5 and socks5h. Use
	// ProxyFromEnvironment for HTTPS_PROXY/HTTP_PROXY/NO_PROXY, or
	// ProxyURL for a fixed proxy. nil means no proxy.
	Proxy func(target *url.URL) (*url.URL, error)

	// Header holds extra request headers for the WebSocket upgrade (for
	// example Authorization); nil means none.
	Header http.Header

	// WebSocketPath is the request path used for ws and wss URLs that
	// have no path. Empty means "/". The iothub package sets
	// "/$iothub/websocket".
	WebSocketPath string

	// Timeout, when positive, bounds the whole dial (connect, proxy
	// tunnel, TLS and WebSocket handshakes) in addition to the context.
	Timeout time.Duration

	// ProxyTLS configures TLS to an https:// proxy (cloned, ServerName
	// set from the proxy host when empty). nil means the system roots.
	ProxyTLS *tls.Config

	// NetDial opens the TCP connection (to the proxy, when one is used).
	// nil means a net.Dialer with default settings.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Scheme kinds.
const (
	kindTCP = iota
	kindTLS
	kindWS
	kindWSS
)

// schemes maps the URL schemes transport understands to their kind and
// default port.
var schemes = map[string]struct {
	kind int
	port string
}{
	"tcp":   {kindTCP, "1883"},
	"mqtt":  {kindTCP, "1883"},
	"tls":   {kindTLS, "8883"},
	"ssl":   {kindTLS, "8883"},
	"mqtts": {kindTLS, "8883"},
	"ws":    {kindWS, "80"},
	"wss":   {kindWSS, "443"},
}

type dialer struct {
	cfg     Config
	target  *url.URL // the URL as given, with the default port filled in
	display string   // target without user information, for errors
	kind    int
	addr    string      // host:port
	tlsConf *tls.Config // prepared: cloned, ServerName and MinVersion set
	wsURL   *url.URL    // upgrade request URL (ws or wss scheme)
}

// NewDialer returns a Dialer for rawURL: tcp://host:port (alias mqtt://),
// tls://host:port (aliases ssl://, mqtts://), ws://host:port/path or
// wss://host:port/path. A missing port is 1883, 8883, 80 or 443 by scheme.
// An unknown scheme gives ErrUnsupportedScheme; a URL without a host gives
// ErrInvalidURL.
func NewDialer(rawURL string, cfg Config) (Dialer, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	s, ok := schemes[strings.ToLower(u.Scheme)]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedScheme, u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("%w: %q has no host", ErrInvalidURL, redact(u))
	}
	port := u.Port()
	if port == "" {
		port = s.port
	}
	d := &dialer{cfg: cfg, kind: s.kind, addr: net.JoinHostPort(host, port)}
	target := *u
	target.Scheme = strings.ToLower(u.Scheme)
	target.Host = d.addr
	d.target = &target
	d.display = redact(&target)
	if s.kind == kindTLS || s.kind == kindWSS {
		d.tlsConf = clientTLSConfig(cfg.TLS, host)
	}
	if s.kind == kindWS || s.kind == kindWSS {
		// The Host header carries the host as written (no default port).
		w := &url.URL{Scheme: "ws", Host: u.Host, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
		if s.kind == kindWSS {
			w.Scheme = "wss"
		}
		if w.Path == "" {
			w.Path, w.RawPath = cfg.WebSocketPath, ""
			if w.Path == "" {
				w.Path = "/"
			}
		}
		d.wsURL = w
	}
	return d, nil
}

// Dial is NewDialer(rawURL, cfg) followed by DialContext(ctx).
func Dial(ctx context.Context, rawURL string, cfg Config) (net.Conn, error) {
	d, err := NewDialer(rawURL, cfg)
	if err != nil {
		return nil, err
	}
	return d.DialContext(ctx)
}

func (d *dialer) DialContext(ctx context.Context) (net.Conn, error) {
	if d.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.cfg.Timeout)
		defer cancel()
	}
	conn, op, err := d.dialStream(ctx)
	if err != nil {
		return nil, d.fail(ctx, op, err)
	}
	if d.tlsConf != nil {
		tc := tls.Client(conn, d.tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, d.fail(ctx, "tls", err)
		}
		conn = tc
	}
	if d.wsURL != nil {
		wc, err := upgradeClient(ctx, conn, d.wsURL, d.cfg.Header)
		if err != nil {
			conn.Close()
			return nil, d.fail(ctx, "websocket", err)
		}
		conn = wc
	}
	return conn, nil
}

// dialStream opens the byte stream to d.addr, directly or through a proxy.
// It returns the failed step's name with an error.
func (d *dialer) dialStream(ctx context.Context) (net.Conn, string, error) {
	var proxyURL *url.URL
	if d.cfg.Proxy != nil {
		var err error
		proxyURL, err = d.cfg.Proxy(d.target)
		if err != nil {
			return nil, "proxy", err
		}
	}
	if proxyURL == nil {
		c, err := d.netDial(ctx, "tcp", d.addr)
		return c, "dial", err
	}
	c, err := dialProxy(ctx, proxyURL, d.addr, d.cfg.ProxyTLS, d.netDial)
	return c, "proxy", err
}

func (d *dialer) netDial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.cfg.NetDial != nil {
		return d.cfg.NetDial(ctx, network, addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// fail wraps err in a *DialError, adding the context's error when the
// context ended the dial and err does not already say so (ctxio.Err settles
// the race between the connection's deadline, set from ctx, and the
// context's own timer).
func (d *dialer) fail(ctx context.Context, op string, err error) error {
	if cerr := ctxio.Err(ctx, err); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	return &DialError{Op: op, URL: d.display, Err: err}
}

// parseURL parses rawURL, reporting ErrInvalidURL on failure. The error
// quotes neither the URL nor, when it may hold user information, the
// parser's detail: *url.Error repeats the input, password included.
func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err == nil {
		return u, nil
	}
	if strings.Contains(rawURL, "@") {
		return nil, fmt.Errorf("%w: does not parse (detail withheld: the URL has user information)", ErrInvalidURL)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
}

// redact returns u as a string without user information.
func redact(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = nil
	return c.String()
}
