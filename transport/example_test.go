package transport_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/hubwire/hubwire/internal/testcert"
	"github.com/hubwire/hubwire/transport"
)

// A device dials the IoT Hub WebSocket endpoint. Here the hub is a local wss
// listener with a test certificate; against Azure the URL would be
// wss://{hub}.azure-devices.net (443 and the path are filled in) and
// Config.TLS would trust the DigiCert roots.
func ExampleNewDialer() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := testcert.NewCA(testcert.Options{})
	if err != nil {
		log.Fatal(err)
	}
	server, err := ca.Server()
	if err != nil {
		log.Fatal(err)
	}
	l, err := transport.Listen(ctx, "wss://127.0.0.1:0/$iothub/websocket", transport.ListenConfig{
		TLS: ca.ServerConfig(server, tls.RequestClientCert),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	go func() { // the hub: answer one CONNECT with a CONNACK
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		if _, err := c.Read(buf); err == nil {
			c.Write([]byte{0x20, 0x02, 0x00, 0x00})
		}
	}()

	d, err := transport.NewDialer("wss://"+l.Addr().String(), transport.Config{
		TLS:           ca.ClientConfig(nil),
		WebSocketPath: "/$iothub/websocket",
		Proxy:         transport.ProxyFromEnvironment(), // loopback is never proxied
	})
	if err != nil {
		log.Fatal(err)
	}
	conn, err := d.DialContext(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c")) // CONNECT
	connack := make([]byte, 4)
	if _, err := io.ReadFull(conn, connack); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%T read CONNACK % x\n", conn, connack)
	// Output: *transport.WSConn read CONNACK 20 02 00 00
}

// An emulator listens for TLS on 8883, requesting but not requiring client
// certificates as IoT Hub does, and reads the device's certificate.
func ExampleListen() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := testcert.NewCA(testcert.Options{})
	if err != nil {
		log.Fatal(err)
	}
	server, err := ca.Server()
	if err != nil {
		log.Fatal(err)
	}
	device, err := ca.Client("thermostat-7")
	if err != nil {
		log.Fatal(err)
	}
	l, err := transport.Listen(ctx, "tls://127.0.0.1:0", transport.ListenConfig{
		TLS:              ca.ServerConfig(server, tls.VerifyClientCertIfGiven),
		HandshakeTimeout: 5 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := transport.Dial(ctx, l.URL(), transport.Config{TLS: ca.ClientConfig(device)})
		if err != nil {
			log.Print(err)
			return
		}
		c.Write([]byte{0xc0, 0x00}) // PINGREQ
		c.Close()
	}()

	conn, err := l.Accept()
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	state, _ := transport.TLSConnectionState(conn)
	ping := make([]byte, 2)
	io.ReadFull(conn, ping)
	fmt.Printf("device %s sent % x\n", state.PeerCertificates[0].Subject.CommonName, ping)
	// Output: device thermostat-7 sent c0 00
}

// The WebSocket endpoint can share an http.Server with a REST API.
func ExampleWSHandler() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conns := make(chan net.Conn, 1)
	mux := http.NewServeMux()
	mux.Handle("/$iothub/websocket", &transport.WSHandler{
		Path:   "/$iothub/websocket",
		OnConn: func(c net.Conn) { conns <- c },
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	c, err := transport.Dial(ctx, "ws://"+ln.Addr().String()+"/$iothub/websocket", transport.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{0xe0, 0x00}) // DISCONNECT
	s := <-conns
	defer s.Close()
	b := make([]byte, 2)
	io.ReadFull(s, b)
	fmt.Printf("% x\n", b)
	// Output: e0 00
}

// Pipe connects two layers in memory; Reset simulates a dropped connection.
func ExamplePipe() {
	client, server := transport.Pipe(transport.PipeOptions{MaxRead: 1})
	client.Write([]byte{0xc0, 0x00})
	b := make([]byte, 2)
	n, _ := server.Read(b) // MaxRead: one byte at a time
	fmt.Println(n)
	client.Reset()
	_, err := server.Read(b)
	fmt.Println(err)
	// Output:
	// 1
	// read pipe server->client: connection reset by peer
}
