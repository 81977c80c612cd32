package mqtt

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/hubwire/hubwire/transport"
)

// Defaults applied by NewClient to zero fields of Config.
const (
	DefaultKeepAlive       = 60 * time.Second
	DefaultConnectTimeout  = 10 * time.Second
	DefaultInFlight        = 64
	DefaultHandlerQueue    = 128
	DefaultMaxPacketSize   = 4 << 20
	DefaultWriteBufferSize = 64 << 10
	DefaultBackoffMin      = 100 * time.Millisecond
	DefaultBackoffMax      = 30 * time.Second
)

// Config configures a Client. It is a plain struct: zero fields take the
// documented defaults, and NewClient copies it, so changing a Config after
// NewClient has no effect.
type Config struct {
	// Dialer opens the byte stream to the broker. It is called once per
	// connection attempt with a context bounded by ConnectTimeout. When nil,
	// URL is dialed with package transport.
	Dialer func(ctx context.Context) (net.Conn, error)
	// URL is the broker address used when Dialer is nil: tcp://, tls://,
	// ws:// or wss:// (see package transport), or a bare host:port for TCP.
	URL string
	// Transport configures dialing URL: TLS settings (root CAs, client
	// certificate), proxy, WebSocket path and headers.
	Transport transport.Config

	// ClientID is the MQTT client identifier. It may be empty only with
	// CleanSession [MQTT-3.1.3-7].
	ClientID string
	// Username is sent when not empty.
	Username string
	// Password is sent when not nil (and PasswordFunc is nil).
	Password []byte
	// PasswordFunc, when set, is called on every connection attempt and its
	// result sent as the password: a SAS token can be renewed before each
	// reconnect. An error aborts that attempt.
	PasswordFunc func(ctx context.Context) ([]byte, error)

	// KeepAlive is the keep-alive interval sent in CONNECT. The client sends
	// PINGREQ when it has written nothing, or received nothing, for three
	// quarters of it: the second rule finds a dead link while the client
	// keeps publishing (see PingTimeout). Zero means
	// DefaultKeepAlive; negative disables keep-alive (0 on the wire), and
	// with it the client's own dead-connection detection (PING and write
	// timeouts): a silent peer is then noticed only when the OS reports
	// the connection broken. Values are rounded down to whole seconds, at
	// least 1 s and at most 65,535 s.
	KeepAlive time.Duration
	// PingTimeout is how long a PINGRESP may take before the connection is
	// declared dead and closed with ErrPingTimeout (then reconnected), also
	// while the client is publishing. Zero means the smaller of
	// KeepAlive and 10 s.
	PingTimeout time.Duration
	// CleanSession asks the broker to discard any previous session.
	CleanSession bool
	// Will is published by the broker when the connection is lost without
	// DISCONNECT. Nil means no will.
	Will *Message
	// ConnectTimeout bounds dialing plus the CONNECT/CONNACK exchange of
	// one attempt. Zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration

	// InFlight is the window of unacknowledged QoS 1 and 2 publishes.
	// Zero means DefaultInFlight; at most 65,535.
	InFlight int
	// FailWhenFull makes Publish and PublishAsync return ErrInFlightFull
	// at once when the window is full, instead of waiting for a slot.
	FailWhenFull bool
	// WriteBufferSize is the number of pending bytes (not yet written to the
	// connection) above which Publish waits for the writer. Zero means
	// DefaultWriteBufferSize.
	WriteBufferSize int
	// MaxPacketSize limits incoming packets; a larger one closes the
	// connection. Zero means DefaultMaxPacketSize.
	MaxPacketSize int

	// Reconnect configures automatic reconnection after a connection that
	// Connect established is lost.
	Reconnect Backoff
	// Store keeps unacknowledged outgoing packets across reconnects. Nil
	// means a new MemoryStore.
	Store Store

	// OnMessage handles incoming messages that match no Subscription with
	// a Handler. Nil drops them (still acknowledged).
	OnMessage Handler
	// HandlerQueue is the number of received messages that may wait for
	// their handler. When it is full the reader stops reading (TCP
	// back-pressure to the broker); see the package documentation. Zero
	// means DefaultHandlerQueue.
	HandlerQueue int
	// AckAfterHandler delays the PUBACK (QoS 1) or PUBREC (QoS 2) of a
	// received message until its handler has returned, so a crash inside
	// the handler makes the broker send it again. By default the
	// acknowledgement is sent as soon as the message is queued for its
	// handler. Either way acknowledgements leave in the order the messages
	// arrived [MQTT-4.6.0-2].
	AckAfterHandler bool

	// OnStateChange, when set, is called on every state change with the
	// error that caused it (nil for a requested change). Calls are made one
	// at a time, in order; a change overtaken by a later one before it
	// could be reported is skipped. It runs on the client's goroutines (or
	// the one calling Connect or Close): it may call the client, Close
	// included (on StateConnected the connection is already serving, so
	// Subscribe works). Changes made while it runs are reported after it
	// returns, by the same goroutine, and while it runs after a lost
	// connection the client does not reconnect, so keep it short.
	OnStateChange func(from, to State, err error)
	// OnConnect, when set, is called after every accepted CONNECT (that of
	// Connect and of each reconnection, planned or not) with the CONNACK's
	// session-present flag, before the connection carries anything else:
	// before subscriptions are restored (when the session was not
	// present), unacknowledged packets resent and StateConnected reported.
	// It runs on the goroutine that made the attempt and delays the
	// connection's use, so keep it short. It may call Close (Connect then
	// returns ErrClosed); QoS 1 and 2 publishes it makes are sent after the
	// resends, while QoS 0, Subscribe and Unsubscribe return
	// ErrNotConnected (the connection is not serving yet).
	OnConnect func(sessionPresent bool)
	// OnConnectError, when set, is called after every failed connection
	// attempt with its error: a refused CONNECT is a packet.ConnackCode
	// (errors.As), a dial or handshake failure the transport's error,
	// ErrConnectTimeout when ConnectTimeout ran out, a PasswordFunc error
	// wrapped. It is called for Connect's attempt (before Connect returns
	// the same error) and for each failed reconnection, which
	// OnStateChange does not report (the state stays StateReconnecting);
	// not for an attempt Close aborted. It runs on the goroutine that made
	// the attempt, before the next backoff delay; it may call Close, for
	// instance to stop after a refusal that retrying cannot cure.
	OnConnectError func(err error)
	// Logger receives connection events. Nil means silent. Secrets
	// (passwords) are never logged.
	Logger *slog.Logger
}

