package device

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/sas"
)

const goodKey = "AAECAwQFBgcICQoLDA0ODw=="

func TestNewConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		also error
	}{
		{"empty", Config{}, nil},
		{"garbage", Config{ConnectionString: "not a connection string"}, sas.ErrMalformed},
		{"unknown-key", Config{ConnectionString: "HostName=h;DeviceId=d;SharedAccessKey=" + goodKey + ";Color=red"}, sas.ErrUnknownKey},
		{"no-credentials", Config{ConnectionString: "HostName=h;DeviceId=d"}, sas.ErrNoCredentials},
		{"two-credentials", Config{ConnectionString: "HostName=h;DeviceId=d;SharedAccessKey=" + goodKey + ";x509=true"}, sas.ErrConflictingCredentials},
		{"not-base64", Config{ConnectionString: "HostName=h;DeviceId=d;SharedAccessKey=%%%"}, sas.ErrMalformed},
		{"hub-level", Config{ConnectionString: "HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=" + goodKey}, nil},
		{"bad-device-id", Config{ConnectionString: "HostName=h;DeviceId=a b;SharedAccessKey=" + goodKey}, nil},
		{"wildcard-id", Config{ConnectionString: "HostName=h;DeviceId=a+b;SharedAccessKey=" + goodKey}, nil},
		{"both-forms", Config{ConnectionString: "HostName=h;DeviceId=d;SharedAccessKey=" + goodKey, HostName: "h"}, nil},
		{"parts-no-host", Config{DeviceID: "d", SharedAccessKey: goodKey}, nil},
		{"parts-bad-key", Config{HostName: "h", DeviceID: "d", SharedAccessKey: "!"}, sas.ErrInvalidKey},
		{"parts-no-credentials", Config{HostName: "h", DeviceID: "d"}, nil},
		{"parts-key-and-source", Config{HostName: "h", DeviceID: "d", SharedAccessKey: goodKey, TokenSource: sas.TokenSourceFunc(nil)}, nil},
		{"x509-no-cert", Config{ConnectionString: "HostName=h;DeviceId=d;x509=true"}, nil},
		{"x509-missing-files", Config{ConnectionString: "HostName=h;DeviceId=d;x509=true", CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"}, nil},
		{"bad-transport", Config{ConnectionString: "HostName=h;DeviceId=d;SharedAccessKey=" + goodKey, Transport: "amqp"}, nil},
		{"host-with-path", Config{HostName: "h/x", DeviceID: "d", SharedAccessKey: goodKey}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if err == nil {
				c.Close(context.Background())
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Fatalf("err = %v, want it to match %v too", err, tc.also)
			}
			if strings.Contains(err.Error(), goodKey) {
				t.Fatalf("error %q shows the key", err)
			}
		})
	}
}

func TestNewConfigForms(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		url      string
		username string
		clientID string
	}{
		{
			name:     "device",
			cfg:      Config{ConnectionString: "HostName=hub.example;DeviceId=dev1;SharedAccessKey=" + goodKey},
			url:      "tls://hub.example:8883",
			username: "hub.example/dev1/?api-version=" + iothub.DefaultAPIVersion + "&DeviceClientType=hubwire",
			clientID: "dev1",
		},
		{
			name:     "module-ws-model",
			cfg:      Config{ConnectionString: "HostName=hub.example;DeviceId=dev1;ModuleId=m1;SharedAccessKey=" + goodKey, Transport: TransportMQTTWebSocket, ModelID: "dtmi:a:b;1"},
			url:      "wss://hub.example:443",
			username: "hub.example/dev1/m1/?api-version=" + iothub.DefaultAPIVersion + "&DeviceClientType=hubwire&model-id=dtmi%3Aa%3Ab%3B1",
			clientID: "dev1/m1",
		},
		{
			name:     "gateway",
			cfg:      Config{ConnectionString: "HostName=hub.example;DeviceId=dev1;SharedAccessKey=" + goodKey + ";GatewayHostName=edge.local"},
			url:      "tls://edge.local:8883",
			username: "hub.example/dev1/?api-version=" + iothub.DefaultAPIVersion + "&DeviceClientType=hubwire",
			clientID: "dev1",
		},
		{
			name:     "parts-token-source",
			cfg:      Config{HostName: "hub.example", DeviceID: "dev1", TokenSource: sas.TokenSourceFunc(func(context.Context) (sas.Token, error) { return sas.Token{}, nil }), Address: "127.0.0.1:1"},
			url:      "tls://127.0.0.1:1",
			username: "hub.example/dev1/?api-version=" + iothub.DefaultAPIVersion + "&DeviceClientType=hubwire",
			clientID: "dev1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			id, err := cfg.resolve()
			if err != nil {
				t.Fatal(err)
			}
			cfg.normalize()
			url, _, err := cfg.dialTarget(&id)
			if err != nil || url != tc.url {
				t.Fatalf("dial target %q, %v; want %q", url, err, tc.url)
			}
			u := iothub.Username{Host: id.host, DeviceID: id.deviceID, ModuleID: id.moduleID, ClientType: cfg.ClientType, ModelID: cfg.ModelID}
			if u.String() != tc.username || u.ClientID() != tc.clientID {
				t.Fatalf("username %q client id %q", u.String(), u.ClientID())
			}
			c, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if c.DeviceID() != "dev1" {
				t.Fatalf("DeviceID %q", c.DeviceID())
			}
			if err := c.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestNilAndOddInput: nothing panics.
func TestNilAndOddInput(t *testing.T) {
	c, err := New(Config{ConnectionString: "HostName=hub.example;DeviceId=dev1;SharedAccessKey=" + goodKey, Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var nilCtx context.Context // documented to mean context.Background
	if err := c.Send(nilCtx, nil); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("Send(nil): %v", err)
	}
	if err := c.Send(ctx, &Message{Payload: make([]byte, MaxMessageSize+1)}); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("oversized Send: %v", err)
	}
	if err := c.Send(ctx, &Message{QoS0: true}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("QoS 0 before Connect: %v", err)
	}
	if _, err := c.ReportProperties(ctx, nil); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("nil patch: %v", err)
	}
	if _, err := c.ReportProperties(ctx, func() {}); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("unmarshalable patch: %v", err)
	}
	if _, err := c.GetTwin(ctx); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("GetTwin before Connect: %v", err)
	}
	c.HandleMethod("", nil)
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := c.Connect(cctx); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Connect to a closed port: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Connect after Close: %v", err)
	}
}

