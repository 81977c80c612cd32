package device

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
	"github.com/hubwire/hubwire/transport"
)

// State is the connection state of a Client (the engine's states).
type State = mqtt.State

// The states of a Client: a new one is StateDisconnected; Connect moves it
// through StateConnecting to StateConnected; a lost connection (or a token
// renewal) moves it to StateReconnecting and back; Close, or a condition
// retrying cannot cure (see Err), ends in StateClosed.
const (
	StateDisconnected = mqtt.StateDisconnected
	StateConnecting   = mqtt.StateConnecting
	StateConnected    = mqtt.StateConnected
	StateReconnecting = mqtt.StateReconnecting
	StateClosed       = mqtt.StateClosed
)

// Causes the client reports for a connection that ended: a token renewal
// (the engine's planned reconnect, which it reports with a nil error) and
// a dead link (the engine's keep-alive got no PINGRESP).
var (
	errRenewal  = errors.New("device: planned reconnect to renew the SAS token")
	errDeadLink = classErr(ErrConnectionLost, "device: no answer from the hub within the ping timeout (dead link)", mqtt.ErrPingTimeout)
)

// Client is a device or module connection to IoT Hub. Create it with New,
// start it with Connect; from then on it reconnects and renews its token by
// itself until Close. All methods are safe for concurrent use.
type Client struct {
	cfg    Config
	id     identity
	log    *slog.Logger
	tok    *tokens // nil for X.509
	mq     *mqtt.Client
	dialer transport.Dialer
	twin   *iothub.DeviceTwin
	mux    iothub.MethodMux

	methodSem     chan struct{}
	methodWaiting atomic.Int32

	ctx      context.Context // ended by Close or a fatal error: handlers' contexts
	cancel   context.CancelFunc
	done     chan struct{} // closed once the client is closed
	doneOnce sync.Once

	c2dBusy atomic.Bool // a C2D handler runs: its PUBACK goes on this connection

	mu          sync.Mutex
	up          chan struct{} // closed while connected
	connected   bool
	connectedAt time.Time
	started     bool // the first Connect subscribed: later connects are reconnects
	closing     bool
	fatal       error // why the client stopped by itself
	authFails   int
	kicks       []time.Time // recent connections the hub took away
	suspectKick bool        // the last connection was closed by the hub soon after it opened
	renewTimer  iothub.Timer
	syncRIDs    map[string]bool // twin GETs whose reply ends a resynchronisation

	reportMu sync.Mutex // serialises reported patches

	desiredMu   sync.Mutex
	desiredQ    []DesiredUpdate
	desiredWake chan struct{}

	c2d C2DMessage // reused: C2D handlers run one at a time

	wg sync.WaitGroup
}

