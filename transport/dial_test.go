package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/testcert"
)

func TestDialListenSchemes(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name    string
		listen  string
		dial    string // scheme to dial with, on the listener's host:port
		tls     bool
		wantTyp string
	}{
		{name: "tcp", listen: "tcp://127.0.0.1:0", dial: "tcp"},
		{name: "mqtt-alias", listen: "tcp://127.0.0.1:0", dial: "mqtt"},
		{name: "tls", listen: "tls://127.0.0.1:0", dial: "tls", tls: true},
		{name: "ssl-alias", listen: "ssl://127.0.0.1:0", dial: "ssl", tls: true},
		{name: "mqtts-alias", listen: "mqtts://127.0.0.1:0", dial: "mqtts", tls: true},
		{name: "ws", listen: "ws://127.0.0.1:0/mqtt", dial: "ws"},
		{name: "wss", listen: "wss://127.0.0.1:0/$iothub/websocket", dial: "wss", tls: true},
		{name: "tls-ipv6", listen: "tls://[::1]:0", dial: "tls", tls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lcfg ListenConfig
			if tc.tls {
				lcfg.TLS = p.serverTLS(tls.NoClientCert)
			}
			l, err := Listen(testContext(t), tc.listen, lcfg)
			if err != nil {
				if tc.name == "tls-ipv6" {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			defer l.Close()
			accepted := acceptOne(t, l)
			u, _ := url.Parse(l.URL())
			u.Scheme = tc.dial
			c, err := Dial(testContext(t), u.String(), Config{TLS: p.ca.ClientConfig(nil)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := waitConn(t, accepted)
			exchange(t, c, s)
			if _, ok := TLSConnectionState(s); ok != tc.tls {
				t.Errorf("TLSConnectionState ok = %v, want %v", ok, tc.tls)
			}
		})
	}
}

func TestTLSClientCertificates(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name     string
		auth     tls.ClientAuthType
		withCert bool
		wantOK   bool
	}{
		{name: "required/given", auth: tls.RequireAndVerifyClientCert, withCert: true, wantOK: true},
		{name: "required/missing", auth: tls.RequireAndVerifyClientCert, withCert: false, wantOK: false},
		{name: "requested/given", auth: tls.VerifyClientCertIfGiven, withCert: true, wantOK: true},
		{name: "requested/missing", auth: tls.VerifyClientCertIfGiven, withCert: false, wantOK: true},
		{name: "request-only/missing", auth: tls.RequestClientCert, withCert: false, wantOK: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, scheme := range []string{"tls", "wss"} {
				l, errs := listen(t, scheme+"://127.0.0.1:0/$iothub/websocket", ListenConfig{TLS: p.serverTLS(tc.auth)})
				accepted := acceptOne(t, l)
				var client *testcert.Cert
				if tc.withCert {
					client = p.client
				}
				c, err := Dial(testContext(t), l.URL(), Config{TLS: p.ca.ClientConfig(client)})
				if !tc.wantOK {
					// With TLS 1.3 the client learns of the refusal
					// on its first read; the server never yields it.
					if err == nil {
						_ = c.SetReadDeadline(time.Now().Add(testTimeout))
						_, err = c.Read(make([]byte, 1))
						c.Close()
					}
					if err == nil {
						t.Fatalf("%s: client without certificate got through", scheme)
					}
					var he *HandshakeError
					if serr := waitErr(t, errs); !errors.As(serr, &he) || he.Op != "tls" {
						t.Errorf("%s: server error = %v, want a tls *HandshakeError", scheme, serr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", scheme, err)
				}
				s := waitConn(t, accepted)
				exchange(t, c, s)
				state, ok := TLSConnectionState(s)
				if !ok {
					t.Fatalf("%s: no TLS state on the accepted conn", scheme)
				}
				if state.Version < tls.VersionTLS12 {
					t.Errorf("%s: TLS version %x below 1.2", scheme, state.Version)
				}
				gotCN := ""
				if len(state.PeerCertificates) > 0 {
					gotCN = state.PeerCertificates[0].Subject.CommonName
				}
				if wantCN := map[bool]string{true: "dev1"}[tc.withCert]; gotCN != wantCN {
					t.Errorf("%s: peer CN = %q, want %q", scheme, gotCN, wantCN)
				}
				c.Close()
			}
		})
	}
}

func TestTLSServerName(t *testing.T) {
	p := newPKI(t)
	l, _ := listen(t, "tls://127.0.0.1:0", ListenConfig{TLS: p.serverTLS(tls.NoClientCert)})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Run("wrong-name", func(t *testing.T) {
		cfg := p.ca.ClientConfig(nil)
		cfg.ServerName = "wrong.example.test"
		_, err := Dial(testContext(t), l.URL(), Config{TLS: cfg})
		var de *DialError
		if !errors.As(err, &de) || de.Op != "tls" {
			t.Fatalf("err = %v, want a tls *DialError", err)
		}
		var he x509.HostnameError
		if !errors.As(err, &he) {
			t.Errorf("err = %v, want an x509.HostnameError inside", err)
		}
	})
	t.Run("untrusted-ca", func(t *testing.T) {
		_, err := Dial(testContext(t), l.URL(), Config{TLS: newPKI(t).ca.ClientConfig(nil)})
		var ue x509.UnknownAuthorityError
		if !errors.As(err, &ue) {
			t.Errorf("err = %v, want x509.UnknownAuthorityError", err)
		}
	})
	t.Run("sni-from-host", func(t *testing.T) {
		// The certificate names hub.example.test: dialing that host
		// (resolved to the listener by NetDial) must send it as SNI and
		// verify against it.
		var sni string
		srv := p.serverTLS(tls.NoClientCert)
		srv.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sni = h.ServerName
			return nil, nil
		}
		l2, _ := listen(t, "tls://127.0.0.1:0", ListenConfig{TLS: srv})
		accepted := acceptOne(t, l2)
		c, err := Dial(testContext(t), "tls://hub.example.test:8883", Config{
			TLS: p.ca.ClientConfig(nil),
			NetDial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, l2.Addr().String())
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s := waitConn(t, accepted)
		exchange(t, c, s)
		if sni != "hub.example.test" {
			t.Errorf("server saw SNI %q, want hub.example.test", sni)
		}
	})
}

func TestDialErrors(t *testing.T) {
	ctx := testContext(t)
	for _, tc := range []struct {
		url  string
		want error
	}{
		{url: "http://example.test", want: ErrUnsupportedScheme},
		{url: "amqps://example.test", want: ErrUnsupportedScheme},
		{url: "tcp://", want: ErrInvalidURL},
		{url: "wss:///$iothub/websocket", want: ErrInvalidURL},
		{url: "tcp://[::1", want: ErrInvalidURL},
	} {
		if _, err := NewDialer(tc.url, Config{}); !errors.Is(err, tc.want) {
			t.Errorf("NewDialer(%q) = %v, want %v", tc.url, err, tc.want)
		}
		if tc.want == ErrInvalidURL {
			continue // Listen accepts an empty host: all interfaces
		}
		if _, err := Listen(ctx, tc.url, ListenConfig{}); !errors.Is(err, tc.want) {
			t.Errorf("Listen(%q) = %v, want %v", tc.url, err, tc.want)
		}
	}
	if _, err := Listen(ctx, "wss://127.0.0.1:0", ListenConfig{}); !errors.Is(err, ErrNoTLSConfig) {
		t.Errorf("Listen wss without TLS = %v, want ErrNoTLSConfig", err)
	}

	// A refused connection is a dial *DialError wrapping the OpError.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Dial(ctx, "tcp://"+addr, Config{})
	var de *DialError
	var oe *net.OpError
	if !errors.As(err, &de) || de.Op != "dial" || !errors.As(err, &oe) {
		t.Errorf("dial to a closed port: %v, want a dial *DialError wrapping *net.OpError", err)
	}

	// A cancelled context stops the dial.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Dial(cctx, "tcp://"+addr, Config{}); !errors.Is(err, context.Canceled) {
		t.Errorf("dial with a cancelled context: %v, want context.Canceled", err)
	}

	// User information never reaches error text.
	_, err = Dial(ctx, "tcp://user:secret@"+addr, Config{})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v leaks the URL password", err)
	}
}

