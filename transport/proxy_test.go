package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"

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