// Backoff is an exponential backoff with full jitter: before attempt n
// (from 0) the client waits a uniformly random time in [0, min(Max, Min·2ⁿ)].
// A connection that is lost within Max of being established does not reset
// n, so a broker that accepts and at once drops the client is retried ever
// more slowly.
type Backoff struct {
	// Disabled turns automatic reconnection off: a lost connection moves
	// the client to StateDisconnected and Connect must be called again.
	// Client.Reconnect still makes its one immediate attempt.
	Disabled bool
	// Min is the first ceiling. Zero means DefaultBackoffMin.
	Min time.Duration
	// Max caps the ceiling. Zero means DefaultBackoffMax.
	Max time.Duration
}

func (c *Config) normalize() {
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.KeepAlive < 0 {
		c.KeepAlive = 0
	}
	if c.KeepAlive > 65535*time.Second {
		c.KeepAlive = 65535 * time.Second
	}
	if c.KeepAlive > 0 {
		// The wire carries whole seconds, and 0 would turn the broker's
		// keep-alive off: round down, to at least 1 s, and use that value
		// for the client's own timers too.
		c.KeepAlive = max(c.KeepAlive.Truncate(time.Second), time.Second)
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 10 * time.Second
		if c.KeepAlive > 0 && c.KeepAlive < c.PingTimeout {
			c.PingTimeout = c.KeepAlive
		}
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.InFlight <= 0 {
		c.InFlight = DefaultInFlight
	}
	if c.InFlight > 65535 {
		c.InFlight = 65535
	}
	if c.WriteBufferSize <= 0 {
		c.WriteBufferSize = DefaultWriteBufferSize
	}
	if c.MaxPacketSize <= 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
	if c.HandlerQueue <= 0 {
		c.HandlerQueue = DefaultHandlerQueue
	}
	if c.Reconnect.Min <= 0 {
		c.Reconnect.Min = DefaultBackoffMin
	}
	if c.Reconnect.Max <= 0 {
		c.Reconnect.Max = DefaultBackoffMax
	}
	if c.Reconnect.Max < c.Reconnect.Min {
		c.Reconnect.Max = c.Reconnect.Min
	}
	if c.Store == nil {
		c.Store = NewMemoryStore()
	}
}
