package emulator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/transport"
)

// Default addresses: the ports the official SDKs hard-code.
const (
	DefaultMQTTAddr  = "127.0.0.1:8883"
	DefaultHTTPSAddr = "127.0.0.1:443"
	DefaultHostName  = "localhost"

	// WebSocketPath is where MQTT over WebSocket is served on the HTTPS
	// listener.
	WebSocketPath = "/$iothub/websocket"
)

// Config configures a Hub. The zero value is a hub named localhost on
// 127.0.0.1:8883 and 127.0.0.1:443, in memory.
type Config struct {
	// HostName is the hub's host name, used in connection strings,
	// usernames and token scopes, and named by the server certificate.
	// Empty means "localhost".
	HostName string

	// MQTTAddr is the MQTT-over-TLS listen address. Empty means
	// DefaultMQTTAddr; use "127.0.0.1:0" for a free port. "off" disables
	// the listener.
	MQTTAddr string

	// HTTPSAddr is the HTTPS listen address serving MQTT over WebSocket at
	// WebSocketPath and the service REST API. Empty means
	// DefaultHTTPSAddr; "127.0.0.1:0" picks a free port; "off" disables it.
	HTTPSAddr string

	// DataDir keeps the hub's durable state (registry, policies, twins,
	// C2D queues, feedback, sessions, telemetry, certificates). Empty means
	// in memory: everything is lost on Close.
	DataDir string

	// CertNames are extra DNS names or IP addresses the generated server
	// certificate is valid for, besides HostName, localhost, 127.0.0.1 and
	// ::1.
	CertNames []string

	// CertFile and KeyFile, when set, are the server certificate chain and
	// key (PEM) to use instead of generated ones; CAFile is then the CA
	// published by CAPEM and CertPool (empty: the chain's last
	// certificate).
	CertFile, KeyFile, CAFile string

	// OwnerKey, when set, is the primary key given to the iothubowner
	// policy when it is first created (a fixed service connection string
	// for CI). Empty means a random key.
	OwnerKey string

	// TelemetryRetention bounds how long telemetry is kept. Zero means 24
	// hours (IoT Hub's default); negative means no age limit.
	TelemetryRetention time.Duration
	// TelemetryMaxBytes bounds the telemetry kept, oldest dropped first.
	// Zero means 1 GiB on disk, 128 MiB in memory; negative means no cap.
	TelemetryMaxBytes int64

	// Logger receives structured logs: each connection's id, identity and
	// the reason of every refusal and close. Secrets are never logged.
	// Nil means no logs.
	Logger *slog.Logger

	// Now returns the current time; nil means time.Now. Tests use it to
	// move token expiry and TTLs.
	Now func() time.Time

	// C2DDefaultTTL is the time to live of C2D messages sent without one.
	// Zero means DefaultC2DTTL (1 h); at most MaxC2DTTL.
	C2DDefaultTTL time.Duration
	// C2DMaxDeliveryCount is how often a C2D message is delivered without
	// being acknowledged before it is dead-lettered (1–100). Zero means
	// DefaultMaxDeliveries (10).
	C2DMaxDeliveryCount int

	// TwinOpsPerSecond, when positive, throttles device twin GETs and
	// reported PATCHes hub-wide to this rate (bursts of the same size);
	// throttled requests get res/429, as IoT Hub answers over its quota.
	// Zero means no throttling.
	TwinOpsPerSecond int

	// SASSkew is the clock skew allowed past a SAS token's expiry (se).
	// Zero means 5 minutes, as IoT Hub allows (contract §2); negative
	// means none, for tests of expiry.
	SASSkew time.Duration

	// HandshakeTimeout bounds the TLS handshake plus the CONNECT packet of
	// a new connection. Zero means 10 s.
	HandshakeTimeout time.Duration
}

// Hub is a running IoT Hub emulator. Its methods are safe for concurrent
// use by multiple goroutines.
type Hub struct {
	cfg   Config
	log   *slog.Logger
	store *store
	certs *certs

	reg       *registry
	twins     *twinStore
	c2d       *c2dStore
	telemetry *telemetry
	methods   *iothub.MethodTable
	events    eventHub
	twinLimit *twinLimiter

	mu       sync.Mutex
	live     map[string]*session        // identity key → its one live connection
	conns    map[*session]struct{}      // every connection past CONNECT
	persist  map[string]*sessionRecord  // identity key → persistent session state
	state    map[string]connectionState // identity key → last state change
	changed  chan struct{}              // closed and replaced on every live change
	failTwin map[string]failSpec        // identity key → injected twin failures
	closed   bool
	nextConn atomic.Uint64

	mqttLn  *transport.Listener
	httpLn  net.Listener
	httpSrv *http.Server
	tlsConf *tls.Config
	wg      sync.WaitGroup
	stop    chan struct{}
}