// New validates cfg and returns a Client. It does not connect. Errors match
// ErrInvalidConfig (and the sas package's error for a bad connection
// string).
func New(cfg Config) (*Client, error) {
	id, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	cfg.normalize()
	rawURL, serverName, err := cfg.dialTarget(&id)
	if err != nil {
		return nil, err
	}
	var tc *tls.Config
	if cfg.TLS != nil {
		tc = cfg.TLS.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc.ServerName = serverName
	}
	if cfg.RootCAs != nil {
		tc.RootCAs = cfg.RootCAs
	}
	if id.x509 {
		cert := cfg.Certificate
		if cert == nil {
			c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
			if err != nil {
				return nil, configErr("X.509 certificate files", err)
			}
			cert = &c
		}
		tc.Certificates = append(tc.Certificates[:0:0], *cert)
	}
	tcfg := transport.Config{TLS: tc, WebSocketPath: WebSocketPath, Proxy: cfg.Proxy, Timeout: cfg.ConnectTimeout}
	if tcfg.Proxy == nil && !cfg.NoProxy {
		tcfg.Proxy = transport.ProxyFromEnvironment()
	}
	d, err := transport.NewDialer(rawURL, tcfg)
	if err != nil {
		return nil, configErr("address", err)
	}

	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:         cfg,
		id:          id,
		log:         logger,
		dialer:      d,
		methodSem:   make(chan struct{}, cfg.MaxConcurrentMethods),
		done:        make(chan struct{}),
		up:          make(chan struct{}),
		syncRIDs:    make(map[string]bool),
		desiredWake: make(chan struct{}, 1),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.twin = iothub.NewDeviceTwin(iothub.DeviceTwinConfig{Clock: cfg.Clock, Timeout: cfg.TwinTimeout, RequestIDPrefix: "hw"})
	for name, h := range cfg.Methods {
		c.mux.Handle(name, h)
	}
	if cfg.DefaultMethod != nil {
		c.mux.HandleDefault(cfg.DefaultMethod)
	}
	if !id.x509 {
		c.tok = newTokens(&cfg, &id)
	}

	user := iothub.Username{Host: id.host, DeviceID: id.deviceID, ModuleID: id.moduleID, APIVersion: cfg.APIVersion, ClientType: cfg.ClientType, ModelID: cfg.ModelID}
	mc := mqtt.Config{
		Dialer:          c.dial,
		ClientID:        user.ClientID(),
		Username:        user.String(),
		KeepAlive:       cfg.KeepAlive,
		PingTimeout:     cfg.PingTimeout,
		ConnectTimeout:  cfg.ConnectTimeout,
		InFlight:        cfg.QueueSize,
		Reconnect:       mqtt.Backoff{Min: cfg.ReconnectMin, Max: cfg.ReconnectMax},
		Store:           cfg.Store,
		OnMessage:       c.route,
		HandlerQueue:    64, // C2D is at most 50 pending; twin and method traffic is handed off at once
		AckAfterHandler: true,
		OnStateChange:   c.onState,
		OnConnect:       c.onConnect,
		OnConnectError:  c.onConnectError,
		Logger:          logger,
	}
	if c.tok != nil {
		mc.PasswordFunc = c.password
	}
	mq, err := mqtt.NewClient(mc)
	if err != nil {
		return nil, configErr("mqtt", err)
	}
	c.mq = mq
	if cfg.OnDesired != nil {
		c.spawn(c.desiredLoop)
	}
	return c, nil
}

// spawn runs f on a goroutine Close waits for.
func (c *Client) spawn(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// DeviceID returns the device id of the identity.
func (c *Client) DeviceID() string { return c.id.deviceID }

// ModuleID returns the module id, or "" for a device identity.
func (c *Client) ModuleID() string { return c.id.moduleID }

// dial opens a connection for the engine.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	nc, err := c.dialer.DialContext(ctx)
	if err != nil {
		c.mu.Lock()
		c.suspectKick = false // the hub is away, not taken by another client
		c.mu.Unlock()
		return nil, classErr(ErrUnreachable, "device: dial", err)
	}
	return nc, nil
}

// onConnect sees every accepted CONNECT (the engine's OnConnect): the
// credentials work again.
func (c *Client) onConnect(sessionPresent bool) {
	c.mu.Lock()
	if c.started {
		c.authFails = 0
	}
	c.mu.Unlock()
	c.log.Debug("device: connected", "sessionPresent", sessionPresent)
}

// onConnectError sees every failed connection attempt (the engine's
// OnConnectError). After the first Connect, a refusal of the credentials
// renews the token once; a second one in a row stops the client with a
// *ConnectError (ErrUnauthorized) rather than retrying forever.
func (c *Client) onConnectError(err error) {
	var code packet.ConnackCode
	if !errors.As(err, &code) || !isAuthRefusal(code) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		return // Connect handles its own attempts
	}
	c.authFails++
	if c.authFails == 1 && c.tok != nil && !c.tok.static {
		c.log.Info("device: reconnect refused; renewing the token once")
		c.tok.renew()
		return
	}
	c.failLocked(&ConnectError{Code: code})
}

