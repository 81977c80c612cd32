package transport

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpproxy"
	"golang.org/x/net/proxy"

	"github.com/hubwire/hubwire/internal/ctxio"
)

// ProxyFromEnvironment returns a Config.Proxy function that picks the proxy
// from HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or their lower-case forms), read
// once, now, through golang.org/x/net/http/httpproxy. Targets with TLS (tls,
// ssl, mqtts, wss) use HTTPS_PROXY, the others HTTP_PROXY. As in net/http,
// localhost and loopback targets are never proxied.
func ProxyFromEnvironment() func(target *url.URL) (*url.URL, error) {
	return ProxyFromConfig(httpproxy.FromEnvironment())
}

// ProxyFromConfig is ProxyFromEnvironment with the settings given in c
// instead of read from the environment.
func ProxyFromConfig(c *httpproxy.Config) func(target *url.URL) (*url.URL, error) {
	f := c.ProxyFunc()
	return func(target *url.URL) (*url.URL, error) {
		u := *target
		u.Scheme = "http"
		if s, ok := schemes[strings.ToLower(target.Scheme)]; ok && (s.kind == kindTLS || s.kind == kindWSS) {
			u.Scheme = "https"
		}
		return f(&u)
	}
}

// ProxyURL returns a Config.Proxy function that sends every connection
// through the proxy at u (http://, https://, socks5:// or socks5h://, with
// optional user:password@ for Basic or SOCKS5 authentication).
func ProxyURL(u *url.URL) func(target *url.URL) (*url.URL, error) {
	return func(*url.URL) (*url.URL, error) { return u, nil }
}

// maxProxyResponse bounds the bytes read for a CONNECT response's status
// line and headers.
const maxProxyResponse = 16 << 10

// dialProxy opens a tunnel to addr (host:port) through the proxy at p.
func dialProxy(ctx context.Context, p *url.URL, addr string, proxyTLS *tls.Config, netDial func(context.Context, string, string) (net.Conn, error)) (net.Conn, error) {
	scheme := strings.ToLower(p.Scheme)
	port := p.Port()
	switch scheme {
	case "http":
		port = cmp.Or(port, "80")
	case "https":
		port = cmp.Or(port, "443")
	case "socks5", "socks5h":
		port = cmp.Or(port, "1080")
	default:
		return nil, fmt.Errorf("%w: proxy scheme %q", ErrUnsupportedScheme, p.Scheme)
	}
	if p.Hostname() == "" {
		return nil, fmt.Errorf("%w: proxy URL has no host", ErrInvalidURL)
	}
	proxyAddr := net.JoinHostPort(p.Hostname(), port)

	if scheme == "socks5" || scheme == "socks5h" {
		var auth *proxy.Auth
		if p.User != nil {
			pw, _ := p.User.Password()
			auth = &proxy.Auth{User: p.User.Username(), Password: pw}
		}
		d, err := proxy.SOCKS5("tcp", proxyAddr, auth, forwardDialer(netDial))
		if err != nil {
			return nil, err
		}
		return d.(proxy.ContextDialer).DialContext(ctx, "tcp", addr)
	}

	conn, err := netDial(ctx, "tcp", proxyAddr)
	if err != nil {
		return nil, err
	}
	if scheme == "https" {
		tc := tls.Client(conn, clientTLSConfig(proxyTLS, p.Hostname()))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS to proxy: %w", err)
		}
		conn = tc
	}
	tunnel, err := connectTunnel(ctx, conn, p, addr)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return tunnel, nil
}

// connectTunnel asks the HTTP proxy on conn to open a tunnel to addr.
func connectTunnel(ctx context.Context, conn net.Conn, p *url.URL, addr string) (net.Conn, error) {
	var rest []byte
	err := ctxio.Do(ctx, conn, func() error {
		var req strings.Builder
		req.WriteString("CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n")
		if p.User != nil {
			pw, _ := p.User.Password()
			cred := base64.StdEncoding.EncodeToString([]byte(p.User.Username() + ":" + pw))
			req.WriteString("Proxy-Authorization: Basic " + cred + "\r\n")
		}
		req.WriteString("\r\n")
		if _, err := io.WriteString(conn, req.String()); err != nil {
			return err
		}
		br := bufio.NewReaderSize(io.LimitReader(conn, maxProxyResponse), 1024)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			return fmt.Errorf("reading CONNECT response: %w", err)
		}
		// resp.Body is never read or closed: after a 2xx the bytes that
		// follow the header are the tunnel's, whatever Content-Length or
		// Transfer-Encoding says (RFC 9110 §9.3.6), and closing the body
		// would consume them; after a refusal the connection is dropped
		// without waiting for the body.
		if resp.StatusCode/100 != 2 {
			return &ProxyError{StatusCode: resp.StatusCode, Status: resp.Status}
		}
		if n := br.Buffered(); n > 0 {
			b, _ := br.Peek(n)
			rest = append([]byte(nil), b...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return &prefixConn{Conn: conn, pre: rest}, nil
	}
	return conn, nil
}

// prefixConn returns pre before reading from Conn: bytes a proxy sent right
// after its CONNECT response.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// NetConn returns the tunnel connection.
func (c *prefixConn) NetConn() net.Conn { return c.Conn }

// forwardDialer adapts a dial function to x/net/proxy's Dialer and
// ContextDialer.
type forwardDialer func(ctx context.Context, network, addr string) (net.Conn, error)

func (f forwardDialer) Dial(network, addr string) (net.Conn, error) {
	return f(context.Background(), network, addr)
}

func (f forwardDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}