type connectionState struct {
	since, lastActivity time.Time
}

// Start starts a hub: it opens (or creates) the state in cfg.DataDir,
// makes or loads the TLS certificates, and listens on the MQTT and HTTPS
// addresses. ctx bounds the start only. When a port cannot be bound the
// error says which and how to choose another.
func Start(ctx context.Context, cfg Config) (*Hub, error) {
	if cfg.HostName == "" {
		cfg.HostName = DefaultHostName
	}
	if cfg.MQTTAddr == "" {
		cfg.MQTTAddr = DefaultMQTTAddr
	}
	if cfg.HTTPSAddr == "" {
		cfg.HTTPSAddr = DefaultHTTPSAddr
	}
	if cfg.TelemetryRetention == 0 {
		cfg.TelemetryRetention = 24 * time.Hour
	}
	switch {
	case cfg.SASSkew == 0:
		cfg.SASSkew = sasSkew
	case cfg.SASSkew < 0:
		cfg.SASSkew = 0
	case cfg.SASSkew > sasSkew:
		cfg.SASSkew = sasSkew // sas.Verify allows no more
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.C2DDefaultTTL <= 0 || cfg.C2DDefaultTTL > MaxC2DTTL {
		cfg.C2DDefaultTTL = DefaultC2DTTL
	}
	if cfg.C2DMaxDeliveryCount <= 0 || cfg.C2DMaxDeliveryCount > 100 {
		cfg.C2DMaxDeliveryCount = DefaultMaxDeliveries
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(discardHandler{})
	}
	h := &Hub{
		cfg:      cfg,
		log:      log,
		reg:      newRegistry(),
		twins:    newTwinStore(),
		live:     map[string]*session{},
		conns:    map[*session]struct{}{},
		persist:  map[string]*sessionRecord{},
		state:    map[string]connectionState{},
		failTwin: map[string]failSpec{},
		changed:  make(chan struct{}),
		stop:     make(chan struct{}),
	}
	h.methods = iothub.NewMethodTable(nil)
	if cfg.TwinOpsPerSecond > 0 {
		r := float64(cfg.TwinOpsPerSecond)
		h.twinLimit = &twinLimiter{rate: r, tokens: r}
	}
	h.c2d = newC2DStore(h)
	ok := false
	defer func() {
		if !ok {
			h.Close()
		}
	}()
	if cfg.DataDir != "" {
		s, err := openStore(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		h.store = s
	}
	if err := h.reg.load(h.store); err != nil {
		return nil, err
	}
	if err := h.twins.load(h.store); err != nil {
		return nil, err
	}
	if err := h.c2d.load(h.store); err != nil {
		return nil, err
	}
	if err := loadJSON(h.store, bucketSessions, func(k []byte, v *sessionRecord) error {
		h.persist[string(k)] = v
		return nil
	}); err != nil {
		return nil, err
	}
	if err := h.ensurePolicies(); err != nil {
		return nil, err
	}
	tel, err := openTelemetry(h)
	if err != nil {
		return nil, err
	}
	h.telemetry = tel

	names := []string{cfg.HostName, "localhost", "127.0.0.1", "::1"}
	for _, n := range cfg.CertNames {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	names = slices.Compact(names)
	if h.certs, err = loadOrMakeCerts(&h.cfg, dedupe(names)); err != nil {
		return nil, err
	}
	if h.certs.caPath != "" {
		log.Info("emulator CA", "path", h.certs.caPath)
	}
	h.tlsConf = &tls.Config{
		Certificates: []tls.Certificate{h.certs.server},
		MinVersion:   tls.VersionTLS12,
		ClientAuth:   tls.RequestClientCert, // requested, never required (§9)
	}
	if err := h.listen(ctx); err != nil {
		return nil, err
	}
	h.wg.Add(1)
	go h.housekeeping()
	ok = true
	log.Info("emulator started", "host", cfg.HostName, "mqtt", addrString(h.MQTTAddr()),
		"https", addrString(h.HTTPSAddr()), "dataDir", cfg.DataDir)
	return h, nil
}

func dedupe(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

// listen opens the MQTT and HTTPS listeners.
func (h *Hub) listen(ctx context.Context) error {
	if h.cfg.MQTTAddr != "off" {
		ln, err := transport.Listen(ctx, "tls://"+h.cfg.MQTTAddr, transport.ListenConfig{
			TLS:              h.tlsConf,
			HandshakeTimeout: h.cfg.HandshakeTimeout,
			OnHandshakeError: func(err error) { h.log.Debug("TLS handshake failed", "transport", "mqtts", "err", err) },
		})
		if err != nil {
			return bindError("MQTT", "MQTTAddr", "--mqtt-addr", h.cfg.MQTTAddr, err)
		}
		h.mqttLn = ln
		h.wg.Add(1)
		go h.acceptMQTT()
	}
	if h.cfg.HTTPSAddr != "off" {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", h.cfg.HTTPSAddr)
		if err != nil {
			return bindError("HTTPS (WebSocket and REST)", "HTTPSAddr", "--https-addr", h.cfg.HTTPSAddr, err)
		}
		h.httpLn = ln
		conf := h.tlsConf.Clone()
		conf.NextProtos = []string{"http/1.1"} // WebSocket upgrades need HTTP/1.1
		ws := &transport.WSHandler{
			Path: WebSocketPath,
			OnConn: func(c net.Conn) {
				if !h.track() {
					c.Close()
					return
				}
				// Serve on a fresh goroutine and return, so the HTTP
				// server's request, response and buffers of the upgrade
				// are not kept alive for the connection's lifetime.
				go func() {
					defer h.wg.Done()
					h.serveConn(c, "wss")
				}()
			},
			OnHandshakeError: func(err error) { h.log.Debug("WebSocket upgrade refused", "err", err) },
			HandshakeTimeout: h.cfg.HandshakeTimeout,
		}
		service := h.serviceHandler()
		h.httpSrv = &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == WebSocketPath {
					ws.ServeHTTP(w, r)
					return
				}
				service.ServeHTTP(w, r)
			}),
			ReadHeaderTimeout: h.cfg.HandshakeTimeout,
			ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
		}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			err := h.httpSrv.Serve(tls.NewListener(ln, conf))
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				h.log.Error("HTTPS server stopped", "err", err)
			}
		}()
	}
	return nil
}