func TestRenewPoint(t *testing.T) {
	issued := time.Unix(1_000_000, 0)
	for range 1000 {
		at := renewPoint(issued, issued.Add(time.Hour), 0.8)
		d := at.Sub(issued)
		if d > 48*time.Minute || d < 45*time.Minute {
			t.Fatalf("renewal after %v, want within [45m, 48m]", d)
		}
	}
	if at := renewPoint(issued, issued.Add(-time.Second), 0.8); !at.Equal(issued) {
		t.Fatalf("expired token renews at %v", at)
	}
}

// TestTokensRenewal: minted tokens are cached until their renewal point,
// then replaced; renew forces a new one; a connection string's token is
// never renewed and fails typed once expired.
func TestTokensRenewal(t *testing.T) {
	clk := iothub.NewManualClock(time.Unix(1_700_000_000, 0))
	cfg := Config{Clock: clk, TokenTTL: time.Hour}
	cfg.normalize()
	tk := newTokens(&cfg, &identity{host: "h", deviceID: "d", key: []byte("k")})
	ctx := context.Background()
	first, err := tk.token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(time.Hour); !first.Expiry.Equal(want) {
		t.Fatalf("expiry %v, want %v", first.Expiry, want)
	}
	at, ok := tk.renewal()
	if !ok || at.Sub(clk.Now()) > 48*time.Minute || at.Sub(clk.Now()) < 45*time.Minute {
		t.Fatalf("renewal at %v (%v)", at, ok)
	}
	clk.Advance(40 * time.Minute)
	if again, _ := tk.token(ctx); again != first {
		t.Fatal("token replaced before its renewal point")
	}
	clk.Advance(9 * time.Minute)
	second, _ := tk.token(ctx)
	if second == first || !second.Expiry.Equal(clk.Now().Add(time.Hour)) {
		t.Fatalf("token not renewed after 49 minutes: %v", second.Expiry)
	}
	tk.renew()
	clk.Advance(time.Second)
	if third, _ := tk.token(ctx); third == second {
		t.Fatal("renew did not force a new token")
	}

	tok := sas.NewToken("h/devices/d", []byte("k"), "", clk.Now().Add(time.Minute))
	st := newTokens(&cfg, &identity{host: "h", deviceID: "d", static: &tok})
	if got, err := st.token(ctx); err != nil || got != tok {
		t.Fatalf("static token: %v", err)
	}
	if _, ok := st.renewal(); ok {
		t.Fatal("a connection string's token is scheduled for renewal")
	}
	clk.Advance(2 * time.Minute)
	if _, err := st.token(ctx); !errors.Is(err, ErrTokenExpired) || !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("expired static token: %v", err)
	}
}

// TestRenewalScheduledOnClock: with a manual clock, the client reconnects
// with a new token exactly when the renewal point is reached, not before.
func TestRenewalScheduledOnClock(t *testing.T) {
	h := newTestHub(t)
	cs := h.addDevice("dev1")
	clk := iothub.NewManualClock(time.Now())
	cfg := h.config(cs, TransportMQTT)
	cfg.Clock = clk
	cfg.ReconnectMax = 100 * time.Millisecond
	c := mustClient(t, cfg)
	ctx := testCtx(t, 10*time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "renewal timer", func() bool { return clk.Pending() > 0 })
	clk.Advance(44 * time.Minute)
	time.Sleep(100 * time.Millisecond)
	if n := h.connectCount(); n != 1 {
		t.Fatalf("%d connects before the renewal point", n)
	}
	clk.Advance(5 * time.Minute)
	waitFor(t, 5*time.Second, "renewing reconnect", func() bool { return h.connectCount() == 2 && c.State() == StateConnected })
	if err := c.Send(ctx, &Message{Payload: []byte("after renewal")}); err != nil {
		t.Fatal(err)
	}
}

// TestTokensSourceWithoutRenewal: a TokenSource that returns the same
// token when asked again is not renewed again and again.
func TestTokensSourceWithoutRenewal(t *testing.T) {
	clk := iothub.NewManualClock(time.Unix(1_700_000_000, 0))
	tok := sas.NewToken("h/devices/d", []byte("k"), "", clk.Now().Add(10*time.Minute))
	calls := 0
	cfg := Config{Clock: clk, TokenSource: sas.TokenSourceFunc(func(context.Context) (sas.Token, error) { calls++; return tok, nil })}
	cfg.normalize()
	tk := newTokens(&cfg, &identity{host: "h", deviceID: "d"})
	ctx := context.Background()
	if _, err := tk.token(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := tk.renewal(); !ok {
		t.Fatal("no renewal scheduled for a fresh token")
	}
	clk.Advance(8 * time.Minute)
	tk.renew()
	if _, err := tk.token(ctx); err != nil {
		t.Fatal(err)
	}
	if at, ok := tk.renewal(); ok {
		t.Fatalf("renewal scheduled at %v for a token the source cannot renew", at)
	}
	if calls != 2 {
		t.Fatalf("%d calls", calls)
	}
}
