// Package mqtt is a generic MQTT 3.1.1 client engine: connect with keep-alive,
// QoS 0, 1 and 2 in both directions, a bounded in-flight window, ordered
// delivery to handlers, automatic reconnection with backoff and session
// resume. It knows nothing of IoT Hub; the iothub package builds on it.
//
// # Use
//
// Fill a Config (a plain struct; zero fields take documented defaults), call
// NewClient, then Connect. Publish blocks until the broker acknowledged a
// QoS 1 or 2 message; PublishAsync returns at once and reports the
// acknowledgement to a callback, which lets one goroutine keep the whole
// in-flight window busy. Subscribe registers handlers by topic filter. Close
// waits for in-flight messages, sends DISCONNECT and stops.
//
// # Goroutines and buffers
//
// A connection has a reader goroutine, and a writer goroutine while it has
// output. The reader decodes packets from the stream without copying
// (packet.Reader), completes acknowledgements and copies received messages
// out of its buffer into pooled Messages. The writer owns the socket's
// write side: publishers encode packets straight into a shared pending
// buffer under a mutex, and the writer, started when the buffer becomes
// non-empty, takes the whole buffer and writes it with a single Write call,
// so a burst of messages costs one system call; it flushes only what is
// queued and does not delay a write to batch more; once the queue is empty
// it parks for a few milliseconds (a publisher wakes it instead of
// starting a goroutine per burst) and then returns. The
// keep-alive is a timer, not a goroutine. When the queue is empty the
// buffer goes back to a pool, so an idle connection keeps no write buffer;
// nor a read buffer: between bursts the reader returns its buffer and
// waits for the socket to become readable (TCP on Linux) or in a read of a
// few bytes (TLS, WebSocket). A third goroutine, started when a received
// message is queued and returning when the queue is empty, runs handlers.
// The reader hands the messages of one read burst to it together and sends
// their PUBACKs in one write (by itself when nothing else is queued,
// sparing the writer a start). A fourth goroutine, started with the first
// acknowledgement of a QoS 1 or 2 publish, runs the Store calls the reader must not wait for (see Store).
// Steady-state publishing and receiving allocate nothing per message.
//
// # Delivery and back-pressure
//
// Received messages are queued for the delivery goroutine (Config.HandlerQueue
// deep) and handed to handlers one at a time, in arrival order. While that
// queue has room a slow handler therefore delays neither acknowledgements
// of our own publishes nor keep-alive: those are handled by the reader and
// writer. When the handler queue is full the reader stops reading (and so
// also stops reading PUBACKs and SUBACKs): the broker is then slowed by TCP
// flow control rather than the client buffering without bound. While the
// reader waits, the writer still sends queued packets and PINGREQs (so the
// broker keeps the connection), and the client suspends its own PINGRESP
// deadline, since the answer may be sitting unread in the socket. For the
// same reason a handler must not block on a QoS 1 or 2 Publish: use
// PublishAsync there, with a context that ends (a full in-flight window
// frees slots only as acknowledgements are read).
//
// By default the PUBACK (QoS 1) or PUBREC (QoS 2) of a received message is
// sent once it is queued for its handler; Config.AckAfterHandler sends it
// after the handler returns instead. Either way acknowledgements leave in
// arrival order. Incoming QoS 2 messages are delivered once per packet id:
// a re-sent PUBLISH for an id whose PUBREL has not arrived is acknowledged
// but not delivered again.
//
// # Reliability
//
// QoS 1 and 2 publishes are kept, encoded, in a Store (in memory by default)
// from the moment Publish accepts them until the broker acknowledges them,
// including while the client is disconnected. After a reconnect the client
// resends them in their original order: with DUP set when the broker resumed
// the session, along with PUBREL for QoS 2 messages already received by the
// broker; as new messages when it did not, in which case the client also
// restores its subscriptions. Packet ids are never reused while in flight.
//
// The connection is declared dead when a PINGRESP does not arrive within
// Config.PingTimeout or a write does not complete within the keep-alive
// plus that timeout. Reconnection uses exponential backoff with full jitter.
// Config.PasswordFunc is called on every attempt, so short-lived credentials
// such as SAS tokens can be renewed; Client.Reconnect replaces a healthy
// connection on purpose (DISCONNECT, then an immediate new attempt, nothing
// in flight dropped) to present a renewed one before the old expires.
//
// # Concurrency
//
// A Client is safe for concurrent use by multiple goroutines. Handlers and
// PublishAsync callbacks run on the client's goroutines and must not block
// for long; callbacks (which run on the reader) must not block at all.
// Handlers and Config.OnStateChange may call Close: a goroutine running a
// callback owns its own end, so such a Close starts the shutdown and
// returns without waiting for it; Client.Done reports when every goroutine
// of the client has returned.
package mqtt
