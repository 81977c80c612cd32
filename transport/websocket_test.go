package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestWebSocketPath: the URL's path wins; Config.WebSocketPath applies only
// when the URL has none; other paths get 404 and ErrBadPath on the server.
func TestWebSocketPath(t *testing.T) {
	l, errs := listen(t, "ws://127.0.0.1:0/$iothub/websocket", ListenConfig{})
	host := l.Addr().String()
	for _, tc := range []struct {
		name   string
		url    string
		path   string
		wantOK bool
	}{
		{name: "default-path", url: "ws://" + host, path: "/$iothub/websocket", wantOK: true},
		{name: "url-path", url: "ws://" + host + "/$iothub/websocket", wantOK: true},
		{name: "escaped-url-path", url: "ws://" + host + "/%24iothub/websocket", wantOK: true},
		{name: "url-path-with-query", url: "ws://" + host + "/$iothub/websocket?iothub-no-client-cert=true", wantOK: true},
		{name: "query-names-the-path", url: "ws://" + host + "/mqtt?p=/$iothub/websocket"},
		{name: "path-prefix", url: "ws://" + host + "/$iothub/websocket/x"},
		{name: "url-path-wins", url: "ws://" + host + "/mqtt", path: "/$iothub/websocket"},
		{name: "no-path", url: "ws://" + host},
	} {
		t.Run(tc.name, func(t *testing.T) {
			accepted := acceptOne(t, l)
			c, err := Dial(testContext(t), tc.url, Config{WebSocketPath: tc.path})
			if !tc.wantOK {
				if !errors.Is(err, ErrUpgrade) || !strings.Contains(err.Error(), "404") {
					t.Fatalf("err = %v, want ErrUpgrade with HTTP 404", err)
				}
				if serr := waitErr(t, errs); !errors.Is(serr, ErrBadPath) {
					t.Errorf("server error = %v, want ErrBadPath", serr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			exchange(t, c, waitConn(t, accepted))
		})
	}
}

// TestSubprotocolServer: the listener requires "mqtt" in any case.
func TestSubprotocolServer(t *testing.T) {
	l, errs := listen(t, "ws://127.0.0.1:0/", ListenConfig{})
	for _, tc := range []struct {
		name      string
		protocols []string
		want      string // protocol the server selects; "" means refused
	}{
		{name: "lower", protocols: []string{"mqtt"}, want: "mqtt"},
		{name: "upper-as-c-sdk", protocols: []string{"MQTT"}, want: "MQTT"},
		{name: "mixed-after-other", protocols: []string{"chat", "Mqtt"}, want: "Mqtt"},
		{name: "missing"},
		{name: "other-only", protocols: []string{"mqttv5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			accepted := acceptOne(t, l)
			d := ws.Dialer{Protocols: tc.protocols, Timeout: testTimeout}
			c, _, hs, err := d.Dial(testContext(t), "ws://"+l.Addr().String()+"/")
			if tc.want == "" {
				var se ws.StatusError
				if !errors.As(err, &se) || se != http.StatusBadRequest {
					t.Fatalf("err = %v, want HTTP 400", err)
				}
				if serr := waitErr(t, errs); !errors.Is(serr, ErrSubprotocol) {
					t.Errorf("server error = %v, want ErrSubprotocol", serr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if hs.Protocol != tc.want {
				t.Errorf("selected %q, want %q", hs.Protocol, tc.want)
			}
			exchange(t, NewWSConn(c, nil, true), waitConn(t, accepted))
		})
	}
}

// fakeUpgradeServer answers one WebSocket upgrade with 101 and the given
// Sec-WebSocket-Protocol line (none when empty).
func fakeUpgradeServer(t *testing.T, protocol string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n"
		if protocol != "" {
			resp += "Sec-WebSocket-Protocol: " + protocol + "\r\n"
		}
		io.WriteString(c, resp+"\r\n")
		io.Copy(io.Discard, c)
	}()
	return ln.Addr().String()
}

// TestSubprotocolClient: an upgrade answered without "mqtt" is an error.
func TestSubprotocolClient(t *testing.T) {
	for _, tc := range []struct {
		name, protocol string
		wantErr        error
	}{
		{name: "absent", wantErr: ErrSubprotocol},
		{name: "not-offered", protocol: "chat", wantErr: ErrSubprotocol},
		{name: "mqtt", protocol: "mqtt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeUpgradeServer(t, tc.protocol)
			c, err := Dial(testContext(t), "ws://"+addr+"/mqtt", Config{})
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var de *DialError
			if !errors.As(err, &de) || de.Op != "websocket" {
				t.Errorf("err = %v, want a websocket *DialError", err)
			}
		})
	}
}

// TestWSHandler mounts the endpoint on an http.Server next to another route,
// over TLS, and checks the upgrade headers, path and subprotocol rules.
func TestWSHandler(t *testing.T) {
	p := newPKI(t)
	conns := make(chan net.Conn, 1)
	errs := make(chan error, 4)
	var gotAuth string
	h := &WSHandler{
		Path:             "/$iothub/websocket",
		OnConn:           func(c net.Conn) { conns <- c },
		OnHandshakeError: func(err error) { errs <- err },
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "rest") })
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		h.ServeHTTP(w, r)
	}))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", p.serverTLS(tls.NoClientCert))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: testTimeout}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	base := "wss://" + ln.Addr().String()

	c, err := Dial(testContext(t), base, Config{
		TLS:           p.ca.ClientConfig(nil),
		WebSocketPath: "/$iothub/websocket",
		Header:        http.Header{"Authorization": {"SharedAccessSignature sr=x"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var s net.Conn
	select {
	case s = <-conns:
	case <-time.After(testTimeout):
		t.Fatal("handler produced no connection")
	}
	defer s.Close()
	exchange(t, c, s)
	if gotAuth != "SharedAccessSignature sr=x" {
		t.Errorf("upgrade request Authorization = %q", gotAuth)
	}
	if _, ok := TLSConnectionState(s); !ok {
		t.Error("no TLS state on the hijacked connection")
	}

	// A query does not change the path.
	cq, err := Dial(testContext(t), base+"/$iothub/websocket?iothub-no-client-cert=true", Config{TLS: p.ca.ClientConfig(nil)})
	if err != nil {
		t.Fatalf("path with query: %v", err)
	}
	cq.Close()
	select {
	case sq := <-conns:
		sq.Close()
	case <-time.After(testTimeout):
		t.Fatal("handler produced no connection for the path with a query")
	}

	_, err = Dial(testContext(t), base+"/elsewhere", Config{TLS: p.ca.ClientConfig(nil)})
	if !errors.Is(err, ErrUpgrade) {
		t.Errorf("other path: err = %v, want ErrUpgrade", err)
	}
	if serr := waitErr(t, errs); !errors.Is(serr, ErrBadPath) {
		t.Errorf("other path: handler error %v, want ErrBadPath", serr)
	}

	d := ws.Dialer{TLSConfig: p.ca.ClientConfig(nil), Timeout: testTimeout}
	_, _, _, err = d.Dial(testContext(t), base+"/$iothub/websocket")
	if se := (ws.StatusError(0)); !errors.As(err, &se) || se != http.StatusBadRequest {
		t.Errorf("no subprotocol: err = %v, want HTTP 400", err)
	}
	if serr := waitErr(t, errs); !errors.Is(serr, ErrSubprotocol) {
		t.Errorf("no subprotocol: handler error %v, want ErrSubprotocol", serr)
	}
}

// TestUpgradeRequestBounded: a client that sends an endless header line is
// cut off after maxUpgradeBytes, at once, instead of having the line
// collected in memory until the handshake timeout.
func TestUpgradeRequestBounded(t *testing.T) {
	l, errs := listen(t, "ws://127.0.0.1:0/", ListenConfig{HandshakeTimeout: time.Hour})
	c, err := net.DialTimeout("tcp", l.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testTimeout))
	wrote := make(chan error, 1)
	go func() {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Long: "); err != nil {
			wrote <- err
			return
		}
		chunk := bytes.Repeat([]byte{'a'}, 64<<10)
		for range 1024 { // 64 MiB, more than loopback socket buffers hold
			if _, err := c.Write(chunk); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	var he *HandshakeError
	if err := waitErr(t, errs); !errors.As(err, &he) || !errors.Is(err, ErrUpgrade) {
		t.Fatalf("server error = %v, want a websocket *HandshakeError wrapping ErrUpgrade", err)
	}
	if err := <-wrote; err == nil {
		t.Error("the server read all 64 MiB of one header line")
	}
}

// TestUpgradeResponseBounded: a server that answers the upgrade with an
// endless header line fails the dial once maxUpgradeBytes are read.
func TestUpgradeResponseBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * testTimeout))
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nX-Long: ")
		chunk := bytes.Repeat([]byte{'a'}, 64<<10)
		for { // until the client hangs up
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		c, err := Dial(ctx, "ws://"+ln.Addr().String()+"/mqtt", Config{})
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUpgrade) {
			t.Fatalf("err = %v, want ErrUpgrade", err)
		}
	case <-time.After(testTimeout):
		cancel()
		t.Fatal("the dialer kept reading an endless response header")
	}
}
