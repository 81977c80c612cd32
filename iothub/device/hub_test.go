package device

// testHub is a small IoT-Hub-like server for this package's end-to-end
// tests, over real TLS and WSS on loopback: CONNECT with SAS or X.509
// thumbprint auth (CONNACK 5 on failure, no clock skew allowed), one live
// connection per identity (a new one closes the old), persistent sessions
// (subscriptions and C2D queue kept; queued C2D published right after
// CONNACK, before any SUBSCRIBE, as IoT Hub does), telemetry with PUBACK,
// twins through iothub.HubTwin, direct methods, closing the connection
// when its token expires, and fault knobs (twin statuses, a blackhole, a
// restart on the same ports). It speaks MQTT through package packet only.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/testcert"
	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/packet"
	"github.com/hubwire/hubwire/sas"
	"github.com/hubwire/hubwire/transport"
)

const testHost = "hub.test"

type hubIdentity struct {
	key        []byte
	thumbprint string // SHA-256 of an X.509 device
	twin       *iothub.HubTwin
	session    *hubSession
	live       *hubConn
}

type hubSession struct {
	subs    map[string]bool
	c2d     []hubC2D // queued, not yet acknowledged
	nextC2D packet.ID
}

type hubC2D struct {
	id    packet.ID
	topic []byte
	body  []byte
	sent  bool // on the current connection
}

type telemetry struct {
	Device  string
	Topic   string
	Payload string
	Dup     bool
	Props   iothub.Properties
}

type testHub struct {
	t      testing.TB
	ca     *testcert.CA
	tlsCfg *tls.Config

	mu            sync.Mutex
	ids           map[string]*hubIdentity // "dev" or "dev/mod"
	tls, wss      *transport.Listener
	tlsAddr       string
	wssAddr       string
	telemetry     []telemetry
	methods       *iothub.MethodTable
	twinFaults    []int // statuses to answer the next twin requests with
	blackhole     bool  // stop answering and reading anything
	connects      int
	expiredCloses int
	refuse        bool // answer every CONNECT with 3 (server unavailable)
	conns         map[*hubConn]bool
	wg            sync.WaitGroup
}

type hubConn struct {
	h      *testHub
	nc     net.Conn
	ident  string
	wmu    sync.Mutex
	closed chan struct{}
	once   sync.Once
}

func newTestHub(t testing.TB) *testHub {
	ca := testcert.New(t, testcert.Options{})
	srv := ca.MustServer(t, testHost, "localhost", "127.0.0.1")
	h := &testHub{
		t:       t,
		ca:      ca,
		tlsCfg:  ca.ServerConfig(srv, tls.RequestClientCert),
		ids:     make(map[string]*hubIdentity),
		methods: iothub.NewMethodTable(nil),
		conns:   make(map[*hubConn]bool),
	}
	h.listen("127.0.0.1:0", "127.0.0.1:0")
	t.Cleanup(h.stop)
	return h
}

func (h *testHub) listen(tlsAddr, wssAddr string) {
	ctx := context.Background()
	var err error
	for i := 0; ; i++ {
		h.tls, err = transport.Listen(ctx, "tls://"+tlsAddr, transport.ListenConfig{TLS: h.tlsCfg})
		if err == nil {
			break
		}
		if i > 50 {
			h.t.Fatalf("listen tls: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // the old socket of a restart may linger
	}
	for i := 0; ; i++ {
		h.wss, err = transport.Listen(ctx, "wss://"+wssAddr+WebSocketPath, transport.ListenConfig{TLS: h.tlsCfg})
		if err == nil {
			break
		}
		if i > 50 {
			h.t.Fatalf("listen wss: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.tlsAddr, h.wssAddr = h.tls.Addr().String(), h.wss.Addr().String()
	for _, l := range []*transport.Listener{h.tls, h.wss} {
		h.wg.Add(1)
		go h.accept(l)
	}
}

func (h *testHub) accept(l *transport.Listener) {
	defer h.wg.Done()
	for {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		c := &hubConn{h: h, nc: nc, closed: make(chan struct{})}
		h.mu.Lock()
		h.conns[c] = true
		h.mu.Unlock()
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			c.serve()
		}()
	}
}

// stop closes the listeners and every connection (state is kept).
func (h *testHub) stop() {
	h.tls.Close()
	h.wss.Close()
	h.mu.Lock()
	for c := range h.conns {
		c.close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

// restart stops the hub and serves again on the same ports.
func (h *testHub) restart(down time.Duration) {
	tlsAddr, wssAddr := h.tlsAddr, h.wssAddr
	h.stop()
	time.Sleep(down)
	h.listen(tlsAddr, wssAddr)
}

func (h *testHub) addDevice(id string) string {
	key := []byte("key-of-" + id + "-0123456789abcdef")
	h.mu.Lock()
	h.ids[id] = &hubIdentity{key: key, twin: iothub.NewHubTwin()}
	h.mu.Unlock()
	dev, mod, _ := strings.Cut(id, "/")
	cs := "HostName=" + testHost + ";DeviceId=" + dev
	if mod != "" {
		cs += ";ModuleId=" + mod
	}
	return cs + ";SharedAccessKey=" + b64(key)
}

func (h *testHub) addX509Device(id string) *testcert.Cert {
	cert := h.ca.MustClient(h.t, id)
	h.mu.Lock()
	h.ids[id] = &hubIdentity{thumbprint: cert.SHA256Thumbprint(), twin: iothub.NewHubTwin()}
	h.mu.Unlock()
	return cert
}

// config returns a Config for cs that dials this hub over transport tr.
func (h *testHub) config(cs, tr string) Config {
	addr := h.tlsAddr
	if tr == TransportMQTTWebSocket {
		addr = h.wssAddr
	}
	return Config{ConnectionString: cs, Transport: tr, Address: addr, RootCAs: h.ca.Pool(), NoProxy: true}
}

func (c *hubConn) close() {
	c.once.Do(func() {
		close(c.closed)
		c.nc.Close()
	})
}

func (c *hubConn) write(p interface {
	AppendBinary([]byte) ([]byte, error)
}) {
	b, err := p.AppendBinary(nil)
	if err != nil {
		c.h.t.Errorf("hub: encode: %v", err)
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.close()
	}
}

func (c *hubConn) serve() {
	defer func() {
		c.close()
		c.h.mu.Lock()
		delete(c.h.conns, c)
		if id := c.h.ids[c.ident]; id != nil && id.live == c {
			id.live = nil
			for i := range id.session.c2d {
				id.session.c2d[i].sent = false
			}
		}
		c.h.mu.Unlock()
	}()
	r := packet.NewReader(c.nc, 1<<20)
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := r.Next()
	if err != nil || f.Type() != packet.TypeConnect {
		return
	}
	var cp packet.Connect
	if err := cp.Decode(f); err != nil {
		return
	}
	keepAlive := time.Duration(cp.KeepAlive) * time.Second
	expiry, code := c.authenticate(&cp)
	if code != packet.ConnackAccepted {
		c.write(&packet.Connack{ReturnCode: code})
		return
	}
	h := c.h
	h.mu.Lock()
	id := h.ids[c.ident]
	if old := id.live; old != nil {
		old.close() // one connection per identity
	}
	id.live = c
	if id.session != nil {
		for i := range id.session.c2d {
			id.session.c2d[i].sent = false // unacknowledged: deliver again on c
		}
	}
	present := id.session != nil && !cp.CleanSession
	if id.session == nil || cp.CleanSession {
		id.session = &hubSession{subs: map[string]bool{}, c2d: idOrNil(id.session)}
	}
	h.connects++
	h.mu.Unlock()
	c.write(&packet.Connack{SessionPresent: present})
	if present {
		c.h.mu.Lock()
		c.flushC2DLocked(id) // before any SUBSCRIBE, as IoT Hub does
		c.h.mu.Unlock()
	}
	if !expiry.IsZero() {
		t := time.AfterFunc(time.Until(expiry), func() { // the hub closes at token expiry
			h.mu.Lock()
			h.expiredCloses++
			h.mu.Unlock()
			c.close()
		})
		defer t.Stop()
	}
	for {
		if keepAlive > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(keepAlive * 3 / 2))
		} else {
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		f, err := r.Next()
		if err != nil {
			return
		}
		h.mu.Lock()
		hole := h.blackhole
		h.mu.Unlock()
		if hole {
			continue
		}
		if !c.handle(id, f) {
			return
		}
	}
}

func idOrNil(s *hubSession) []hubC2D {
	if s == nil {
		return nil
	}
	return s.c2d
}

func (c *hubConn) authenticate(cp *packet.Connect) (time.Time, packet.ConnackCode) {
	h := c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refuse {
		return time.Time{}, packet.ConnackServerUnavailable
	}
	u, err := iothub.ParseUsername(cp.Username)
	if err != nil || !u.MatchesClientID(cp.ClientID) || u.Host != testHost {
		return time.Time{}, packet.ConnackNotAuthorized
	}
	c.ident = u.ClientID()
	id := h.ids[c.ident]
	if id == nil {
		return time.Time{}, packet.ConnackNotAuthorized
	}
	if id.thumbprint != "" {
		st, ok := transport.TLSConnectionState(c.nc)
		if !ok || len(st.PeerCertificates) == 0 {
			return time.Time{}, packet.ConnackNotAuthorized
		}
		sum := sha256.Sum256(st.PeerCertificates[0].Raw)
		if !strings.EqualFold(hex.EncodeToString(sum[:]), id.thumbprint) {
			return time.Time{}, packet.ConnackNotAuthorized
		}
		return time.Time{}, packet.ConnackAccepted
	}
	tok, err := sas.ParseToken(string(cp.Password))
	if err != nil {
		return time.Time{}, packet.ConnackNotAuthorized
	}
	res := sas.DeviceResource(u.Host, u.DeviceID)
	if u.ModuleID != "" {
		res = sas.ModuleResource(u.Host, u.DeviceID, u.ModuleID)
	}
	// No clock skew allowed: expired means expired.
	if err := tok.VerifyFor(res, id.key, time.Now().Add(sas.MaxClockSkew)); err != nil {
		return time.Time{}, packet.ConnackNotAuthorized
	}
	return tok.Expiry, packet.ConnackAccepted
}

// handle serves one packet; false closes the connection.
func (c *hubConn) handle(id *hubIdentity, f packet.Frame) bool {
	h := c.h
	switch f.Type() {
	case packet.TypePingreq:
		c.write(&packet.Pingresp{})
	case packet.TypeDisconnect:
		return false
	case packet.TypeSubscribe:
		var sp packet.Subscribe
		if sp.Decode(f) != nil {
			return false
		}
		codes := make([]byte, len(sp.Filters))
		h.mu.Lock()
		for i, s := range sp.Filters {
			flt, err := iothub.ParseFilter(s.Filter)
			if err != nil {
				h.mu.Unlock()
				return false
			}
			id.session.subs[string(s.Filter)] = true
			codes[i] = byte(min(s.QoS, 1))
			_ = flt
		}
		h.mu.Unlock()
		c.write(&packet.Suback{ID: sp.ID, ReturnCodes: codes})
		h.mu.Lock()
		c.flushC2DLocked(id)
		h.mu.Unlock()
	case packet.TypePuback:
		var pa packet.Puback
		if pa.Decode(f) != nil {
			return false
		}
		h.mu.Lock()
		s := id.session
		for i := range s.c2d {
			if s.c2d[i].id == pa.ID && s.c2d[i].sent {
				s.c2d = append(s.c2d[:i], s.c2d[i+1:]...)
				break
			}
		}
		h.mu.Unlock()
	case packet.TypePublish:
		var p packet.Publish
		if p.Decode(f) != nil || p.QoS == packet.QoS2 {
			return false
		}
		r, err := iothub.ParseTopic(p.Topic)
		if err != nil || !r.PublishableBy(splitIdent(c.ident)) {
			return false
		}
		switch r.Kind {
		case iothub.RouteTelemetry:
			var props iothub.Properties
			_ = props.ParseD2C(r.Bag)
			h.mu.Lock()
			h.telemetry = append(h.telemetry, telemetry{Device: c.ident, Topic: string(p.Topic), Payload: string(p.Payload), Dup: p.Dup, Props: props})
			h.mu.Unlock()
			if p.QoS == packet.QoS1 {
				c.write(&packet.Puback{ID: p.ID})
			}
		case iothub.RouteTwinGet, iothub.RouteTwinPatchReported:
			h.mu.Lock()
			fault := 0
			if len(h.twinFaults) > 0 {
				fault, h.twinFaults = h.twinFaults[0], h.twinFaults[1:]
			}
			h.mu.Unlock()
			if fault != 0 {
				c.publish(iothub.AppendTwinResponseTopic(nil, fault, r.RequestID, -1), nil)
				break
			}
			reply, _ := id.twin.HandleRequest(&r, p.Payload)
			c.publish(reply.Topic, reply.Payload)
		case iothub.RouteMethodResponse:
			dev, mod := splitIdent(c.ident)
			_ = h.methods.HandleResponse(dev, mod, &r, p.Payload)
		}
	}
	return true
}

func (c *hubConn) publish(topic, payload []byte) {
	c.write(&packet.Publish{Topic: topic, Payload: payload})
}

// flushC2DLocked publishes the queued C2D messages not yet sent on c.
func (c *hubConn) flushC2DLocked(id *hubIdentity) {
	s := id.session
	for i := range s.c2d {
		m := &s.c2d[i]
		if m.sent {
			continue
		}
		m.sent = true
		p := &packet.Publish{QoS: packet.QoS1, ID: m.id, Topic: m.topic, Payload: m.body}
		c.write(p)
	}
}

// sendC2D queues a C2D message for device dev and delivers it if it can.
func (h *testHub) sendC2D(dev string, body string, props *iothub.Properties) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.ids[dev]
	if id.session == nil {
		id.session = &hubSession{subs: map[string]bool{}}
	}
	s := id.session
	s.nextC2D++
	if props == nil {
		props = &iothub.Properties{}
	}
	s.c2d = append(s.c2d, hubC2D{id: s.nextC2D, topic: iothub.AppendC2DTopic(nil, dev, props), body: []byte(body)})
	if id.live != nil && s.subs[string(iothub.AppendC2DFilter(nil, dev))] {
		id.live.flushC2DLocked(id)
	}
}

// updateDesired patches the desired properties and notifies a subscriber.
func (h *testHub) updateDesired(ident, patch string) int64 {
	h.mu.Lock()
	id := h.ids[ident]
	a, v, err := id.twin.UpdateDesired([]byte(patch))
	live := id.live
	subscribed := live != nil && id.session.subs[iothub.TwinDesiredFilter]
	h.mu.Unlock()
	if err != nil {
		h.t.Fatalf("hub: update desired: %v", err)
	}
	if subscribed {
		live.publish(a.Topic, a.Payload)
	}
	return v
}

// invoke calls a direct method and waits for the answer.
func (h *testHub) invoke(ident, name, payload string, timeout time.Duration) (iothub.MethodResult, error) {
	dev, mod := splitIdent(ident)
	h.mu.Lock()
	id := h.ids[ident]
	live := id.live
	online := live != nil && id.session.subs[iothub.MethodsFilter]
	h.mu.Unlock()
	a, w, err := h.methods.Invoke(iothub.MethodCall{DeviceID: dev, ModuleID: mod, Name: name, Payload: []byte(payload), ResponseTimeout: timeout}, online)
	if err != nil {
		return iothub.MethodResult{}, err
	}
	live.publish(a.Topic, a.Payload)
	return w.Wait(context.Background())
}

func (h *testHub) telemetryOf(dev string) []telemetry {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []telemetry
	for _, m := range h.telemetry {
		if m.Device == dev {
			out = append(out, m)
		}
	}
	return out
}

func (h *testHub) setBlackhole(on bool) {
	h.mu.Lock()
	h.blackhole = on
	h.mu.Unlock()
}

func (h *testHub) failTwin(statuses ...int) {
	h.mu.Lock()
	h.twinFaults = append(h.twinFaults, statuses...)
	h.mu.Unlock()
}

func (h *testHub) connectCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.connects
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func splitIdent(ident string) (dev, mod string) {
	dev, mod, _ = strings.Cut(ident, "/")
	return dev, mod
}

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// sendInput routes a message to input of module ident ("dev/mod"), as IoT
// Edge does, delivered like C2D (QoS 1, kept until PUBACK).
func (h *testHub) sendInput(ident, input, body string) {
	dev, mod := splitIdent(ident)
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.ids[ident]
	if id.session == nil {
		id.session = &hubSession{subs: map[string]bool{}}
	}
	s := id.session
	s.nextC2D++
	s.c2d = append(s.c2d, hubC2D{id: s.nextC2D, topic: iothub.AppendModuleInputTopic(nil, dev, mod, input, &iothub.Properties{MessageID: "in-1"}), body: []byte(body)})
	if id.live != nil && s.subs[string(iothub.AppendModuleFilter(nil, dev, mod))] {
		id.live.flushC2DLocked(id)
	}
}
