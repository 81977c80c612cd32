package transport

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// silentClients opens n TCP connections to l that never send a byte, and
// waits until the listener has taken all of them into their handshakes.
func silentClients(t *testing.T, l *Listener, n int) []net.Conn {
	t.Helper()
	cs := make([]net.Conn, n)
	for i := range cs {
		c, err := net.DialTimeout("tcp", l.Addr().String(), testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs[i] = c
	}
	waitPending(t, l, n)
	return cs
}

// waitPending waits until l has exactly n connections in their handshakes.
func waitPending(t *testing.T, l *Listener, n int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for l.pendingCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d handshakes pending, want %d", l.pendingCount(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// expectHangUp checks that the server closed c.
func expectHangUp(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	var ne net.Error
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("server did not hang up: %v", err)
	}
}

// TestSlowClientDoesNotBlockAccept: clients that connect and say nothing
// (with an hour to do so) do not delay the handshake of the next client.
func TestSlowClientDoesNotBlockAccept(t *testing.T) {
	p := newPKI(t)
	for _, scheme := range []string{"tls", "ws", "wss"} {
		t.Run(scheme, func(t *testing.T) {
			l, _ := listen(t, scheme+"://127.0.0.1:0/", ListenConfig{
				TLS:              p.serverTLS(tls.NoClientCert),
				HandshakeTimeout: time.Hour,
			})
			silentClients(t, l, 3)
			accepted := acceptOne(t, l)
			c, err := Dial(testContext(t), l.URL(), Config{TLS: p.ca.ClientConfig(nil)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			exchange(t, c, waitConn(t, accepted))
		})
	}
}

// TestMaxPendingHandshakes: with every slot held by a silent client the
// listener takes no more connections; a slot freed lets the next one in.
func TestMaxPendingHandshakes(t *testing.T) {
	l, errs := listen(t, "ws://127.0.0.1:0/", ListenConfig{
		HandshakeTimeout:     time.Hour,
		MaxPendingHandshakes: 2,
	})
	silent := silentClients(t, l, 2)

	// The slots are full: this upgrade request is not read. (A slow
	// machine can only make this check pass more surely, never fail.)
	c, err := net.DialTimeout("tcp", l.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, upgradeRequest); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := br.Peek(1); err == nil {
		t.Fatal("a third handshake ran while two were pending with MaxPendingHandshakes 2")
	}
	if n := l.pendingCount(); n != 2 {
		t.Errorf("%d handshakes pending, want 2", n)
	}

	// One silent client leaves; its slot goes to the waiting connection.
	accepted := acceptOne(t, l)
	silent[0].Close()
	_ = c.SetReadDeadline(time.Now().Add(testTimeout))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s", resp.Status)
	}
	waitConn(t, accepted)
	if err := waitErr(t, errs); err == nil {
		t.Error("no handshake error for the client that left")
	}
}

// upgradeRequest is a minimal valid WebSocket upgrade asking for "mqtt".
const upgradeRequest = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"

// TestCloseWithPendingHandshakes: Close ends handshakes in progress at once
// (not at their timeout), reports none of them as handshake errors, leaves
// no goroutine behind, and Accept then fails with net.ErrClosed.
func TestCloseWithPendingHandshakes(t *testing.T) {
	p := newPKI(t)
	for _, scheme := range []string{"tls", "ws", "wss"} {
		t.Run(scheme, func(t *testing.T) {
			l, errs := listen(t, scheme+"://127.0.0.1:0/", ListenConfig{
				TLS:              p.serverTLS(tls.NoClientCert),
				HandshakeTimeout: time.Hour,
			})
			silent := silentClients(t, l, 3)
			// A client whose handshake is done but not yet accepted.
			done, err := Dial(testContext(t), l.URL(), Config{TLS: p.ca.ClientConfig(nil)})
			if err != nil {
				t.Fatal(err)
			}
			defer done.Close()
			closed := make(chan error, 1)
			go func() { closed <- l.Close() }()
			select {
			case err := <-closed:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(testTimeout):
				t.Fatal("Close did not return while handshakes were pending")
			}
			if n := l.pendingCount(); n != 0 {
				t.Errorf("%d handshakes still pending after Close", n)
			}
			for _, c := range silent {
				expectHangUp(t, c)
			}
			expectHangUp(t, done)
			select {
			case err := <-errs:
				t.Errorf("handshake error reported for a Close: %v", err)
			default:
			}
			for range 2 {
				if c, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
					t.Errorf("Accept after Close = %v, %v; want net.ErrClosed", c, err)
				}
			}
		})
	}
}

// TestCloseFromHandshakeErrorCallback: OnHandshakeError may close the
// listener without deadlocking on its own goroutine.
func TestCloseFromHandshakeErrorCallback(t *testing.T) {
	var l *Listener
	ready := make(chan struct{})
	closed := make(chan error, 1)
	l, err := Listen(testContext(t), "ws://127.0.0.1:0/", ListenConfig{
		OnHandshakeError: func(error) {
			<-ready
			closed <- l.Close()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	close(ready)
	c, err := net.DialTimeout("tcp", l.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "NOT HTTP\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Close called from OnHandshakeError did not return")
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
}