// TestClientHandshakeTimeout dials servers that accept TCP and then never
// answer: the dial must end at the context's deadline with a timeout error.
func TestClientHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var (
		mu   sync.Mutex
		held []net.Conn // accepted, never read, never answered
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	for _, tc := range []struct {
		scheme string
		op     string
		cfg    Config
	}{
		{scheme: "tls", op: "tls"},
		{scheme: "ws", op: "websocket"},
		{scheme: "wss", op: "tls"},
		{scheme: "ws", op: "websocket", cfg: Config{Timeout: 200 * time.Millisecond}},
	} {
		t.Run(tc.scheme+"/"+tc.op, func(t *testing.T) {
			ctx := testContext(t)
			if tc.cfg.Timeout == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
			}
			// Connect before the clock starts, so only the handshake
			// can run out of time even on a loaded machine.
			pre, err := net.DialTimeout("tcp", ln.Addr().String(), testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer pre.Close()
			tc.cfg.NetDial = func(context.Context, string, string) (net.Conn, error) { return pre, nil }
			_, err = Dial(ctx, tc.scheme+"://"+ln.Addr().String(), tc.cfg)
			var de *DialError
			if !errors.As(err, &de) || de.Op != tc.op {
				t.Fatalf("err = %v, want a %s *DialError", err, tc.op)
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("err = %v, want a net.Error timeout", err)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want context.DeadlineExceeded inside", err)
			}
		})
	}
}

