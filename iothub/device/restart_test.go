package device

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hubwire/hubwire/sas"
	"github.com/hubwire/hubwire/transport"
)

// The child process of TestFileStoreSurvivesProcessRestart: it connects
// with a FileStore, waits for "go" on stdin, accepts N messages the hub
// will not acknowledge, says so, and waits to be killed.
func TestMain(m *testing.M) {
	if os.Getenv("HUBWIRE_DEVICE_CHILD") == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

func runChild() int {
	fail := func(err error) int { fmt.Println("error:", err); return 1 }
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(os.Getenv("HUBWIRE_CA"))
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		return fail(fmt.Errorf("CA: %v", err))
	}
	store, err := OpenFileStore(os.Getenv("HUBWIRE_STORE"), FileStoreOptions{})
	if err != nil {
		return fail(err)
	}
	c, err := New(Config{ConnectionString: os.Getenv("HUBWIRE_CS"), Address: os.Getenv("HUBWIRE_ADDR"), RootCAs: pool, NoProxy: true, Store: store})
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		return fail(err)
	}
	fmt.Println("connected")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fail(err)
	}
	n, _ := strconv.Atoi(os.Getenv("HUBWIRE_N"))
	m := &Message{}
	for i := range n {
		m.Payload = strconv.AppendInt(m.Payload[:0], int64(i), 10)
		if err := c.SendAsync(ctx, m, nil); err != nil {
			return fail(err)
		}
	}
	fmt.Println("accepted")
	<-ctx.Done()
	return 0
}

// TestFileStoreSurvivesProcessRestart: a process accepts messages the hub
// never acknowledges and is killed with SIGKILL; a new client on the same
// file store delivers every one of them, in order.
func TestFileStoreSurvivesProcessRestart(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, h.ca.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	storePath := filepath.Join(dir, "outbox")
	const n = 200
	ctx := testCtx(t, 30*time.Second)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HUBWIRE_DEVICE_CHILD=1", "HUBWIRE_CA="+caFile, "HUBWIRE_STORE="+storePath,
		"HUBWIRE_CS="+cs, "HUBWIRE_ADDR="+h.tlsAddr, "HUBWIRE_N="+strconv.Itoa(n))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	out := bufio.NewReader(stdout)
	expect := func(want string) {
		line, err := out.ReadString('\n')
		if err != nil || line != want+"\n" {
			t.Fatalf("child said %q (%v), want %q", line, err, want)
		}
	}
	expect("connected")
	h.setBlackhole(true) // accept nothing, acknowledge nothing
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	expect("accepted")
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// Let the hub finish reading (and ignoring) what the dead connection
	// had in flight before it listens again.
	waitFor(t, 5*time.Second, "the hub to drop the killed connection", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.ids["dev1"].live == nil
	})
	h.setBlackhole(false)
	if got := len(h.telemetryOf("dev1")); got != 0 {
		t.Fatalf("the hub recorded %d messages while blackholed", got)
	}

	store, err := OpenFileStore(storePath, FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if store.Len() != n {
		t.Fatalf("store holds %d messages after the kill, want %d", store.Len(), n)
	}
	cfg := h.config(cs, TransportMQTT)
	cfg.Store = store
	c := mustClient(t, cfg)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "resent messages", func() bool { return len(h.telemetryOf("dev1")) >= n })
	for i, m := range h.telemetryOf("dev1")[:n] {
		if m.Payload != strconv.Itoa(i) {
			t.Fatalf("message %d is %q: order not kept", i, m.Payload)
		}
	}
	waitFor(t, 5*time.Second, "store drained", func() bool { return store.Len() == 0 })
}

// connectProxy is an HTTP CONNECT proxy with Basic authentication.
type connectProxy struct {
	ln      net.Listener
	user    string
	pass    string
	tunnels atomic.Int32
	refused atomic.Int32
	wg      sync.WaitGroup
}

func newConnectProxy(t *testing.T, user, pass string) *connectProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln, user: user, pass: pass}
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
				p.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *connectProxy) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		return
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass))
	if req.Header.Get("Proxy-Authorization") != want {
		p.refused.Add(1)
		io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n")
		return
	}
	up, err := net.DialTimeout("tcp", req.Host, 5*time.Second)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	p.tunnels.Add(1)
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	_ = c.SetDeadline(time.Time{})
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, br); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	<-done
}

