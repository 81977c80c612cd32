// Package device is an Azure IoT Hub device and module client: telemetry,
// cloud-to-device messages, device twins and direct methods over MQTT
// (TLS on 8883, or WebSockets on 443), built on the mqtt engine and the
// iothub state machines.
//
// # The first program
//
//	c, err := device.New(device.Config{ConnectionString: os.Getenv("IOTHUB_DEVICE_CONNECTION_STRING")})
//	if err != nil {
//		log.Fatal(err)
//	}
//	ctx := context.Background()
//	if err := c.Connect(ctx); err != nil {
//		log.Fatal(err)
//	}
//	defer c.Close(ctx)
//	if err := c.Send(ctx, &device.Message{Payload: []byte(`{"temperature":21.5}`)}); err != nil {
//		log.Fatal(err)
//	}
//
// # Identity and transport
//
// Config takes a connection string (SharedAccessKey, SharedAccessSignature
// or x509=true; GatewayHostName for an Edge gateway; ModuleId for a module)
// or the same parts as fields, or a sas.TokenSource for tokens minted
// elsewhere (an HSM, the Edge workload API). Config.Transport selects
// "mqtt" (8883) or "mqtt-ws" (443, /$iothub/websocket), which goes through
// HTTP CONNECT and SOCKS5 proxies, taken from HTTPS_PROXY and NO_PROXY
// unless Config.Proxy is set. Config.ModelID announces a Plug and Play
// model.
//
// # What the client does by itself
//
// After Connect returns, the client keeps the connection up until Close:
//
//   - It renews SAS tokens minted from a key before they expire (at 80 % of
//     Config.TokenTTL, a little earlier at random) with the engine's
//     planned reconnect (mqtt.Client.Reconnect): a running C2D handler is
//     given a moment to finish, DISCONNECT follows what is queued, the
//     acknowledgements the hub sends before it closes are still read, and
//     the client reconnects at once with a fresh token, without backoff.
//     Sends go on meanwhile. Telemetry still unacknowledged is resent (a
//     duplicate at worst), C2D messages not yet acknowledged are
//     redelivered by the hub, and method answers wait for the new
//     connection.
//   - It reconnects after a lost connection with exponential backoff and
//     full jitter. A dead link is found even while the device only
//     publishes: the engine pings after three quarters of a keep-alive
//     without data received, however much it sends, and gives up on the
//     connection after Config.PingTimeout (ErrConnectionLost).
//   - A refused CONNECT (CONNACK 5) renews the token once; if refused again
//     the client stops with a *ConnectError matching ErrUnauthorized. When
//     the hub closes fresh connections again and again (another client
//     uses the same identity) it stops with ErrKicked. Err tells why it
//     stopped and Done is closed.
//
// # Delivery
//
// Send at QoS 1 returns when the hub acknowledged the message. Accepted
// messages (up to Config.QueueSize unacknowledged) are kept across
// reconnects and renewals, in order, and with a FileStore across process
// restarts too. A loop that reuses one Message sends without allocating.
//
// Config.OnC2D must be set before Connect, because IoT Hub delivers queued
// cloud-to-device messages right after CONNACK, before the client has
// subscribed again. Messages are handed over one at a time, in order, and
// each is acknowledged (completed) when the handler returns.
//
// Desired-property updates reach Config.OnDesired in $version order. After
// every (re)connect the client subscribes, reads the twin and drops
// notifications the read already contains; the difference from what was
// applied before arrives as one update with Resync set (Full the first
// time), so an application never misses a change made while it was
// offline. ReportProperties sends reported patches one at a time and
// retries those throttled (429) with backoff.
//
// Direct methods are dispatched by name to handlers running on their own
// goroutines (at most Config.MaxConcurrentMethods at once), so a slow
// handler never delays keep-alive, acknowledgements or other messages. A
// handler's error or panic is answered 500; a method without a handler,
// 501.
//
// # Errors and logs
//
// Errors match the sentinels of this package with errors.Is:
// ErrInvalidConfig, ErrUnauthorized (and *ConnectError for any CONNACK
// refusal), ErrTokenExpired, ErrUnreachable, ErrThrottled, ErrNotFound,
// ErrTimeout, ErrConnectionLost, ErrKicked, ErrClosed, ErrNotConnected,
// ErrInvalidMessage. Nil or malformed input gives an error, never a panic.
// The client logs through Config.Logger (log/slog) and is silent without
// one; it never logs keys or tokens.
//
// # Concurrency
//
// A Client is safe for concurrent use by multiple goroutines. A Message
// must not be given to two Sends at once.
package device