// TestServerHandshakeTimeout connects and sends nothing: the listener must
// give up after its handshake timeout and report a timeout.
func TestServerHandshakeTimeout(t *testing.T) {
	p := newPKI(t)
	for _, scheme := range []string{"tls", "ws", "wss"} {
		t.Run(scheme, func(t *testing.T) {
			l, errs := listen(t, scheme+"://127.0.0.1:0", ListenConfig{
				TLS:              p.serverTLS(tls.NoClientCert),
				HandshakeTimeout: 100 * time.Millisecond,
			})
			c, err := net.DialTimeout("tcp", l.Addr().String(), testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = waitErr(t, errs)
			var he *HandshakeError
			if !errors.As(err, &he) || !he.Timeout() {
				t.Fatalf("err = %v, want a timeout *HandshakeError", err)
			}
			// The server hung up.
			_ = c.SetReadDeadline(time.Now().Add(testTimeout))
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Error("server kept the silent connection open")
			}
		})
	}
}

func TestListenerClose(t *testing.T) {
	for _, scheme := range []string{"tcp", "ws"} {
		l, err := Listen(testContext(t), scheme+"://127.0.0.1:0", ListenConfig{})
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := l.Accept()
			errc <- err
		}()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s: Accept after Close = %v, want net.ErrClosed", scheme, err)
			}
		case <-time.After(testTimeout):
			t.Fatalf("%s: Accept did not return after Close", scheme)
		}
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s: second Accept = %v, want net.ErrClosed", scheme, err)
		}
	}
}

func TestDialErrorIsNetError(t *testing.T) {
	var err error = &DialError{Op: "tls", URL: "tls://h:8883", Err: context.DeadlineExceeded}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("DialError over DeadlineExceeded: Timeout() false")
	}
	err = &DialError{Op: "dial", URL: "tcp://h:1883", Err: errors.New("refused")}
	if err.(net.Error).Timeout() {
		t.Errorf("DialError over a plain error reports a timeout")
	}
}