// TestThroughConnectProxy: MQTT over WebSockets (and over 8883) through an
// authenticating HTTP CONNECT proxy; wrong proxy credentials fail typed.
func TestThroughConnectProxy(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	p := newConnectProxy(t, "alice", "s3cret")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			before := p.tunnels.Load()
			cfg := h.config(cs, tr)
			cfg.Proxy = transport.ProxyURL(&url.URL{Scheme: "http", Host: p.ln.Addr().String(), User: url.UserPassword("alice", "s3cret")})
			c := mustClient(t, cfg)
			ctx := testCtx(t, 10*time.Second)
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.Send(ctx, &Message{Payload: []byte("via proxy " + tr)}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetTwin(ctx); err != nil {
				t.Fatal(err)
			}
			if p.tunnels.Load() != before+1 {
				t.Fatalf("%d tunnels, want one more than %d", p.tunnels.Load(), before)
			}
		})
	}
	t.Run("wrong-credentials", func(t *testing.T) {
		cfg := h.config(cs, TransportMQTTWebSocket)
		cfg.Proxy = transport.ProxyURL(&url.URL{Scheme: "http", Host: p.ln.Addr().String(), User: url.UserPassword("alice", "wrong")})
		c := mustClient(t, cfg)
		if err := c.Connect(testCtx(t, 10*time.Second)); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("err = %v, want ErrUnreachable", err)
		}
		if p.refused.Load() == 0 {
			t.Fatal("the proxy saw no refused request")
		}
	})
}

// socks5Proxy is a SOCKS5 server (RFC 1928, CONNECT only) with
// username/password authentication (RFC 1929).
func socks5Proxy(t *testing.T, user, pass string) (addr string, tunnels *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tunnels = new(atomic.Int32)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	serve := func(c net.Conn) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		var hdr [2]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
			return
		}
		methods := make([]byte, hdr[1])
		io.ReadFull(c, methods)
		c.Write([]byte{5, 2}) // username/password
		var v [2]byte
		io.ReadFull(c, v[:])
		u := make([]byte, v[1])
		io.ReadFull(c, u)
		var pl [1]byte
		io.ReadFull(c, pl[:])
		p := make([]byte, pl[0])
		io.ReadFull(c, p)
		if string(u) != user || string(p) != pass {
			c.Write([]byte{1, 1})
			return
		}
		c.Write([]byte{1, 0})
		var req [4]byte
		if _, err := io.ReadFull(c, req[:]); err != nil || req[1] != 1 {
			return
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
			h := make([]byte, l[0])
			io.ReadFull(c, h)
			host = string(h)
		default:
			return
		}
		var port [2]byte
		io.ReadFull(c, port[:])
		up, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(int(port[0])<<8|int(port[1]))))
		if err != nil {
			c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
			return
		}
		defer up.Close()
		tunnels.Add(1)
		c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
		_ = c.SetDeadline(time.Time{})
		done := make(chan struct{}, 2)
		go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
		go func() { io.Copy(c, up); done <- struct{}{} }()
		<-done
		<-done
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); serve(c) }()
		}
	}()
	return ln.Addr().String(), tunnels
}

// TestThroughSOCKS5Proxy: both transports through an authenticating
// SOCKS5 proxy.
func TestThroughSOCKS5Proxy(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	addr, tunnels := socks5Proxy(t, "bob", "pw")
	for i, tr := range transports {
		cfg := h.config(cs, tr)
		cfg.Proxy = transport.ProxyURL(&url.URL{Scheme: "socks5", Host: addr, User: url.UserPassword("bob", "pw")})
		c := mustClient(t, cfg)
		ctx := testCtx(t, 10*time.Second)
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("%s: %v", tr, err)
		}
		if err := c.Send(ctx, &Message{Payload: []byte("socks " + tr)}); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
		if int(tunnels.Load()) != i+1 {
			t.Fatalf("%d tunnels after %s", tunnels.Load(), tr)
		}
	}
}

// TestPluggableTokenSource: tokens from a caller's TokenSource (an HSM, the
// Edge workload API) are used for each CONNECT, and a renewal asks it
// again.
func TestPluggableTokenSource(t *testing.T) {
	h := newTestHub(t)
	h.addDevice("dev1")
	var calls atomic.Int32
	src := sas.TokenSourceFunc(func(ctx context.Context) (sas.Token, error) {
		calls.Add(1)
		return sas.NewToken(sas.DeviceResource(testHost, "dev1"), []byte("key-of-dev1-0123456789abcdef"), "", time.Now().Add(3*time.Second)), nil
	})
	cfg := Config{HostName: testHost, DeviceID: "dev1", TokenSource: src, Address: h.tlsAddr, RootCAs: h.ca.Pool(), NoProxy: true, ReconnectMax: 100 * time.Millisecond}
	c := mustClient(t, cfg)
	ctx := testCtx(t, 20*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a renewal through the source", func() bool { return calls.Load() >= 2 && h.connectCount() >= 2 })
	if err := c.Send(ctx, &Message{Payload: []byte("hsm")}); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	expired := h.expiredCloses
	h.mu.Unlock()
	if expired != 0 {
		t.Fatalf("%d connections outlived their token", expired)
	}
}
