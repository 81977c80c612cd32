package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/testcert"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// pki is a CA with a server certificate for the loopback names and
// hub.example.test, and a client certificate for device "dev1".
type pki struct {
	ca     *testcert.CA
	server *testcert.Cert
	client *testcert.Cert
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca := testcert.New(t, testcert.Options{})
	return &pki{ca: ca, server: ca.MustServer(t, "hub.example.test"), client: ca.MustClient(t, "dev1")}
}

func (p *pki) serverTLS(auth tls.ClientAuthType) *tls.Config {
	return p.ca.ServerConfig(p.server, auth)
}

// listen starts a Listener on rawURL and closes it when the test ends. Its
// handshake errors are sent to the returned channel (buffered, never
// blocking the listener).
func listen(t *testing.T, rawURL string, cfg ListenConfig) (*Listener, <-chan error) {
	t.Helper()
	errs := make(chan error, 16)
	if cfg.OnHandshakeError == nil {
		cfg.OnHandshakeError = func(err error) {
			select {
			case errs <- err:
			default:
			}
		}
	}
	l, err := Listen(testContext(t), rawURL, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, errs
}

// acceptOne accepts one connection in the background.
func acceptOne(t *testing.T, l net.Listener) <-chan net.Conn {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(ch)
			return
		}
		t.Cleanup(func() { c.Close() })
		ch <- c
	}()
	return ch
}

func waitConn(t *testing.T, ch <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("accept failed")
		}
		return c
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for a connection")
	}
	return nil
}

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for a handshake error")
	}
	return nil
}

// exchange sends a message each way between a and b and checks both arrive.
func exchange(t *testing.T, a, b net.Conn) {
	t.Helper()
	for _, c := range []net.Conn{a, b} {
		_ = c.SetDeadline(time.Now().Add(testTimeout))
	}
	roundTrip := func(from, to net.Conn, msg string) {
		t.Helper()
		errc := make(chan error, 1)
		go func() {
			_, err := from.Write([]byte(msg))
			errc <- err
		}()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(to, got); err != nil {
			t.Fatalf("read: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("write: %v", err)
		}
		if string(got) != msg {
			t.Fatalf("got %q, want %q", got, msg)
		}
	}
	roundTrip(a, b, "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c") // a CONNECT
	roundTrip(b, a, "\x20\x02\x00\x00")                     // its CONNACK
	for _, c := range []net.Conn{a, b} {
		_ = c.SetDeadline(time.Time{})
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	client, err = net.DialTimeout("tcp", ln.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	server, ok := <-ch
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// connectProxy is an HTTP CONNECT proxy for tests. It records the targets
// asked for, can require Basic credentials, can refuse, and can send every
// tunnel to one fixed address instead of the requested one.
type connectProxy struct {
	ln       net.Listener
	user     string // required "user:password", empty for none
	refuse   int    // status to answer instead of tunnelling, 0 for none
	redirect string // address to dial instead of the requested one

	mu      sync.Mutex
	targets []string
	wg      sync.WaitGroup
}

func newConnectProxy(t *testing.T) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *connectProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *connectProxy) Targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

func (p *connectProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *connectProxy) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, req.Host)
	p.mu.Unlock()
	if p.user != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.user))
		if req.Header.Get("Proxy-Authorization") != want {
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\n\r\n")
			return
		}
	}
	if p.refuse != 0 {
		io.WriteString(c, "HTTP/1.1 "+strconv.Itoa(p.refuse)+" "+http.StatusText(p.refuse)+"\r\n\r\n")
		return
	}
	target := req.Host
	if p.redirect != "" {
		target = p.redirect
	}
	up, err := net.DialTimeout("tcp", target, testTimeout)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	defer up.Close()
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	splice(c, br, up)
}

// splice copies both ways until either side ends.
func splice(c net.Conn, br io.Reader, up net.Conn) {
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, br); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// socks5Proxy is a minimal SOCKS5 server (RFC 1928, with RFC 1929
// username/password when user is set) for tests.
type socks5Proxy struct {
	ln      net.Listener
	user    string
	pass    string
	mu      sync.Mutex
	targets []string
	wg      sync.WaitGroup
}

func newSOCKS5Proxy(t *testing.T, user, pass string) *socks5Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &socks5Proxy{ln: ln, user: user, pass: pass}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				_ = p.handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *socks5Proxy) Targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

func (p *socks5Proxy) handle(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return errors.New("bad greeting")
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return err
	}
	want := byte(0)
	if p.user != "" {
		want = 2
	}
	if !strings.Contains(string(methods), string([]byte{want})) {
		c.Write([]byte{5, 0xff})
		return errors.New("no acceptable method")
	}
	c.Write([]byte{5, want})
	if want == 2 {
		var v [2]byte
		if _, err := io.ReadFull(c, v[:]); err != nil {
			return err
		}
		u := make([]byte, v[1])
		io.ReadFull(c, u)
		var pl [1]byte
		io.ReadFull(c, pl[:])
		pw := make([]byte, pl[0])
		io.ReadFull(c, pw)
		if string(u) != p.user || string(pw) != p.pass {
			c.Write([]byte{1, 1})
			return errors.New("bad credentials")
		}
		c.Write([]byte{1, 0})
	}
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[1] != 1 {
		return errors.New("bad request")
	}
	var host string
	switch req[3] {
	case 1:
		var ip [4]byte
		io.ReadFull(c, ip[:])
		host = net.IP(ip[:]).String()
	case 3:
		var l [1]byte
		io.ReadFull(c, l[:])
		name := make([]byte, l[0])
		io.ReadFull(c, name)
		host = string(name)
	case 4:
		var ip [16]byte
		io.ReadFull(c, ip[:])
		host = net.IP(ip[:]).String()
	}
	var port [2]byte
	io.ReadFull(c, port[:])
	target := net.JoinHostPort(host, strconv.Itoa(int(port[0])<<8|int(port[1])))
	p.mu.Lock()
	p.targets = append(p.targets, target)
	p.mu.Unlock()
	up, err := net.DialTimeout("tcp", target, testTimeout)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return err
	}
	defer up.Close()
	c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	_ = c.SetDeadline(time.Time{})
	splice(c, c, up)
	return nil
}
