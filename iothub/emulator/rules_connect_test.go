package emulator_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/testcert"
	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/emulator/emulatortest"
	"github.com/hubwire/hubwire/packet"
	"github.com/hubwire/hubwire/sas"
)

// connackOf sends CONNECT with the given username and password on a raw
// connection and returns the CONNACK code, checking that a refusal closes
// the connection.
func connackOf(t *testing.T, h *emulator.Hub, tr, clientID, user, password string) packet.ConnackCode {
	t.Helper()
	c := dialRaw(t, h, tr)
	c.send(&packet.Connect{ClientID: []byte(clientID), CleanSession: true, KeepAlive: 60,
		UsernameFlag: true, Username: []byte(user), PasswordFlag: password != "", Password: []byte(password)})
	p, err := c.read()
	if err != nil {
		t.Fatalf("no CONNACK: %v", err)
	}
	ack, ok := p.(*packet.Connack)
	if !ok {
		t.Fatalf("got %T, want CONNACK", p)
	}
	if ack.ReturnCode != 0 {
		if rest := c.expectClosed(); len(rest) > 0 {
			t.Fatalf("packets after a refused CONNACK: %v", rest)
		}
	}
	return ack.ReturnCode
}

// signRaw builds a token over sr exactly as given.
func signRaw(key, sr string, se int64, skn string) string {
	k, _ := base64.StdEncoding.DecodeString(key)
	m := hmac.New(sha256.New, k)
	m.Write([]byte(sr + "\n" + strconv.FormatInt(se, 10)))
	tok := "SharedAccessSignature sr=" + sr + "&sig=" + url.QueryEscape(base64.StdEncoding.EncodeToString(m.Sum(nil))) +
		"&se=" + strconv.FormatInt(se, 10)
	if skn != "" {
		tok += "&skn=" + skn
	}
	return tok
}

func primaryKey(t *testing.T, h *emulator.Hub, id string) string {
	d, err := h.GetDevice(id)
	if err != nil {
		t.Fatal(err)
	}
	return d.Authentication.SymmetricKey.PrimaryKey
}

func TestRule01OnlyMQTT311OverTLS(t *testing.T) {
	h := newHub(t, "dev1")
	t.Run("plain-tcp-refused", func(t *testing.T) {
		nc, err := net.DialTimeout("tcp", h.MQTTAddr().String(), wait)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		b, _ := (&packet.Connect{ClientID: []byte("dev1"), CleanSession: true}).MarshalBinary()
		nc.Write(b)
		nc.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 64)
		n, _ := nc.Read(buf)
		if n >= 4 && buf[0] == 0x20 {
			t.Fatalf("plain TCP got a CONNACK: % x", buf[:n])
		}
	})
	for _, tr := range transports {
		t.Run(tr+"/level-5-refused", func(t *testing.T) {
			c := dialRaw(t, h, tr)
			b, _ := (&packet.Connect{ClientID: []byte("dev1"), CleanSession: true,
				UsernameFlag: true, Username: []byte(username(h, "dev1", "")),
				PasswordFlag: true, Password: []byte(deviceToken(t, h, "dev1", "", time.Hour))}).MarshalBinary()
			// Fixed header (3 bytes for this size) then 00 04 MQTT, level.
			i := strings.Index(string(b), "MQTT") + 4
			b[i] = 5
			c.sendBytes(b)
			got := c.expectClosed()
			if len(got) != 1 || got[0].(*packet.Connack).ReturnCode != packet.ConnackUnacceptableProtocolVersion {
				t.Fatalf("got %v, want CONNACK 1 then close", got)
			}
		})
		t.Run(tr+"/3.1.1-accepted", func(t *testing.T) {
			if code := connackOf(t, h, tr, "dev1", username(h, "dev1", ""), deviceToken(t, h, "dev1", "", time.Hour)); code != 0 {
				t.Fatalf("CONNACK %d", code)
			}
		})
	}
}

