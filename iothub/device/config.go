package device

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/sas"
)

// Transports a Client can use (Config.Transport).
const (
	// TransportMQTT is MQTT 3.1.1 over TLS on port 8883.
	TransportMQTT = "mqtt"
	// TransportMQTTWebSocket is MQTT over a WebSocket over TLS on port
	// 443, path /$iothub/websocket: the one that passes most firewalls and
	// HTTP proxies.
	TransportMQTTWebSocket = "mqtt-ws"
)

// WebSocketPath is the path IoT Hub serves MQTT over WebSockets on.
const WebSocketPath = "/$iothub/websocket"

// Defaults applied to zero fields of Config.
const (
	DefaultKeepAlive            = 60 * time.Second
	DefaultTokenTTL             = time.Hour
	DefaultRenewFraction        = 0.8
	DefaultQueueSize            = 256
	DefaultMaxConcurrentMethods = 8
	DefaultMethodTimeout        = iothub.DefaultMethodTimeout
	DefaultTwinTimeout          = iothub.DefaultTwinTimeout
	DefaultKickLimit            = 3
	DefaultKickWindow           = 2 * time.Minute
)

// maxKeepAlive is the largest keep-alive that IoT Hub's 1767 s idle cap
// honours (1.5 × 1177 s, contract §1).
const maxKeepAlive = 1177 * time.Second

// Config configures a Client. It is a plain struct: zero fields take the
// documented defaults. New copies it; changing it afterwards has no effect.
//
// The identity comes from ConnectionString or from the parts (HostName,
// DeviceID, ModuleID with SharedAccessKey, TokenSource or a certificate).
// Setting both is an error.
type Config struct {
	// ConnectionString is a device or module connection string:
	// HostName=…;DeviceId=…[;ModuleId=…] with exactly one of
	// SharedAccessKey=…, SharedAccessSignature=… or x509=true, and
	// optionally GatewayHostName=….
	ConnectionString string

	// HostName is the IoT Hub host name (used in the username, in the SAS
	// resource and, unless GatewayHostName or Address is set, dialed).
	HostName string
	// DeviceID is the device identity.
	DeviceID string
	// ModuleID, when set, makes the client a module identity.
	ModuleID string
	// GatewayHostName, when set, is dialed (and verified by TLS) instead
	// of HostName: an IoT Edge gateway.
	GatewayHostName string
	// SharedAccessKey is the identity's base64 key; tokens are minted from
	// it and renewed. SharedAccessKeyName names a policy key instead.
	SharedAccessKey     string
	SharedAccessKeyName string
	// TokenSource supplies SAS tokens (HSM, Edge workload API, a service
	// minting tokens). It is called on every connection attempt; the
	// client renews by reconnecting before the token expires.
	TokenSource sas.TokenSource
	// Certificate is the client certificate for X.509 authentication
	// (x509=true, or with the parts and no key or token source).
	Certificate *tls.Certificate
	// CertFile and KeyFile are PEM files of the X.509 client certificate
	// and its key, used when Certificate is nil.
	CertFile, KeyFile string

	// Transport is TransportMQTT (the default) or TransportMQTTWebSocket.
	Transport string
	// Address, when set, is the host:port dialed instead of the host and
	// port the transport implies; HostName still goes in the username, the
	// SAS resource and (unless TLS.ServerName is set) the TLS server name.
	Address string
	// TLS is the base TLS configuration (cloned); nil means the system
	// roots. The client sets ServerName and adds the client certificate.
	TLS *tls.Config
	// RootCAs, when set, replaces the roots of TLS (a test CA, say).
	RootCAs *x509.CertPool
	// Proxy picks the proxy for a connection: HTTP CONNECT (http, https,
	// with user:password@ for Basic auth) or SOCKS5 (socks5, socks5h).
	// Nil means the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY; see
	// transport.ProxyFromEnvironment) unless NoProxy is set.
	Proxy func(target *url.URL) (*url.URL, error)
	// NoProxy ignores the proxy environment variables.
	NoProxy bool

	// ModelID is the IoT Plug and Play model id (a DTMI) announced in the
	// username.
	ModelID string
	// ClientType is the DeviceClientType product string announced in the
	// username. Empty means "hubwire".
	ClientType string
	// APIVersion overrides iothub.DefaultAPIVersion.
	APIVersion string

	// KeepAlive is the MQTT keep-alive. Zero means DefaultKeepAlive; it is
	// capped at 1177 s, the most IoT Hub's idle timeout honours.
	KeepAlive time.Duration
	// PingTimeout is how long to wait for the PINGRESP after a PINGREQ
	// before the connection is declared dead (the engine pings after three
	// quarters of a keep-alive without data sent or received). Zero means
	// the engine's default.
	PingTimeout time.Duration
	// ConnectTimeout bounds one connection attempt. Zero means
	// mqtt.DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the reconnect backoff
	// (exponential with full jitter). Zero means the engine's defaults.
	ReconnectMin, ReconnectMax time.Duration

	// TokenTTL is the life of the tokens minted from SharedAccessKey.
	// Zero means DefaultTokenTTL; values under 2 s are raised to 2 s (a
	// token's expiry is in whole seconds).
	TokenTTL time.Duration
	// RenewFraction is the share of a token's life after which the client
	// renews it with a planned reconnect (jittered a little earlier, so a
	// fleet does not renew in step). Zero means DefaultRenewFraction.
	RenewFraction float64
	// Clock schedules renewals and twin deadlines; nil means the system
	// clock. Tests inject an iothub.ManualClock.
	Clock iothub.Clock

	// QueueSize bounds the telemetry accepted but not yet acknowledged by
	// the hub, kept across reconnects. Send waits (within its context)
	// while it is full. Zero means DefaultQueueSize.
	QueueSize int
	// Store keeps accepted, unacknowledged telemetry. Nil means memory;
	// use OpenFileStore for telemetry that survives a process restart.
	Store mqtt.Store

	// OnC2D handles cloud-to-device messages (and, for a module, messages
	// routed to its inputs). It must be set before Connect: IoT Hub
	// delivers queued messages right after CONNACK. Messages arrive one
	// at a time, in order; each is acknowledged when OnC2D returns. Nil
	// means the client does not subscribe to C2D.
	OnC2D func(ctx context.Context, m *C2DMessage)
	// OnDesired receives desired-property updates in $version order, on
	// a goroutine of their own (it may call the client). See DesiredUpdate.
	OnDesired func(u DesiredUpdate)
	// Methods maps direct-method names to handlers. More can be added with
	// Client.HandleMethod.
	Methods map[string]MethodHandler
	// DefaultMethod, when set, answers methods with no handler of their
	// own (otherwise they are answered 501).
	DefaultMethod MethodHandler
	// MaxConcurrentMethods bounds the method handlers running at once.
	// Zero means DefaultMaxConcurrentMethods.
	MaxConcurrentMethods int
	// MethodTimeout is the deadline given to a method handler's context
	// (IoT Hub does not tell the device the caller's timeout). Zero means
	// DefaultMethodTimeout.
	MethodTimeout time.Duration
	// TwinTimeout bounds each twin request. Zero means DefaultTwinTimeout.
	TwinTimeout time.Duration

	// KickLimit is how many times the hub may close a fresh connection
	// (one that lived less than KickWindow) within KickWindow before the
	// client stops with ErrKicked. Zero means DefaultKickLimit; negative
	// never stops.
	KickLimit int
	// KickWindow: see KickLimit. Zero means DefaultKickWindow.
	KickWindow time.Duration

	// OnStateChange, when set, is called on every connection state change
	// with its cause, one call at a time. It must not block.
	OnStateChange func(from, to State, err error)
	// Logger receives connection events. Nil means silent. Secrets are
	// never logged.
	Logger *slog.Logger
}