// password supplies the SAS token of each CONNECT. A connection string's
// token that has expired stops the client.
func (c *Client) password(ctx context.Context) ([]byte, error) {
	pw, err := c.tok.password(ctx)
	if errors.Is(err, ErrTokenExpired) {
		c.mu.Lock()
		if c.started {
			c.failLocked(ErrTokenExpired)
		}
		c.mu.Unlock()
	}
	return pw, err
}

// Connect connects to the hub and subscribes to what the client handles
// (twin, direct methods, and C2D when Config.OnC2D is set), then starts
// the twin synchronisation. After it returns nil the client keeps itself
// connected until Close: it reconnects with backoff after a lost connection
// and renews its SAS token before it expires.
//
// A refused CONNECT renews the token once and tries again; then it returns
// a *ConnectError (errors.Is ErrUnauthorized for a bad key, an expired or
// foreign token, an unknown identity). A network failure matches
// ErrUnreachable; a connection string token that has expired,
// ErrTokenExpired.
func (c *Client) Connect(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c.mu.Lock()
	switch {
	case c.fatal != nil:
		err := c.fatal
		c.mu.Unlock()
		return err
	case c.closing:
		c.mu.Unlock()
		return ErrClosed
	}
	c.mu.Unlock()
	_, err := c.mq.Connect(ctx)
	if isAuthRefusal(err) && c.tok != nil && !c.tok.static {
		c.log.Info("device: CONNECT refused; renewing the token and retrying once")
		c.tok.renew()
		_, err = c.mq.Connect(ctx)
	}
	if err != nil {
		return c.mapErr(err)
	}
	filters := []mqtt.Subscription{
		{Filter: iothub.TwinResponseFilter},
		{Filter: iothub.TwinDesiredFilter},
		{Filter: iothub.MethodsFilter},
	}
	if c.cfg.OnC2D != nil {
		if c.id.moduleID == "" {
			filters = append(filters, mqtt.Subscription{Filter: string(iothub.AppendC2DFilter(nil, c.id.deviceID)), QoS: packet.QoS1})
		} else {
			filters = append(filters, mqtt.Subscription{Filter: string(iothub.AppendModuleFilter(nil, c.id.deviceID, c.id.moduleID)), QoS: packet.QoS1})
		}
	}
	for {
		_, err := c.mq.Subscribe(ctx, filters...)
		if err == nil {
			break
		}
		if !errors.Is(err, mqtt.ErrConnectionLost) && !errors.Is(err, mqtt.ErrNotConnected) {
			return c.mapErr(err)
		}
		// The connection dropped before the SUBACK: the engine is
		// reconnecting; subscribe on the next connection.
		if err := c.waitUp(ctx); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
	c.afterConnect()
	return nil
}

// isAuthRefusal reports whether err is a CONNACK refusing the credentials.
func isAuthRefusal(err error) bool {
	return errors.Is(err, packet.ConnackNotAuthorized) || errors.Is(err, packet.ConnackBadUsernameOrPassword)
}

// mapErr turns an engine error into one of this package's.
func (c *Client) mapErr(err error) error {
	if err == nil {
		return nil
	}
	var code packet.ConnackCode
	switch {
	case errors.Is(err, ErrTokenExpired):
		return ErrTokenExpired
	case errors.As(err, &code):
		return &ConnectError{Code: code}
	case errors.Is(err, mqtt.ErrClosed):
		return c.closedErr()
	case errors.Is(err, mqtt.ErrNotConnected):
		return ErrNotConnected
	case errors.Is(err, mqtt.ErrConnectionLost):
		return classErr(ErrConnectionLost, "device", err)
	case errors.Is(err, mqtt.ErrInvalidMessage):
		return classErr(ErrInvalidMessage, "device", err)
	}
	return err
}

// afterConnect runs once a connection is up and subscribed: it starts the
// twin synchronisation and schedules the token renewal.
func (c *Client) afterConnect() {
	c.startSync()
	c.scheduleRenewal()
}

// scheduleRenewal arms the timer that renews the token of the connection.
func (c *Client) scheduleRenewal() {
	if c.tok == nil {
		return
	}
	at, ok := c.tok.renewal()
	if !ok {
		return
	}
	d := max(at.Sub(c.cfg.Clock.Now()), 0)
	t := c.cfg.Clock.AfterFunc(d, func() { go c.renew() })
	c.mu.Lock()
	if c.renewTimer != nil {
		c.renewTimer.Stop()
	}
	if c.closing || !c.connected {
		c.mu.Unlock()
		t.Stop()
		return
	}
	c.renewTimer = t
	c.mu.Unlock()
}

// drainTimeout bounds how long a renewal waits for a running C2D handler
// before it reconnects (the message is then delivered again).
const drainTimeout = 2 * time.Second

// renew replaces the token with the engine's planned reconnect
// (mqtt.Client.Reconnect): a C2D handler that is running is awaited
// briefly, so that its acknowledgement still goes out on this connection;
// then DISCONNECT follows what is queued, the PUBACKs the hub sends before
// it closes are still read, and the engine reconnects at once with a fresh
// token, resending whatever is still unacknowledged. Sends go on meanwhile
// (the engine queues them). Nothing accepted is lost; a message whose
// PUBACK the renewal overtook is delivered twice (at least once).
func (c *Client) renew() {
	c.mu.Lock()
	live := c.connected && !c.closing
	c.renewTimer = nil
	c.mu.Unlock()
	if !live {
		return
	}
	c.log.Info("device: renewing SAS token")
	c.tok.renew()
	deadline := time.Now().Add(drainTimeout)
	for c.c2dBusy.Load() && time.Now().Before(deadline) && c.ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
	if err := c.mq.Reconnect(c.ctx); err != nil && c.ctx.Err() == nil && !errors.Is(err, mqtt.ErrClosed) {
		// The engine goes on reconnecting with backoff; a refusal is
		// handled by onConnectError.
		c.log.Info("device: reconnect for the token renewal failed", "err", err)
	}
}

// onState follows the engine's state changes.
func (c *Client) onState(from, to State, err error) {
	reportErr := err
	c.mu.Lock()
	switch to {
	case StateConnected:
		if !c.connected {
			close(c.up)
		}
		c.connected = true
		c.connectedAt = time.Now()
		if c.suspectKick {
			// The hub closed the last connection soon after it opened
			// and took this one at once: the sign of another client with
			// our identity (a hub that is down refuses the dial instead).
			c.suspectKick = false
			now := time.Now()
			kept := c.kicks[:0]
			for _, k := range c.kicks {
				if now.Sub(k) < c.cfg.KickWindow {
					kept = append(kept, k)
				}
			}
			c.kicks = append(kept, now)
			if len(c.kicks) >= c.cfg.KickLimit {
				c.failLocked(ErrKicked)
				reportErr = ErrKicked
			}
		}
		if c.started && c.fatal == nil {
			c.spawn(c.afterConnect)
		}
	default:
		if c.connected {
			c.connected = false
			c.up = make(chan struct{})
			if c.renewTimer != nil {
				c.renewTimer.Stop()
				c.renewTimer = nil
			}
			uptime := time.Since(c.connectedAt)
			c.twin.Disconnected()
			switch {
			case to == StateReconnecting && err == nil:
				// The engine's planned reconnect: only renew asks for it.
				reportErr = errRenewal
			case errors.Is(err, mqtt.ErrPingTimeout):
				reportErr = errDeadLink
			case to == StateReconnecting && peerClosed(err) && uptime < c.cfg.KickWindow && c.cfg.KickLimit > 0:
				c.suspectKick = true
			}
		}
		if to == StateClosed && c.fatal != nil {
			reportErr = c.fatal
		}
	}
	c.mu.Unlock()
	if reportErr != nil {
		c.log.Info("device: state change", "from", from.String(), "to", to.String(), "err", reportErr)
	} else {
		c.log.Debug("device: state change", "from", from.String(), "to", to.String())
	}
	if f := c.cfg.OnStateChange; f != nil {
		f(from, to, reportErr)
	}
}

// peerClosed reports whether err means the hub closed the connection.
func peerClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// failLocked stops the client for good with err.
func (c *Client) failLocked(err error) {
	if c.fatal != nil || c.closing {
		return
	}
	c.fatal = err
	c.closing = true
	c.log.Warn("device: stopping", "err", err)
	go func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = c.mq.Close(ctx)
		c.finish()
	}()
}