func TestRule02ClientIDMustMatchUsername(t *testing.T) {
	h := newHub(t, "dev1", "dev2")
	emulatortest.Module(t, h, "dev1", "mod1")
	tok := deviceToken(t, h, "dev1", "", time.Hour)
	for _, tr := range transports {
		cases := []struct {
			name, cid, user, pw string
			want                packet.ConnackCode
		}{
			{"match", "dev1", username(h, "dev1", ""), tok, 0},
			{"other-device", "dev2", username(h, "dev1", ""), tok, 5},
			{"case", "DEV1", username(h, "dev1", ""), tok, 5},
			{"module-as-device", "dev1/mod1", username(h, "dev1", ""), tok, 5},
			{"module", "dev1/mod1", username(h, "dev1", "mod1"), deviceToken(t, h, "dev1", "mod1", time.Hour), 0},
			{"device-for-module", "dev1", username(h, "dev1", "mod1"), deviceToken(t, h, "dev1", "mod1", time.Hour), 5},
		}
		for _, c := range cases {
			t.Run(tr+"/"+c.name, func(t *testing.T) {
				if got := connackOf(t, h, tr, c.cid, c.user, c.pw); got != c.want {
					t.Fatalf("CONNACK %d, want %d", got, c.want)
				}
			})
		}
	}
}

func TestRule03BothUsernameForms(t *testing.T) {
	h := newHub(t, "dev1")
	tok := deviceToken(t, h, "dev1", "", time.Hour)
	for _, tr := range transports {
		for name, user := range map[string]string{
			"current":        "localhost/dev1/?api-version=2021-04-12",
			"current-extras": "localhost/dev1/?api-version=2020-09-30&DeviceClientType=azure-iot-device%2F1.0&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1",
			"legacy":         "localhost/dev1/api-version=2016-11-14",
			"unknown-api":    "localhost/dev1/?api-version=1999-01-01",
			"no-api-version": "localhost/dev1/?DeviceClientType=x",
		} {
			t.Run(tr+"/"+name, func(t *testing.T) {
				if got := connackOf(t, h, tr, "dev1", user, tok); got != 0 {
					t.Fatalf("username %q: CONNACK %d", user, got)
				}
			})
		}
		t.Run(tr+"/garbage", func(t *testing.T) {
			if got := connackOf(t, h, tr, "dev1", "dev1", tok); got != 5 {
				t.Fatalf("CONNACK %d, want 5", got)
			}
		})
	}
}

func TestRule05AuthFailuresConnack5(t *testing.T) {
	h := newHub(t, "dev1", "dev2", "off")
	ctx := testCtx(t)
	off, _ := h.GetDevice("off")
	off.Status = emulator.StatusDisabled
	if _, err := h.UpdateDevice(ctx, off, ""); err != nil {
		t.Fatal(err)
	}
	key := primaryKey(t, h, "dev1")
	res := sas.DeviceResource("localhost", "dev1")
	bad, _ := sas.NewTokenBase64(res, base64.StdEncoding.EncodeToString(make([]byte, 32)), "", time.Now().Add(time.Hour))
	expired, _ := sas.NewTokenBase64(res, key, "", time.Now().Add(-time.Hour))
	for _, tr := range transports {
		cases := []struct{ name, cid, pw string }{
			{"bad-signature", "dev1", bad.String()},
			{"expired", "dev1", expired.String()},
			{"unknown-identity", "ghost", deviceToken(t, h, "dev1", "", time.Hour)},
			{"disabled", "off", deviceToken(t, h, "off", "", time.Hour)},
			{"scope-mismatch", "dev1", deviceToken(t, h, "dev2", "", time.Hour)},
			{"not-a-token", "dev1", "hello"},
			{"no-credentials", "dev1", ""},
		}
		for _, c := range cases {
			t.Run(tr+"/"+c.name, func(t *testing.T) {
				if got := connackOf(t, h, tr, c.cid, username(h, c.cid, ""), c.pw); got != packet.ConnackNotAuthorized {
					t.Fatalf("CONNACK %d, want 5", got)
				}
			})
		}
	}
}

// sasVectors loads shared/testvectors/sas.json.
type sasVector struct {
	Name, Host, DeviceID, ModuleID, KeyName, KeyBase64, SR, SE, Token string
}