// identity is what a Config resolves to.
type identity struct {
	host     string // HostName
	gateway  string // GatewayHostName
	deviceID string
	moduleID string
	keyName  string
	key      []byte // decoded SharedAccessKey, nil if none
	static   *sas.Token
	x509     bool
}

// resolve validates cfg's identity fields.
func (cfg *Config) resolve() (identity, error) {
	var id identity
	parts := cfg.HostName != "" || cfg.DeviceID != "" || cfg.ModuleID != "" || cfg.SharedAccessKey != "" || cfg.GatewayHostName != ""
	if cfg.ConnectionString != "" {
		if parts {
			return id, configErr("set ConnectionString or HostName/DeviceID/…, not both", nil)
		}
		cs, err := sas.ParseConnectionString(cfg.ConnectionString)
		if err != nil {
			return id, configErr("connection string", err)
		}
		if cs.DeviceID == "" {
			return id, configErr("connection string has no DeviceId (a hub-level string cannot connect a device)", nil)
		}
		id = identity{host: cs.HostName, gateway: cs.GatewayHostName, deviceID: cs.DeviceID, moduleID: cs.ModuleID, keyName: cs.SharedAccessKeyName, x509: cs.X509}
		switch {
		case cs.SharedAccessKey() != "":
			k, err := cs.Key()
			if err != nil {
				return id, configErr("connection string", err)
			}
			id.key = k
		case cs.SharedAccessSignature() != "":
			tok, err := sas.ParseToken(cs.SharedAccessSignature())
			if err != nil {
				return id, configErr("connection string", err)
			}
			id.static = &tok
		}
		if cfg.TokenSource != nil && id.x509 {
			return id, configErr("x509=true with a TokenSource", nil)
		}
	} else {
		if !parts && cfg.TokenSource == nil {
			return id, configErr("no identity: set ConnectionString, or HostName and DeviceID", nil)
		}
		id = identity{host: cfg.HostName, gateway: cfg.GatewayHostName, deviceID: cfg.DeviceID, moduleID: cfg.ModuleID, keyName: cfg.SharedAccessKeyName}
		n := 0
		if cfg.SharedAccessKey != "" {
			k, err := sas.DecodeKey(cfg.SharedAccessKey)
			if err != nil {
				return id, configErr("SharedAccessKey", err)
			}
			id.key = k
			n++
		}
		if cfg.TokenSource != nil {
			n++
		}
		if n > 1 {
			return id, configErr("set SharedAccessKey or TokenSource, not both", nil)
		}
		if n == 0 {
			if cfg.Certificate == nil && cfg.CertFile == "" {
				return id, configErr("no credentials: set SharedAccessKey, TokenSource or a certificate", nil)
			}
			id.x509 = true
		}
		if id.keyName != "" && id.key == nil {
			return id, configErr("SharedAccessKeyName needs SharedAccessKey", nil)
		}
	}
	switch {
	case id.host == "":
		return id, configErr("HostName is empty", nil)
	case strings.ContainsAny(id.host, "/ "):
		return id, configErr("HostName must be a host name", nil)
	case !iothub.ValidID(id.deviceID):
		return id, configErr("DeviceId is not a valid IoT Hub id", nil)
	case id.moduleID != "" && !iothub.ValidID(id.moduleID):
		return id, configErr("ModuleId is not a valid IoT Hub id", nil)
	case strings.ContainsAny(id.deviceID+id.moduleID, "+#/"):
		return id, configErr("ids with '+', '#' or '/' cannot be subscribed to over MQTT", nil)
	}
	if id.x509 && cfg.Certificate == nil && (cfg.CertFile == "" || cfg.KeyFile == "") {
		return id, configErr("x509=true needs Certificate or CertFile and KeyFile", nil)
	}
	return id, nil
}