// TestTLSMinimumVersion: both sides insist on TLS 1.2 even when handed a
// configuration that allows older versions.
func TestTLSMinimumVersion(t *testing.T) {
	p := newPKI(t)
	srv := p.serverTLS(tls.NoClientCert)
	srv.MinVersion = tls.VersionTLS10
	l, errs := listen(t, "tls://127.0.0.1:0", ListenConfig{TLS: srv})
	// crypto/tls directly: transport's own dialer would refuse 1.1 itself.
	if err := dialTLS11(t, l.Addr().String(), p); err == nil {
		t.Fatal("listener accepted a TLS 1.1 client")
	}
	var he *HandshakeError
	if err := waitErr(t, errs); !errors.As(err, &he) || he.Op != "tls" {
		t.Errorf("server error = %v, want a tls *HandshakeError", err)
	}
	if l.tlsConf.MinVersion != tls.VersionTLS12 || srv.MinVersion != tls.VersionTLS10 {
		t.Errorf("listener MinVersion %x (caller's config now %x), want 1.2 on a clone", l.tlsConf.MinVersion, srv.MinVersion)
	}

	// A server that stops at TLS 1.1 is refused by the dialer.
	oldSrv := p.serverTLS(tls.NoClientCert)
	oldSrv.MinVersion, oldSrv.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	ln, err := tls.Listen("tcp", "127.0.0.1:0", oldSrv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	cfg := p.ca.ClientConfig(nil)
	cfg.MinVersion = 0
	if c, err := Dial(testContext(t), "tls://"+ln.Addr().String(), Config{TLS: cfg}); err == nil {
		c.Close()
		t.Fatal("dialer accepted a TLS 1.1 server")
	}
}

// TestTLSMinimumVersionPerClientConfig: a listener whose configuration
// comes from GetConfigForClient (per-SNI certificates, as an emulator
// serving several hub names would use) still refuses TLS 1.1.
func TestTLSMinimumVersionPerClientConfig(t *testing.T) {
	p := newPKI(t)
	perClient := p.serverTLS(tls.NoClientCert)
	perClient.MinVersion = tls.VersionTLS10
	l, errs := listen(t, "tls://127.0.0.1:0", ListenConfig{TLS: &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return perClient, nil },
	}})
	if err := dialTLS11(t, l.Addr().String(), p); err == nil {
		t.Fatal("listener accepted a TLS 1.1 client through GetConfigForClient")
	}
	var he *HandshakeError
	if err := waitErr(t, errs); !errors.As(err, &he) || he.Op != "tls" {
		t.Errorf("server error = %v, want a tls *HandshakeError", err)
	}
	if perClient.MinVersion != tls.VersionTLS10 {
		t.Errorf("the caller's per-client config was modified")
	}

	// A TLS 1.2 client still gets through the per-client config.
	accepted := acceptOne(t, l)
	c, err := Dial(testContext(t), l.URL(), Config{TLS: p.ca.ClientConfig(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchange(t, c, waitConn(t, accepted))
}

// dialTLS11 runs a TLS handshake to addr with a client that offers only TLS
// 1.0 and 1.1, and returns its outcome.
func dialTLS11(t *testing.T, addr string, p *pki) error {
	t.Helper()
	old := p.ca.ClientConfig(nil)
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	old.ServerName = "127.0.0.1"
	d := tls.Dialer{Config: old}
	c, err := d.DialContext(testContext(t), "tcp", addr)
	if err == nil {
		c.Close()
	}
	return err
}

// TestTLSUnverifiedClientCertificate is the emulator's thumbprint case: the
// listener requests a certificate without verifying it
// (tls.RequestClientCert), a device presents one no CA of the server's
// vouches for, and the accepted connection (tls and wss) carries it for
// the emulator to match by thumbprint.
func TestTLSUnverifiedClientCertificate(t *testing.T) {
	p := newPKI(t)
	other := testcert.New(t, testcert.Options{}).MustClient(t, "thumbprint-dev")
	for _, scheme := range []string{"tls", "wss"} {
		t.Run(scheme, func(t *testing.T) {
			l, _ := listen(t, scheme+"://127.0.0.1:0/$iothub/websocket", ListenConfig{TLS: p.serverTLS(tls.RequestClientCert)})
			accepted := acceptOne(t, l)
			c, err := Dial(testContext(t), l.URL(), Config{TLS: p.ca.ClientConfig(other)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := waitConn(t, accepted)
			exchange(t, c, s)
			state, ok := TLSConnectionState(s)
			if !ok || len(state.PeerCertificates) == 0 {
				t.Fatal("no peer certificate on the accepted connection")
			}
			if got := state.PeerCertificates[0]; !got.Equal(other.Leaf) {
				t.Errorf("peer certificate CN %q, want the device's", got.Subject.CommonName)
			}
		})
	}
}