// finish releases what Close and failLocked share.
func (c *Client) finish() {
	c.cancel()
	c.mu.Lock()
	if c.renewTimer != nil {
		c.renewTimer.Stop()
		c.renewTimer = nil
	}
	c.mu.Unlock()
	c.doneOnce.Do(func() { close(c.done) })
}

// closedErr returns the error in Err, or ErrClosed.
func (c *Client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fatal != nil {
		return c.fatal
	}
	return ErrClosed
}

// Err returns the error that stopped the client by itself (ErrKicked, a
// *ConnectError after a token renewal did not help, ErrTokenExpired), or
// nil.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fatal
}

// Done is closed when the client has stopped: after Close, or when it
// stopped by itself (see Err).
func (c *Client) Done() <-chan struct{} { return c.done }

// State returns the current connection state.
func (c *Client) State() State { return c.mq.State() }

// Close stops the client: it waits, within ctx, for telemetry in flight to
// be acknowledged, disconnects, and waits for running handlers to return.
// Their contexts are cancelled. Closing twice returns ErrClosed.
func (c *Client) Close(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c.mu.Lock()
	if c.closing {
		fatal := c.fatal
		c.mu.Unlock()
		if fatal != nil {
			// Stopped by itself: Close completes the shutdown quietly.
			<-c.done
			c.waitGoroutines(ctx)
			return nil
		}
		return ErrClosed
	}
	c.closing = true
	c.mu.Unlock()
	err := c.mq.Close(ctx)
	if errors.Is(err, mqtt.ErrClosed) {
		err = nil
	}
	c.finish()
	if werr := c.waitGoroutines(ctx); err == nil {
		err = werr
	}
	return err
}