// dialTarget returns the URL to dial for cfg and id.
func (cfg *Config) dialTarget(id *identity) (rawURL, serverName string, err error) {
	host := id.host
	if id.gateway != "" {
		host = id.gateway
	}
	serverName = host
	if h, _, err := net.SplitHostPort(host); err == nil {
		serverName = h
	}
	addr := cfg.Address
	switch cfg.Transport {
	case "", TransportMQTT:
		if addr == "" {
			addr = withPort(host, "8883")
		}
		return "tls://" + addr, serverName, nil
	case TransportMQTTWebSocket:
		if addr == "" {
			addr = withPort(host, "443")
		}
		return "wss://" + addr, serverName, nil
	}
	return "", "", configErr("unknown Transport "+cfg.Transport+` (want "mqtt" or "mqtt-ws")`, nil)
}

// withPort adds port to host unless it has one.
func withPort(host, port string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(host, port)
}

// normalize fills the defaults of the fields New reads directly.
func (cfg *Config) normalize() {
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.KeepAlive > maxKeepAlive {
		cfg.KeepAlive = maxKeepAlive
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	cfg.TokenTTL = max(cfg.TokenTTL, 2*time.Second)
	if !(cfg.RenewFraction > 0 && cfg.RenewFraction <= 1) {
		cfg.RenewFraction = DefaultRenewFraction
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.QueueSize > 65535 {
		cfg.QueueSize = 65535
	}
	if cfg.MaxConcurrentMethods <= 0 {
		cfg.MaxConcurrentMethods = DefaultMaxConcurrentMethods
	}
	if cfg.MethodTimeout <= 0 {
		cfg.MethodTimeout = DefaultMethodTimeout
	}
	if cfg.TwinTimeout <= 0 {
		cfg.TwinTimeout = DefaultTwinTimeout
	}
	if cfg.KickLimit == 0 {
		cfg.KickLimit = DefaultKickLimit
	}
	if cfg.KickWindow <= 0 {
		cfg.KickWindow = DefaultKickWindow
	}
	if cfg.ClientType == "" {
		cfg.ClientType = "hubwire"
	}
	if cfg.Clock == nil {
		cfg.Clock = iothub.SystemClock
	}
}