// bindError explains a failure to listen and how to pick another address.
func bindError(what, field, flag, addr string, err error) error {
	hint := "set Config." + field + " (" + flag + ") to another address, e.g. 127.0.0.1:0 for a free port"
	switch {
	case errors.Is(err, syscall.EACCES):
		hint = "ports below 1024 need root or CAP_NET_BIND_SERVICE; " + hint
	case errors.Is(err, syscall.EADDRINUSE):
		hint = "the port is taken by another process; " + hint
	}
	return fmt.Errorf("emulator: cannot listen for %s on %s: %w (%s)", what, addr, err, hint)
}

func (h *Hub) acceptMQTT() {
	defer h.wg.Done()
	for {
		c, err := h.mqttLn.Accept()
		if err != nil {
			return
		}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.serveConn(c, "mqtts")
		}()
	}
}

// track counts one more goroutine that Close waits for, or reports false
// when the hub is closing. Adding under h.mu before closed is set orders
// every Add before Close's Wait.
func (h *Hub) track() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

// Close stops the listeners, closes every device connection and the
// store. It is idempotent.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.stop)
	conns := make([]*session, 0, len(h.conns))
	for s := range h.conns {
		conns = append(conns, s)
	}
	h.mu.Unlock()
	if h.mqttLn != nil {
		h.mqttLn.Close()
	}
	if h.httpSrv != nil {
		h.httpSrv.Close()
	}
	for _, s := range conns {
		s.close("hub closed", false)
	}
	h.wg.Wait()
	h.methods = nil
	if h.telemetry != nil {
		h.telemetry.close()
	}
	h.events.closeAll()
	return h.store.close()
}

// MQTTAddr returns the bound MQTT-over-TLS address, or nil when disabled.
func (h *Hub) MQTTAddr() net.Addr {
	if h.mqttLn == nil {
		return nil
	}
	return h.mqttLn.Addr()
}

// HTTPSAddr returns the bound HTTPS address (WebSocket and REST), or nil
// when disabled.
func (h *Hub) HTTPSAddr() net.Addr {
	if h.httpLn == nil {
		return nil
	}
	return h.httpLn.Addr()
}