func (c *Client) waitGoroutines(ctx context.Context) error {
	wait := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(wait)
	}()
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitUp waits within ctx until the client is connected. It returns
// ErrNotConnected when no connection is being made.
func (c *Client) waitUp(ctx context.Context) error {
	for {
		c.mu.Lock()
		switch {
		case c.fatal != nil:
			err := c.fatal
			c.mu.Unlock()
			return err
		case c.closing:
			c.mu.Unlock()
			return ErrClosed
		case c.connected:
			c.mu.Unlock()
			return nil
		}
		up := c.up
		c.mu.Unlock()
		if st := c.mq.State(); st == StateDisconnected {
			return ErrNotConnected
		}
		select {
		case <-up:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
		}
	}
}

// publish0 sends an Action at QoS 0, waiting for a connection when the
// client is reconnecting.
func (c *Client) publish0(ctx context.Context, a iothub.Action) error {
	m := mqtt.Message{Topic: a.Topic, Payload: a.Payload}
	for {
		err := c.mq.Publish(ctx, &m)
		if !errors.Is(err, mqtt.ErrNotConnected) {
			return c.mapErr(err)
		}
		if err := c.waitUp(ctx); err != nil {
			return err
		}
	}
}

// route handles every message from the hub, on the engine's delivery
// goroutine, in arrival order: subscribed or not (queued C2D arrives
// before the SUBSCRIBE of a resumed session).
func (c *Client) route(m *mqtt.Message) {
	r, err := iothub.ParseTopic(m.Topic)
	if err != nil {
		c.log.Warn("device: message on an unknown topic dropped", "err", err)
		return
	}
	switch r.Kind {
	case iothub.RouteC2D, iothub.RouteModuleInput:
		c.deliverC2D(&r, m)
	case iothub.RouteTwinResponse, iothub.RouteTwinDesired:
		c.handleTwin(&r, m.Payload)
	case iothub.RouteMethodRequest:
		c.handleMethod(&r, m.Payload)
	default:
		c.log.Warn("device: unexpected message dropped", "kind", r.Kind.String())
	}
}