func loadVectors(t *testing.T) []sasVector {
	b, err := os.ReadFile("../../../shared/testvectors/sas.json")
	if err != nil {
		b, err = os.ReadFile("/work/shared/testvectors/sas.json")
	}
	if err != nil {
		t.Skip("test vectors not found:", err)
	}
	var doc struct {
		Vectors []struct {
			Name      string `json:"name"`
			Host      string `json:"host"`
			DeviceID  string `json:"device_id"`
			ModuleID  string `json:"module_id"`
			KeyName   string `json:"key_name"`
			KeyBase64 string `json:"key_base64"`
			SR        string `json:"sr"`
			SE        string `json:"se"`
			Token     string `json:"token"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var out []sasVector
	for _, v := range doc.Vectors {
		out = append(out, sasVector{v.Name, v.Host, v.DeviceID, v.ModuleID, v.KeyName, v.KeyBase64, v.SR, v.SE, v.Token})
	}
	return out
}

// vectorHub starts a hub named like the vectors with the clock before
// their expiry, and registers each vector's identity with its key.
func vectorHub(t *testing.T, vs []sasVector) *emulator.Hub {
	t.Helper()
	clock := time.Unix(1700000000-60, 0)
	h := emulatortest.Start(t, emulator.Config{HostName: vs[0].Host, Now: func() time.Time { return clock }})
	ctx := testCtx(t)
	for _, v := range vs {
		if _, err := h.GetDevice(v.DeviceID); err != nil {
			auth := emulator.Authentication{SymmetricKey: emulator.SymmetricKey{PrimaryKey: v.KeyBase64}}
			if v.KeyName != "" {
				auth = emulator.Authentication{}
			}
			if _, err := h.CreateDevice(ctx, emulator.Device{DeviceID: v.DeviceID, Authentication: auth}); err != nil {
				t.Fatal(err)
			}
		}
		if v.ModuleID != "" {
			if _, err := h.CreateModule(ctx, emulator.Module{DeviceID: v.DeviceID, ModuleID: v.ModuleID,
				Authentication: emulator.Authentication{SymmetricKey: emulator.SymmetricKey{PrimaryKey: v.KeyBase64}}}); err != nil {
				t.Fatal(err)
			}
		}
		if v.KeyName != "" {
			if _, err := h.SetPolicy(ctx, emulator.Policy{KeyName: v.KeyName, PrimaryKey: v.KeyBase64, Rights: emulator.DeviceConnect}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return h
}

func vectorConnack(t *testing.T, h *emulator.Hub, tr string, v sasVector) packet.ConnackCode {
	cid := v.DeviceID
	if v.ModuleID != "" {
		cid += "/" + v.ModuleID
	}
	return connackOf(t, h, tr, cid, username(h, v.DeviceID, v.ModuleID), v.Token)
}

func TestRule06RawSrBothEscapeCases(t *testing.T) {
	vs := loadVectors(t)
	h := vectorHub(t, vs)
	for _, tr := range transports {
		for _, v := range vs {
			if !strings.HasPrefix(v.Name, "V1") && !strings.HasPrefix(v.Name, "V4") {
				continue
			}
			t.Run(tr+"/"+v.Name[:2], func(t *testing.T) {
				if got := vectorConnack(t, h, tr, v); got != 0 {
					t.Fatalf("%s (sr %s): CONNACK %d", v.Name, v.SR, got)
				}
			})
		}
		t.Run(tr+"/lowercase-signed-as-uppercase", func(t *testing.T) {
			// The HMAC covers sr as sent: a %2f token whose signature was
			// computed over the %2F form must fail.
			v := vs[0]
			se, _ := strconv.ParseInt(v.SE, 10, 64)
			tok := signRaw(v.KeyBase64, v.SR, se, "")
			tok = strings.Replace(tok, v.SR, strings.ReplaceAll(v.SR, "%2F", "%2f"), 1)
			if got := connackOf(t, h, tr, v.DeviceID, username(h, v.DeviceID, ""), tok); got != 5 {
				t.Fatalf("CONNACK %d, want 5", got)
			}
		})
	}
}

func TestRule07StringToSignVectors(t *testing.T) {
	vs := loadVectors(t)
	h := vectorHub(t, vs)
	for _, tr := range transports {
		for _, v := range vs {
			t.Run(tr+"/"+v.Name[:2], func(t *testing.T) {
				if got := vectorConnack(t, h, tr, v); got != 0 {
					t.Fatalf("%s: CONNACK %d", v.Name, got)
				}
				// Our own computation of the same inputs gives the vector.
				se, _ := strconv.ParseInt(v.SE, 10, 64)
				if got := signRaw(v.KeyBase64, v.SR, se, v.KeyName); !sameToken(got, v.Token) {
					t.Fatalf("recomputed %s, vector %s", got, v.Token)
				}
			})
		}
	}
}

// sameToken compares tokens field by field (order and escape case of sig
// aside).
func sameToken(a, b string) bool {
	fa, fb := tokenFields(a), tokenFields(b)
	if len(fa) != len(fb) {
		return false
	}
	for k, v := range fa {
		if k == "sig" {
			va, _ := url.QueryUnescape(v)
			vb, _ := url.QueryUnescape(fb[k])
			if va != vb {
				return false
			}
		} else if fb[k] != v {
			return false
		}
	}
	return true
}

func tokenFields(s string) map[string]string {
	m := map[string]string{}
	for _, p := range strings.Split(strings.TrimPrefix(s, "SharedAccessSignature "), "&") {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return m
}

func TestRule08SkewAndSegmentPrefix(t *testing.T) {
	h := newHub(t, "dev1", "dev10")
	key := primaryKey(t, h, "dev1")
	now := time.Now().Unix()
	owner, _ := h.Policy("iothubowner")
	for _, tr := range transports {
		cases := []struct {
			name, cid, pw string
			want          packet.ConnackCode
		}{
			{"within-skew", "dev1", signRaw(key, "localhost%2Fdevices%2Fdev1", now-120, ""), 0},
			{"past-skew", "dev1", signRaw(key, "localhost%2Fdevices%2Fdev1", now-400, ""), 5},
			{"policy-hub-scope", "dev1", signRaw(owner.PrimaryKey, "localhost", now+3600, "iothubowner"), 0},
			{"policy-devices-scope", "dev1", signRaw(owner.PrimaryKey, "localhost%2Fdevices", now+3600, "iothubowner"), 0},
			{"host-case-insensitive", "dev1", signRaw(key, "LocalHost%2Fdevices%2Fdev1", now+3600, ""), 0},
			{"id-case-sensitive", "dev1", signRaw(key, "localhost%2Fdevices%2FDev1", now+3600, ""), 5},
			{"not-a-segment-prefix", "dev10", signRaw(primaryKey(t, h, "dev10"), "localhost%2Fdevices%2Fdev1", now+3600, ""), 5},
			{"policy-partial-segment", "dev1", signRaw(owner.PrimaryKey, "localhost%2Fdev", now+3600, "iothubowner"), 5},
		}
		for _, c := range cases {
			t.Run(tr+"/"+c.name, func(t *testing.T) {
				if got := connackOf(t, h, tr, c.cid, username(h, c.cid, ""), c.pw); got != c.want {
					t.Fatalf("CONNACK %d, want %d", got, c.want)
				}
			})
		}
	}
}

func TestRule09PolicyTokensNeedDeviceConnect(t *testing.T) {
	h := newHub(t, "dev1")
	now := time.Now().Unix()
	tok := func(name string) string {
		p, err := h.Policy(name)
		if err != nil {
			t.Fatal(err)
		}
		return signRaw(p.PrimaryKey, "localhost%2Fdevices%2Fdev1", now+3600, name)
	}
	device, _ := h.Policy("device")
	for _, tr := range transports {
		cases := []struct {
			name, pw string
			want     packet.ConnackCode
		}{
			{"device", tok("device"), 0},
			{"iothubowner", tok("iothubowner"), 0},
			{"device-secondary", signRaw(device.SecondaryKey, "localhost%2Fdevices%2Fdev1", now+3600, "device"), 0},
			{"service", tok("service"), 5},
			{"registryReadWrite", tok("registryReadWrite"), 5},
			{"unknown-policy", signRaw(device.PrimaryKey, "localhost%2Fdevices%2Fdev1", now+3600, "nope"), 5},
			{"wrong-key", signRaw(primaryKey(t, h, "dev1"), "localhost%2Fdevices%2Fdev1", now+3600, "device"), 5},
		}
		for _, c := range cases {
			t.Run(tr+"/"+c.name, func(t *testing.T) {
				if got := connackOf(t, h, tr, "dev1", username(h, "dev1", ""), c.pw); got != c.want {
					t.Fatalf("CONNACK %d, want %d", got, c.want)
				}
			})
		}
	}
}

func TestRule10TokenExpiryClosesLiveConnection(t *testing.T) {
	h := emulatortest.Start(t, emulator.Config{SASSkew: -1})
	emulatortest.Device(t, h, "dev1")
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			c := dialRaw(t, h, tr)
			c.send(&packet.Connect{ClientID: []byte("dev1"), CleanSession: true, KeepAlive: 60,
				UsernameFlag: true, Username: []byte(username(h, "dev1", "")),
				PasswordFlag: true, Password: []byte(deviceToken(t, h, "dev1", "", 2*time.Second))})
			got := c.expectClosed()
			if len(got) != 1 || got[0].(*packet.Connack).ReturnCode != 0 {
				t.Fatalf("got %v, want CONNACK 0 and a close at expiry", got)
			}
			// A fresh token connects again.
			if code := connackOf(t, h, tr, "dev1", username(h, "dev1", ""), deviceToken(t, h, "dev1", "", time.Hour)); code != 0 {
				t.Fatalf("fresh token: CONNACK %d", code)
			}
		})
	}
}

func TestRule12X509(t *testing.T) {
	h := newHub(t)
	ctx := testCtx(t)
	ca := testcert.New(t, testcert.Options{})
	self := ca.MustClient(t, "x509dev")
	if _, err := h.CreateDevice(ctx, emulator.Device{DeviceID: "x509dev", Authentication: emulator.Authentication{
		Type: emulator.AuthSelfSigned, X509Thumbprint: emulator.X509Thumbprint{PrimaryThumbprint: self.SHA256Thumbprint()}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.CreateDevice(ctx, emulator.Device{DeviceID: "cadev", Authentication: emulator.Authentication{
		Type: emulator.AuthCertificateAuthority}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddCACertificate(ctx, "testca", ca.RootPEM()); err != nil {
		t.Fatal(err)
	}
	withCert := func(c *testcert.Cert) *tls.Config {
		tc := h.TLSConfig()
		tc.Certificates = []tls.Certificate{c.TLS}
		return tc
	}
	other := testcert.New(t, testcert.Options{})
	for _, tr := range transports {
		cases := []struct {
			name, id string
			tls      *tls.Config
			ok       bool
		}{
			{"no-client-cert", "x509dev", h.TLSConfig(), false},
			{"thumbprint", "x509dev", withCert(self), true},
			{"wrong-cert", "x509dev", withCert(ca.MustClient(t, "x509dev")), false},
			{"ca-cn", "cadev", withCert(ca.MustClient(t, "cadev")), true},
			{"ca-wrong-cn", "cadev", withCert(ca.MustClient(t, "someone")), false},
			{"unregistered-ca", "cadev", withCert(other.MustClient(t, "cadev")), false},
			{"ca-no-cert", "cadev", h.TLSConfig(), false},
		}
		for _, c := range cases {
			t.Run(tr+"/"+c.name, func(t *testing.T) {
				_, err := tryConnect(t, h, c.id, devOpts{transport: tr, tls: c.tls, password: "-"})
				if c.ok && err != nil {
					t.Fatalf("connect: %v", err)
				}
				if !c.ok && !errors.Is(err, packet.ConnackNotAuthorized) {
					t.Fatalf("connect: %v, want CONNACK 5", err)
				}
			})
		}
	}
}

func TestRule13IdleTimeout(t *testing.T) {
	h := newHub(t, "dev1")
	for _, tr := range transports {
		t.Run(tr+"/silent-closed", func(t *testing.T) {
			c := dialRaw(t, h, tr)
			c.send(&packet.Connect{ClientID: []byte("dev1"), CleanSession: true, KeepAlive: 1,
				UsernameFlag: true, Username: []byte(username(h, "dev1", "")),
				PasswordFlag: true, Password: []byte(deviceToken(t, h, "dev1", "", time.Hour))})
			got := c.expectClosed() // after 1.5 s of silence
			if len(got) != 1 {
				t.Fatalf("got %v, want only the CONNACK", got)
			}
		})
		t.Run(tr+"/traffic-resets", func(t *testing.T) {
			c := dialRaw(t, h, tr)
			c.send(&packet.Connect{ClientID: []byte("dev1"), CleanSession: true, KeepAlive: 1,
				UsernameFlag: true, Username: []byte(username(h, "dev1", "")),
				PasswordFlag: true, Password: []byte(deviceToken(t, h, "dev1", "", time.Hour))})
			if _, err := c.read(); err != nil {
				t.Fatal(err)
			}
			// Three seconds of pings every 0.5 s, twice the idle timeout.
			for range 6 {
				time.Sleep(500 * time.Millisecond)
				c.send(&packet.Pingreq{})
				p, err := c.read()
				if err != nil {
					t.Fatalf("closed despite traffic: %v", err)
				}
				if _, ok := p.(*packet.Pingresp); !ok {
					t.Fatalf("got %T, want PINGRESP", p)
				}
			}
		})
	}
}

func TestRule18SecondConnectClosesOlder(t *testing.T) {
	h := newHub(t, "dev1")
	for _, pair := range [][2]string{{"tls", "wss"}, {"wss", "tls"}, {"tls", "tls"}} {
		t.Run(pair[0]+"-then-"+pair[1], func(t *testing.T) {
			first := dialRaw(t, h, pair[0])
			if ack := first.connect(h, "dev1", "", true); ack.ReturnCode != 0 {
				t.Fatal(ack.ReturnCode)
			}
			second := dialRaw(t, h, pair[1])
			if ack := second.connect(h, "dev1", "", true); ack.ReturnCode != 0 {
				t.Fatal(ack.ReturnCode)
			}
			first.expectClosed()
			second.send(&packet.Pingreq{})
			if p, err := second.read(); err != nil {
				t.Fatalf("newer connection closed: %v", err)
			} else if _, ok := p.(*packet.Pingresp); !ok {
				t.Fatalf("got %T", p)
			}
			waitFor(t, "connected state", func() bool {
				d, _ := h.GetDevice("dev1")
				return d.ConnectionState == emulator.Connected
			})
		})
	}
}

func TestRule42IdsEncodedInSASNotInTopics(t *testing.T) {
	vs := loadVectors(t)
	var v5 []sasVector
	for _, v := range vs {
		if strings.HasPrefix(v.Name, "V5") {
			v5 = append(v5, v)
		}
	}
	if len(v5) == 0 {
		t.Skip("no V5 vector")
	}
	h := vectorHub(t, v5)
	for _, tr := range transports {
		t.Run(tr+"/V5", func(t *testing.T) {
			if got := vectorConnack(t, h, tr, v5[0]); got != 0 {
				t.Fatalf("CONNACK %d", got)
			}
		})
	}
	// The same id signed the way the Node SDK does (the id raw inside the
	// escaped resource) and the way C# does (escaped twice).
	t.Run("node-and-csharp-forms", func(t *testing.T) {
		h := newHub(t)
		emulatortest.Device(t, h, "dev#1")
		key := primaryKey(t, h, "dev#1")
		se := time.Now().Add(time.Hour).Unix()
		for name, sr := range map[string]string{"node": "localhost%2Fdevices%2Fdev%231", "csharp": "localhost%2Fdevices%2Fdev%25231"} {
			if got := connackOf(t, h, "tls", "dev#1", username(h, "dev#1", ""), signRaw(key, sr, se, "")); got != 0 {
				t.Errorf("%s form %s: CONNACK %d", name, sr, got)
			}
		}
		// Nothing broader: a token for "dev" does not cover "dev#1".
		emulatortest.Device(t, h, "dev")
		if got := connackOf(t, h, "tls", "dev#1", username(h, "dev#1", ""), signRaw(key, "localhost%2Fdevices%2Fdev", se, "")); got != 5 {
			t.Errorf("token for dev accepted for dev#1")
		}
	})
	// An id with characters that are legal in topics: unencoded in the
	// topic, encoded in sr.
	h2 := newHub(t)
	id := "d:e.v(1)$'@=;"
	emulatortest.Device(t, h2, id)
	for _, tr := range transports {
		t.Run(tr+"/special-id", func(t *testing.T) {
			d := connect(t, h2, id, devOpts{transport: tr})
			if err := d.pub("devices/"+id+"/messages/events/", []byte(tr), packet.QoS1); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "telemetry", func() bool {
				for _, m := range telemetryOf(t, h2, id) {
					if string(m.Body) == tr {
						return true
					}
				}
				return false
			})
		})
	}
}

func TestRule43WebSocketSubprotocol(t *testing.T) {
	h := newHub(t, "dev1")
	upgrade := func(path, proto string) *http.Response {
		t.Helper()
		nc, err := tls.Dial("tcp", h.HTTPSAddr().String(), h.TLSConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		req := "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
		if proto != "" {
			req += "Sec-WebSocket-Protocol: " + proto + "\r\n"
		}
		nc.SetDeadline(time.Now().Add(wait))
		if _, err := nc.Write([]byte(req + "\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, c := range []struct {
		path, proto string
		status      int
	}{
		{"/$iothub/websocket", "mqtt", 101},
		{"/$iothub/websocket", "MQTT", 101},
		{"/$iothub/websocket", "", 400},
		{"/$iothub/websocket", "amqp", 400},
		{"/elsewhere", "mqtt", 0}, // not upgraded: the REST API answers it
	} {
		resp := upgrade(c.path, c.proto)
		if c.status == 0 {
			if resp.StatusCode == 101 {
				t.Errorf("%s upgraded", c.path)
			}
			continue
		}
		if resp.StatusCode != c.status {
			t.Errorf("%s %q: status %d, want %d", c.path, c.proto, resp.StatusCode, c.status)
		}
		if c.status == 101 && !strings.EqualFold(resp.Header.Get("Sec-WebSocket-Protocol"), "mqtt") {
			t.Errorf("%q: subprotocol %q not echoed", c.proto, resp.Header.Get("Sec-WebSocket-Protocol"))
		}
	}
	// And MQTT travels in binary frames: a whole session over WSS.
	d := connect(t, h, "dev1", devOpts{transport: "wss"})
	if err := d.pub("devices/dev1/messages/events/", []byte("framed"), packet.QoS1); err != nil {
		t.Fatal(err)
	}
}

func TestRule44TLS(t *testing.T) {
	h := newHub(t, "dev1")
	addrs := map[string]string{"mqtts": h.MQTTAddr().String(), "https": h.HTTPSAddr().String()}
	for name, addr := range addrs {
		t.Run(name+"/tls11-refused", func(t *testing.T) {
			tc := h.TLSConfig()
			tc.MinVersion, tc.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			if c, err := tls.Dial("tcp", addr, tc); err == nil {
				c.Close()
				t.Fatal("TLS 1.1 handshake succeeded")
			}
		})
		for _, sni := range []string{"localhost", "127.0.0.1"} {
			t.Run(name+"/cert-for-"+sni+"/client-cert-requested", func(t *testing.T) {
				requested := false
				tc := h.TLSConfig()
				tc.ServerName = sni
				tc.MaxVersion = tls.VersionTLS12
				tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					requested = true
					return &tls.Certificate{}, nil // none: not required
				}
				c, err := tls.Dial("tcp", addr, tc)
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				defer c.Close()
				if !requested {
					t.Fatal("no client certificate requested")
				}
			})
		}
	}
	_ = context.Background
}

// TestWrongHostNameExplained: a token and username for another host name
// (say 127.0.0.1 instead of localhost) is refused, and the log says why.
func TestWrongHostNameExplained(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	h := emulatortest.Start(t, emulator.Config{Logger: slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))})
	emulatortest.Device(t, h, "dev1")
	tok := signRaw(primaryKey(t, h, "dev1"), "127.0.0.1%2Fdevices%2Fdev1", time.Now().Add(time.Hour).Unix(), "")
	if got := connackOf(t, h, "tls", "dev1", "127.0.0.1/dev1/?api-version=2021-04-12", tok); got != 5 {
		t.Fatalf("CONNACK %d", got)
	}
	waitFor(t, "log line", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), `this hub is \"localhost\"`)
	})
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