// MQTTURL returns tls://{addr} for the MQTT listener ("" when disabled).
func (h *Hub) MQTTURL() string {
	if a := h.MQTTAddr(); a != nil {
		return "tls://" + a.String()
	}
	return ""
}

// WebSocketURL returns wss://{addr}/$iothub/websocket ("" when disabled).
func (h *Hub) WebSocketURL() string {
	if a := h.HTTPSAddr(); a != nil {
		return "wss://" + a.String() + WebSocketPath
	}
	return ""
}

// HostName returns the hub's host name.
func (h *Hub) HostName() string { return h.cfg.HostName }

// CAPEM returns the CA certificate (PEM) that signs the server
// certificate; clients trust it (NODE_EXTRA_CA_CERTS, ca_certs, …).
func (h *Hub) CAPEM() []byte { return slices.Clone(h.certs.caPEM) }

// CAFile returns the path of the CA's PEM file in the data directory, or
// "" in memory.
func (h *Hub) CAFile() string { return h.certs.caPath }

// CertPool returns a pool holding the CA, for a Go client's
// tls.Config.RootCAs.
func (h *Hub) CertPool() *x509.CertPool { return h.certs.pool.Clone() }

// TLSConfig returns a client tls.Config trusting the hub's CA with
// ServerName set to the host name.
func (h *Hub) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: h.CertPool(), ServerName: h.cfg.HostName, MinVersion: tls.VersionTLS12}
}

func (h *Hub) now() time.Time {
	if h.cfg.Now != nil {
		return h.cfg.Now()
	}
	return time.Now()
}

// housekeeping expires C2D messages once a second (the telemetry log
// applies its own retention).
func (h *Hub) housekeeping() {
	defer h.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.c2d.expire()
		}
	}
}

// identityKey is "deviceId" or "deviceId/moduleId".
func identityKey(deviceID, moduleID string) string {
	if moduleID == "" {
		return deviceID
	}
	return deviceID + "/" + moduleID
}

func splitKey(key string) (deviceID, moduleID string) {
	d, m, _ := strings.Cut(key, "/")
	return d, m
}

// connState returns an identity's live connection state.
func (h *Hub) connState(key string) (state string, since, lastActivity time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.state[key]
	if s := h.live[key]; s != nil {
		return Connected, st.since, s.lastActivity()
	}
	return Disconnected, st.since, st.lastActivity
}

// closeIdentity closes the live connection of an identity, if any.
func (h *Hub) closeIdentity(deviceID, moduleID, reason string) {
	h.mu.Lock()
	s := h.live[identityKey(deviceID, moduleID)]
	h.mu.Unlock()
	if s != nil {
		s.close(reason, false)
	}
}

// failSpec is an injected twin failure: the next n requests answer status.
type failSpec struct{ status, n int }

// FailTwin makes the next n twin requests (GET or reported PATCH) of an
// identity answer $iothub/twin/res/{status} instead of being served, for
// tests of a client's retries (429, 500, …). n 0 clears it.
func (h *Hub) FailTwin(deviceID, moduleID string, status, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n <= 0 {
		delete(h.failTwin, identityKey(deviceID, moduleID))
		return
	}
	h.failTwin[identityKey(deviceID, moduleID)] = failSpec{status: status, n: n}
}

// takeTwinFailure returns the status of an injected failure for key, or 0.
func (h *Hub) takeTwinFailure(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.failTwin[key]
	if !ok {
		return 0
	}
	if f.n--; f.n <= 0 {
		delete(h.failTwin, key)
	} else {
		h.failTwin[key] = f
	}
	return f.status
}

// dropSession forgets the persistent session state of an identity.
func (h *Hub) dropSession(key string) {
	h.mu.Lock()
	delete(h.persist, key)
	h.mu.Unlock()
}

// liveSession returns the live connection of an identity, or nil.
func (h *Hub) liveSession(key string) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.live[key]
}

// waitChange returns a channel closed at the next change of live
// connections or subscriptions.
func (h *Hub) waitChange() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// notifyLocked wakes waitChange callers; h.mu must be held.
func (h *Hub) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// notify is notifyLocked taking the lock.
func (h *Hub) notify() {
	h.mu.Lock()
	h.notifyLocked()
	h.mu.Unlock()
}

// discardHandler is a slog.Handler that drops everything (slog.DiscardHandler
// is newer than the module's go directive).
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }
