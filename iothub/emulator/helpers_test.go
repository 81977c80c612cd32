package emulator_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/emulator/emulatortest"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
	"github.com/hubwire/hubwire/sas"
	"github.com/hubwire/hubwire/transport"
)

// wait bounds every wait in these tests.
const wait = 10 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// transports are the two ways a device reaches the hub.
var transports = []string{"tls", "wss"}

// hubURL returns the URL a device dials for the transport.
func hubURL(h *emulator.Hub, tr string) string {
	if tr == "wss" {
		return h.WebSocketURL()
	}
	return h.MQTTURL()
}

// deviceToken returns a SAS token for an identity's primary key.
func deviceToken(t *testing.T, h *emulator.Hub, deviceID, moduleID string, ttl time.Duration) string {
	t.Helper()
	var key, res string
	if moduleID == "" {
		d, err := h.GetDevice(deviceID)
		if err != nil {
			t.Fatal(err)
		}
		key, res = d.Authentication.SymmetricKey.PrimaryKey, sas.DeviceResource(h.HostName(), deviceID)
	} else {
		m, err := h.GetModule(deviceID, moduleID)
		if err != nil {
			t.Fatal(err)
		}
		key, res = m.Authentication.SymmetricKey.PrimaryKey, sas.ModuleResource(h.HostName(), deviceID, moduleID)
	}
	tok, err := sas.NewTokenBase64(res, key, "", time.Now().Add(ttl))
	if err != nil {
		t.Fatal(err)
	}
	return tok.String()
}

func usernameOf(h *emulator.Hub, deviceID string) string { return username(h, deviceID, "") }

// tokenOf returns an hour-long SAS token for a device's primary key.
func tokenOf(tb testing.TB, h *emulator.Hub, deviceID string) string {
	tb.Helper()
	d, err := h.GetDevice(deviceID)
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := sas.NewTokenBase64(sas.DeviceResource(h.HostName(), deviceID), d.Authentication.SymmetricKey.PrimaryKey, "", time.Now().Add(time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	return tok.String()
}

// discardLogger drops every log line (benchmarks).
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func username(h *emulator.Hub, deviceID, moduleID string) string {
	u := iothub.Username{Host: h.HostName(), DeviceID: deviceID, ModuleID: moduleID}
	return u.String()
}

// dev is a device connection through our mqtt client with raw topics.
type dev struct {
	t  *testing.T
	c  *mqtt.Client
	mu sync.Mutex
	in []*mqtt.Message // every message received, in order
	ch chan struct{}   // signalled on each message
}

type devOpts struct {
	transport string
	module    string
	clean     bool
	keepAlive time.Duration
	will      *mqtt.Message
	password  string // overrides the SAS token
	username  string // overrides the username
	clientID  string // overrides the client id
	tls       *tls.Config
}

// connect connects deviceID with its primary key and fails the test on
// error.
func connect(t *testing.T, h *emulator.Hub, deviceID string, o devOpts) *dev {
	t.Helper()
	d, err := tryConnect(t, h, deviceID, o)
	if err != nil {
		t.Fatalf("connect %s over %s: %v", deviceID, o.transport, err)
	}
	return d
}

func tryConnect(t *testing.T, h *emulator.Hub, deviceID string, o devOpts) (*dev, error) {
	t.Helper()
	if o.transport == "" {
		o.transport = "tls"
	}
	d := &dev{t: t, ch: make(chan struct{}, 1024)}
	pw := o.password
	if pw == "" {
		pw = deviceToken(t, h, deviceID, o.module, time.Hour)
	}
	user := o.username
	if user == "" {
		user = username(h, deviceID, o.module)
	}
	cid := o.clientID
	if cid == "" {
		cid = deviceID
		if o.module != "" {
			cid += "/" + o.module
		}
	}
	tc := o.tls
	if tc == nil {
		tc = h.TLSConfig()
	}
	ka := o.keepAlive
	if ka == 0 {
		ka = 60 * time.Second
	}
	var pwb []byte
	if pw != "-" { // "-": no password (X.509)
		pwb = []byte(pw)
	}
	c, err := mqtt.NewClient(mqtt.Config{
		URL:            hubURL(h, o.transport),
		Transport:      transport.Config{TLS: tc, WebSocketPath: emulator.WebSocketPath},
		ClientID:       cid,
		Username:       user,
		Password:       pwb,
		CleanSession:   o.clean,
		KeepAlive:      ka,
		Will:           o.will,
		Reconnect:      mqtt.Backoff{Disabled: true},
		OnMessage:      d.record,
		HandlerQueue:   4096,
		ConnectTimeout: wait,
	})
	if err != nil {
		return nil, err
	}
	if _, err := c.Connect(testCtx(t)); err != nil {
		return nil, err
	}
	d.c = c
	t.Cleanup(func() { c.Close(context.Background()) })
	return d, nil
}

func (d *dev) record(m *mqtt.Message) {
	d.mu.Lock()
	d.in = append(d.in, m.Clone())
	d.mu.Unlock()
	select {
	case d.ch <- struct{}{}:
	default:
	}
}

func (d *dev) sub(filters ...string) {
	d.t.Helper()
	var subs []mqtt.Subscription
	for _, f := range filters {
		subs = append(subs, mqtt.Subscription{Filter: f, QoS: packet.QoS1})
	}
	if _, err := d.c.Subscribe(testCtx(d.t), subs...); err != nil {
		d.t.Fatalf("subscribe %v: %v", filters, err)
	}
}

func (d *dev) pub(topic string, payload []byte, qos packet.QoS) error {
	return d.c.Publish(testCtx(d.t), &mqtt.Message{Topic: []byte(topic), Payload: payload, QoS: qos})
}

// next waits for the next received message whose topic has prefix.
func (d *dev) next(prefix string) *mqtt.Message {
	d.t.Helper()
	deadline := time.After(wait)
	for {
		d.mu.Lock()
		for i, m := range d.in {
			if strings.HasPrefix(string(m.Topic), prefix) {
				d.in = append(d.in[:i:i], d.in[i+1:]...)
				d.mu.Unlock()
				return m
			}
		}
		d.mu.Unlock()
		select {
		case <-d.ch:
		case <-deadline:
			d.t.Fatalf("no message with topic prefix %q within %v", prefix, wait)
		}
	}
}

// none checks that no message with the prefix arrives within d.
func (d *dev) none(prefix string, within time.Duration) {
	d.t.Helper()
	time.Sleep(within)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range d.in {
		if strings.HasPrefix(string(m.Topic), prefix) {
			d.t.Fatalf("unexpected message on %s", m.Topic)
		}
	}
}

// rawConn is a packet-level connection for sending what the client would
// not.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	r  *packet.Reader
}

func dialRaw(t *testing.T, h *emulator.Hub, tr string) *rawConn {
	t.Helper()
	nc, err := transport.Dial(testCtx(t), hubURL(h, tr), transport.Config{TLS: h.TLSConfig(), WebSocketPath: emulator.WebSocketPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, r: packet.NewReader(nc, 0)}
}

func (c *rawConn) send(p packet.Packet) {
	c.t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendBytes(b)
}

func (c *rawConn) sendBytes(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(wait))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next packet, or an error at the end of the stream.
func (c *rawConn) read() (packet.Packet, error) {
	c.nc.SetReadDeadline(time.Now().Add(wait))
	return c.r.ReadPacket()
}

// connect sends CONNECT for an identity and returns the CONNACK.
func (c *rawConn) connect(h *emulator.Hub, deviceID, moduleID string, clean bool) *packet.Connack {
	c.t.Helper()
	cid := deviceID
	if moduleID != "" {
		cid += "/" + moduleID
	}
	c.send(&packet.Connect{
		ClientID: []byte(cid), CleanSession: clean, KeepAlive: 60,
		UsernameFlag: true, Username: []byte(username(h, deviceID, moduleID)),
		PasswordFlag: true, Password: []byte(deviceToken(c.t, h, deviceID, moduleID, time.Hour)),
	})
	p, err := c.read()
	if err != nil {
		c.t.Fatalf("no CONNACK: %v", err)
	}
	ack, ok := p.(*packet.Connack)
	if !ok {
		c.t.Fatalf("got %T, want CONNACK", p)
	}
	return ack
}

// expectClosed reads until the hub closes the connection, failing if it
// does not within the wait. Packets read meanwhile are returned.
func (c *rawConn) expectClosed() []packet.Packet {
	c.t.Helper()
	var got []packet.Packet
	for {
		p, err := c.read()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatalf("connection still open after %v", wait)
			}
			return got
		}
		got = append(got, p)
	}
}

// newHub starts an in-memory hub with one device per id.
func newHub(t *testing.T, ids ...string) *emulator.Hub {
	t.Helper()
	h := emulatortest.New(t)
	for _, id := range ids {
		emulatortest.Device(t, h, id)
	}
	return h
}

// waitFor polls cond until it holds or the wait passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// telemetryOf returns the telemetry of a device read so far.
func telemetryOf(t *testing.T, h *emulator.Hub, deviceID string) []emulator.Message {
	t.Helper()
	all, err := h.ReadTelemetry(emulator.Earliest, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []emulator.Message
	for _, m := range all {
		if m.DeviceID == deviceID {
			out = append(out, m)
		}
	}
	return out
}
