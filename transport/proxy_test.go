package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http/httpproxy"
)

// TestWSSThroughConnectProxy is the acceptance test: a device dials
// wss://127.0.0.1:<port>/$iothub/websocket through an HTTP CONNECT proxy
// (with Basic authentication) to a local wss listener and exchanges bytes
// both ways.
func TestWSSThroughConnectProxy(t *testing.T) {
	p := newPKI(t)
	l, _ := listen(t, "wss://127.0.0.1:0/$iothub/websocket", ListenConfig{TLS: p.serverTLS(tls.RequestClientCert)})
	accepted := acceptOne(t, l)
	proxy := newConnectProxy(t)
	proxy.user = "dev:s3cret"
	proxyURL, _ := url.Parse("http://dev:s3cret@" + proxy.ln.Addr().String())

	target := "wss://" + l.Addr().String() + "/$iothub/websocket"
	c, err := Dial(testContext(t), target, Config{
		TLS:   p.ca.ClientConfig(p.client),
		Proxy: ProxyURL(proxyURL),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := waitConn(t, accepted)
	exchange(t, c, s)

	if diff := cmp.Diff([]string{l.Addr().String()}, proxy.Targets()); diff != "" {
		t.Errorf("CONNECT targets (-want +got):\n%s", diff)
	}
	if _, ok := c.(*WSConn); !ok {
		t.Errorf("dialed conn is %T, want *WSConn", c)
	}
	state, ok := TLSConnectionState(s)
	if !ok || len(state.PeerCertificates) == 0 || state.PeerCertificates[0].Subject.CommonName != "dev1" {
		t.Errorf("server did not see the device certificate through the tunnel")
	}
}

func TestConnectProxyRefusals(t *testing.T) {
	l, _ := listen(t, "tcp://127.0.0.1:0", ListenConfig{})
	for _, tc := range []struct {
		name       string
		user       string // proxy's required credentials
		cred       string // credentials in the proxy URL
		refuse     int
		wantStatus int
		wantAuth   bool
	}{
		{name: "auth-missing", user: "u:p", wantStatus: 407, wantAuth: true},
		{name: "auth-wrong", user: "u:p", cred: "u:x@", wantStatus: 407, wantAuth: true},
		{name: "forbidden", refuse: 403, wantStatus: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := newConnectProxy(t)
			proxy.user, proxy.refuse = tc.user, tc.refuse
			pu, _ := url.Parse("http://" + tc.cred + proxy.ln.Addr().String())
			_, err := Dial(testContext(t), "tcp://"+l.Addr().String(), Config{Proxy: ProxyURL(pu)})
			var pe *ProxyError
			if !errors.As(err, &pe) || pe.StatusCode != tc.wantStatus {
				t.Fatalf("err = %v, want *ProxyError with status %d", err, tc.wantStatus)
			}
			if !errors.Is(err, ErrProxy) {
				t.Errorf("err = %v does not match ErrProxy", err)
			}
			if got := errors.Is(err, ErrProxyAuth); got != tc.wantAuth {
				t.Errorf("errors.Is(err, ErrProxyAuth) = %v, want %v", got, tc.wantAuth)
			}
			var de *DialError
			if !errors.As(err, &de) || de.Op != "proxy" {
				t.Errorf("err = %v, want a proxy *DialError", err)
			}
			if tc.cred != "" && strings.Contains(err.Error(), "u:x") {
				t.Errorf("error %q leaks proxy credentials", err)
			}
		})
	}
	t.Run("bad-proxy-scheme", func(t *testing.T) {
		pu, _ := url.Parse("ftp://127.0.0.1:21")
		_, err := Dial(testContext(t), "tcp://"+l.Addr().String(), Config{Proxy: ProxyURL(pu)})
		if !errors.Is(err, ErrUnsupportedScheme) {
			t.Errorf("err = %v, want ErrUnsupportedScheme", err)
		}
	})
}

// TestProxyFromEnvironmentSettings checks the scheme mapping: TLS targets
// use HTTPS_PROXY, plain ones HTTP_PROXY, NO_PROXY and loopback bypass.
func TestProxyFromEnvironmentSettings(t *testing.T) {
	f := ProxyFromConfig(&httpproxy.Config{
		HTTPProxy:  "http://plain.proxy.test:3128",
		HTTPSProxy: "http://secure.proxy.test:3128",
		NoProxy:    "direct.example.test",
	})
	for _, tc := range []struct {
		target string
		want   string
	}{
		{target: "wss://hub.example.test:443/$iothub/websocket", want: "http://secure.proxy.test:3128"},
		{target: "mqtts://hub.example.test:8883", want: "http://secure.proxy.test:3128"},
		{target: "tls://hub.example.test:8883", want: "http://secure.proxy.test:3128"},
		{target: "ws://hub.example.test:80/mqtt", want: "http://plain.proxy.test:3128"},
		{target: "tcp://hub.example.test:1883", want: "http://plain.proxy.test:3128"},
		{target: "wss://direct.example.test:443/", want: ""},
		{target: "wss://127.0.0.1:443/", want: ""},
	} {
		u, _ := url.Parse(tc.target)
		got, err := f(u)
		if err != nil {
			t.Fatalf("%s: %v", tc.target, err)
		}
		gotS := ""
		if got != nil {
			gotS = got.String()
		}
		if gotS != tc.want {
			t.Errorf("%s: proxy %q, want %q", tc.target, gotS, tc.want)
		}
	}
}

// TestProxyFromEnvironmentDial dials a non-loopback host name through the
// proxy named by HTTPS_PROXY; the test proxy sends the tunnel to the local
// listener, whose certificate is for that name, so SNI and verification
// use the URL's host end to end.
func TestProxyFromEnvironmentDial(t *testing.T) {
	p := newPKI(t)
	l, _ := listen(t, "tls://127.0.0.1:0", ListenConfig{TLS: p.serverTLS(tls.NoClientCert)})
	accepted := acceptOne(t, l)
	proxy := newConnectProxy(t)
	proxy.redirect = l.Addr().String()
	t.Setenv("HTTPS_PROXY", proxy.URL())
	t.Setenv("NO_PROXY", "")
	t.Setenv("https_proxy", "")
	t.Setenv("no_proxy", "")
	c, err := Dial(testContext(t), "mqtts://hub.example.test:8883", Config{
		TLS:   p.ca.ClientConfig(nil),
		Proxy: ProxyFromEnvironment(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchange(t, c, waitConn(t, accepted))
	if diff := cmp.Diff([]string{"hub.example.test:8883"}, proxy.Targets()); diff != "" {
		t.Errorf("CONNECT targets (-want +got):\n%s", diff)
	}
}

func TestSOCKS5Proxy(t *testing.T) {
	p := newPKI(t)
	l, _ := listen(t, "wss://127.0.0.1:0/$iothub/websocket", ListenConfig{TLS: p.serverTLS(tls.NoClientCert)})
	for _, tc := range []struct {
		name, user, pass, cred string
		wantErr                bool
	}{
		{name: "no-auth"},
		{name: "password", user: "u", pass: "p", cred: "u:p@"},
		{name: "wrong-password", user: "u", pass: "p", cred: "u:x@", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := newSOCKS5Proxy(t, tc.user, tc.pass)
			pu, _ := url.Parse("socks5://" + tc.cred + proxy.ln.Addr().String())
			accepted := acceptOne(t, l)
			c, err := Dial(testContext(t), l.URL(), Config{TLS: p.ca.ClientConfig(nil), Proxy: ProxyURL(pu)})
			if tc.wantErr {
				var de *DialError
				if !errors.As(err, &de) || de.Op != "proxy" {
					t.Fatalf("err = %v, want a proxy *DialError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			exchange(t, c, waitConn(t, accepted))
			if got := proxy.Targets(); len(got) != 1 || got[0] != l.Addr().String() {
				t.Errorf("SOCKS targets %v, want [%s]", got, l.Addr())
			}
		})
	}
}

func TestPrefixConn(t *testing.T) {
	a, b := tcpPair(t)
	c := &prefixConn{Conn: a, pre: []byte("ab")}
	go b.Write([]byte("cd"))
	if got := readN(t, c, 4, 1); string(got) != "abcd" {
		t.Errorf("read %q, want abcd", got)
	}
	if c.NetConn() != net.Conn(a) {
		t.Error("NetConn does not return the tunnel")
	}
}

// TestHTTPSProxy reaches the CONNECT proxy itself over TLS.
func TestHTTPSProxy(t *testing.T) {
	p := newPKI(t)
	l, _ := listen(t, "tcp://127.0.0.1:0", ListenConfig{})
	accepted := acceptOne(t, l)
	proxy := newConnectProxy(t)
	// Put TLS in front of the plain test proxy.
	front, err := tls.Listen("tcp", "127.0.0.1:0", p.serverTLS(tls.NoClientCert))
	if err != nil {
		t.Fatal(err)
	}
	defer front.Close()
	go func() {
		for {
			c, err := front.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", proxy.ln.Addr().String())
				if err != nil {
					return
				}
				defer up.Close()
				splice(c, c, up)
			}()
		}
	}()
	pu, _ := url.Parse("https://localhost:" + portOf(front.Addr()))
	c, err := Dial(testContext(t), l.URL(), Config{Proxy: ProxyURL(pu), ProxyTLS: p.ca.ClientConfig(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchange(t, c, waitConn(t, accepted))
	if got := proxy.Targets(); len(got) != 1 || got[0] != l.Addr().String() {
		t.Errorf("CONNECT targets %v", got)
	}

	// Without ProxyTLS the proxy's certificate is checked against the
	// system roots and refused.
	_, err = Dial(testContext(t), l.URL(), Config{Proxy: ProxyURL(pu)})
	var ue x509.UnknownAuthorityError
	if !errors.As(err, &ue) {
		t.Errorf("err = %v, want x509.UnknownAuthorityError", err)
	}
}

func portOf(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return port
}

// scriptedProxy answers one CONNECT with the given response text, written
// in pieces of at most chunk bytes (0: at once), and, if tunnel is set,
// then splices the connection to the requested target. It returns the
// proxy's URL.
func scriptedProxy(t *testing.T, response string, chunk int, tunnel bool) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		var up net.Conn
		if tunnel {
			if up, err = net.DialTimeout("tcp", req.Host, testTimeout); err != nil {
				return
			}
			defer up.Close()
		}
		for b := []byte(response); len(b) > 0; {
			n := len(b)
			if chunk > 0 {
				n = min(n, chunk)
			}
			if _, err := c.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
			if chunk > 0 {
				time.Sleep(time.Millisecond)
			}
		}
		if up == nil {
			io.Copy(io.Discard, c)
			return
		}
		splice(c, br, up)
	}()
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// greeter is a TCP server that writes hello to each connection at once,
// then echoes.
func greeter(t *testing.T, hello string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(testTimeout))
				io.WriteString(c, hello)
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestConnectResponseParsing: the CONNECT answer is read up to the end of
// its header and no further, however the proxy writes it, so the first
// bytes of the tunnel (here the server's greeting, which may arrive in the
// same segment) reach the caller; header fields that describe a body are
// ignored on success (RFC 9110 §9.3.6); refusals are reported without
// waiting for their body.
func TestConnectResponseParsing(t *testing.T) {
	target := greeter(t, "hello")
	for _, tc := range []struct {
		name       string
		response   string
		chunk      int
		wantStatus int // 0: the tunnel must work
	}{
		{name: "plain", response: "HTTP/1.1 200 Connection established\r\n\r\n"},
		{name: "one-byte-writes", response: "HTTP/1.1 200 Connection established\r\nProxy-Agent: test\r\n\r\n", chunk: 1},
		{name: "http-1.0", response: "HTTP/1.0 200 OK\r\n\r\n"},
		{name: "content-length-on-200", response: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"},
		{name: "chunked-on-200", response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{name: "other-2xx", response: "HTTP/1.1 201 Created\r\n\r\n"},
		{name: "403-endless-body", response: "HTTP/1.1 403 Forbidden\r\nContent-Length: 1000000\r\n\r\npartial", wantStatus: 403},
		{name: "502", response: "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", wantStatus: 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxyURL := scriptedProxy(t, tc.response, tc.chunk, tc.wantStatus == 0)
			// The context is generous: a dial that waits on the proxy
			// fails the test by testTimeout below rather than by timing out.
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			type result struct {
				c   net.Conn
				err error
			}
			res := make(chan result, 1)
			go func() {
				c, err := Dial(ctx, "tcp://"+target, Config{Proxy: ProxyURL(proxyURL)})
				res <- result{c, err}
			}()
			var r result
			select {
			case r = <-res:
			case <-time.After(testTimeout):
				cancel()
				t.Fatal("dial still waiting on the proxy's answer")
			}
			if tc.wantStatus != 0 {
				var pe *ProxyError
				if !errors.As(r.err, &pe) || pe.StatusCode != tc.wantStatus {
					t.Fatalf("err = %v, want a *ProxyError with status %d", r.err, tc.wantStatus)
				}
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			defer r.c.Close()
			if got := readN(t, r.c, 5, 64); string(got) != "hello" {
				t.Fatalf("first tunnel bytes %q, want hello", got)
			}
			if _, err := r.c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, r.c, 4, 64); string(got) != "ping" {
				t.Fatalf("echo %q, want ping", got)
			}
		})
	}
}

// TestDialErrorsHideCredentials: a URL with a password that fails to parse
// is reported without the password.
func TestDialErrorsHideCredentials(t *testing.T) {
	for _, raw := range []string{
		"mqtts://user:s3cret@host:bad/",
		"wss://user:s3cret@ho st:443/",
		"mqtts://user:s3c%zzret@host:8883",
	} {
		_, err := NewDialer(raw, Config{})
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("NewDialer(%q) = %v, want ErrInvalidURL", raw, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3c") {
			t.Errorf("NewDialer error shows the password: %v", err)
		}
		_, err = Listen(testContext(t), raw, ListenConfig{})
		if err != nil && strings.Contains(err.Error(), "s3c") {
			t.Errorf("Listen error shows the password: %v", err)
		}
	}
}

// TestNoProxyForms: the NO_PROXY forms an IoT deployment uses (domain
// suffix with and without the dot, host:port, CIDR, "*") apply to the
// dialed host and port, whatever the MQTT scheme.
func TestNoProxyForms(t *testing.T) {
	const proxy = "http://proxy.test:3128"
	for _, tc := range []struct {
		noProxy, target string
		direct          bool
	}{
		{".azure-devices.net", "mqtts://hub.azure-devices.net:8883", true},
		{"azure-devices.net", "wss://hub.azure-devices.net/$iothub/websocket", true},
		{"azure-devices.net", "wss://azure-devices.net.evil.test/", false},
		{"hub.example.test:8883", "mqtts://hub.example.test:8883", true},
		{"hub.example.test:8883", "wss://hub.example.test/$iothub/websocket", false},
		{"hub.example.test:443", "wss://hub.example.test/$iothub/websocket", true},
		{"10.0.0.0/8", "mqtts://10.1.2.3:8883", true},
		{"10.0.0.0/8", "mqtts://11.1.2.3:8883", false},
		{"*", "mqtts://anything.test:8883", true},
		{"other.test", "mqtts://hub.example.test:8883", false},
	} {
		f := ProxyFromConfig(&httpproxy.Config{HTTPSProxy: proxy, NoProxy: tc.noProxy})
		d, err := NewDialer(tc.target, Config{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := f(d.(*dialer).target)
		if err != nil {
			t.Fatalf("NO_PROXY=%s %s: %v", tc.noProxy, tc.target, err)
		}
		if direct := got == nil; direct != tc.direct {
			t.Errorf("NO_PROXY=%s %s: proxy %v, want direct=%v", tc.noProxy, tc.target, got, tc.direct)
		}
	}
}
