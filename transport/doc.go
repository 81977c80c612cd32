// Package transport gets a byte stream to and from an MQTT server: it dials
// and listens on tcp, tls, ws and wss URLs, tunnels through HTTP CONNECT and
// SOCKS5 proxies, frames the stream in WebSocket binary frames, and offers an
// in-memory Pipe for tests of the layers above. It never parses MQTT.
//
// # Schemes
//
//	tcp://host:port     plain TCP (alias mqtt://; default port 1883)
//	tls://host:port     TLS (aliases ssl://, mqtts://; default port 8883)
//	ws://host:port/path  WebSocket (default port 80)
//	wss://host:port/path WebSocket over TLS (default port 443)
//
// IoT Hub serves MQTT on tls://{host}:8883 and on
// wss://{host}:443/$iothub/websocket; the path is passed in by the iothub
// package through Config.WebSocketPath, not built in here.
//
// # Client side
//
// NewDialer checks a URL once and returns a Dialer whose DialContext opens a
// connection and completes every handshake before the context is done:
// TCP connect (directly or through the proxy chosen by Config.Proxy), TLS
// (always with SNI, TLS 1.2 minimum), and the WebSocket upgrade, which
// requests the "mqtt" subprotocol and fails with ErrSubprotocol unless the
// server selects it. Failures are *DialError values naming the failed step;
// they implement net.Error, so timeouts stay timeouts, and wrap their cause.
//
// # Server side
//
// Listen returns a Listener whose Accept yields only connections that have
// completed their TLS handshake and WebSocket upgrade, each done on its own
// goroutine within ListenConfig.HandshakeTimeout, at most
// ListenConfig.MaxPendingHandshakes at a time; Close ends those in progress
// and waits for their goroutines. The upgrade uses
// github.com/gobwas/ws directly on the connection (no net/http per
// connection), answers 404 to another path (ErrBadPath) and 400 to a client
// that does not offer "mqtt" (ErrSubprotocol, compared without regard to
// case), and reads at most 16 KiB of an upgrade request (the dialer as much
// of the response). WSHandler mounts the same endpoint on an existing
// http.Server.
// TLSConnectionState reads the peer certificate of any accepted connection.
//
// # WebSocket framing
//
// WSConn turns binary frames into a stream (see its documentation): packets
// may span frames and frames may hold several packets, pings are answered,
// the close handshake is done. It keeps no read buffer of its own, only
// about 200 bytes of state, so thousands of idle connections cost little.
//
// # Ownership and concurrency
//
// Every net.Conn returned is owned by the caller, who closes it. Dialers,
// Listeners, WSConns and PipeConns are safe for concurrent use by multiple
// goroutines.
package transport
