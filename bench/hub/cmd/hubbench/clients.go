package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
	"github.com/hubwire/hubwire/sas"
	"github.com/hubwire/hubwire/transport"
)

// clientOpts configures a client child (flags -client …).
type clientOpts struct {
	mode    string // idle, connect, ingest
	addr    string
	caFile  string
	n       int // connections (idle), connects (connect), messages (ingest)
	devices int // identities to use (connect, ingest)
	workers int // concurrent dialers (idle, connect)
	expiry  int64
	window  int
	payload int
}

// clientResult is what a client child prints.
type clientResult struct {
	OK       int     `json:"ok"`
	Failed   int     `json:"failed"`
	Secs     float64 `json:"secs"`
	FirstErr string  `json:"first_err,omitempty"`
	// CPU is the client process's user+system CPU seconds over the run.
	CPU float64 `json:"cpu"`
	// TLS is the negotiated version and key exchange (connect mode).
	TLS string `json:"tls,omitempty"`
	// BadTokenRefused says a CONNECT with a wrong token was refused
	// before the timed section (connect mode): authentication is on.
	BadTokenRefused bool `json:"bad_token_refused,omitempty"`
}

// selfCPU is this process's user + system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tlsConfig is every client's TLS: the server's CA, SNI localhost, TLS 1.3
// as negotiated by default, X25519 only (OpenSSL in Debian 12 has no
// X25519MLKEM768, which Go servers would otherwise pick), no resumption.
func tlsConfig(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no CA certificate in " + caFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: hostName, MinVersion: tls.VersionTLS12,
		CurvePreferences: []tls.CurveID{tls.X25519}}, nil
}

func runClient(o clientOpts) error {
	tc, err := tlsConfig(o.caFile)
	if err != nil {
		return err
	}
	var res clientResult
	var hold []net.Conn
	cpu0 := selfCPU()
	switch o.mode {
	case "idle":
		res, hold = idleClients(o, tc)
	case "connect":
		res = connectLoop(o, tc)
	case "ingest":
		res = ingest(o, tc)
	default:
		return fmt.Errorf("unknown client mode %q", o.mode)
	}
	res.CPU = (selfCPU() - cpu0).Seconds()
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return err
	}
	if hold != nil {
		// Hold the connections until the runner closes stdin.
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		for _, c := range hold {
			_ = c.Close()
		}
	}
	return nil
}

// connectPacket is a device's CONNECT: clean session, its IoT Hub username
// and SAS token.
func connectPacket(id string, se int64, keepAlive uint16) []byte {
	p := packet.Connect{CleanSession: true, KeepAlive: keepAlive, ClientID: []byte(id),
		UsernameFlag: true, Username: []byte(username(id)), PasswordFlag: true, Password: []byte(token(id, se))}
	b, err := p.AppendBinary(nil)
	if err != nil {
		panic(err) // fixed, valid fields
	}
	return b
}

// dialDevice opens TLS, sends CONNECT and checks the CONNACK.
func dialDevice(addr string, tc *tls.Config, connect []byte) (*tls.Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := tls.Client(nc, tc)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if err := c.Handshake(); err != nil {
		c.Close()
		return nil, fmt.Errorf("tls: %w", err)
	}
	if _, err := c.Write(connect); err != nil {
		c.Close()
		return nil, err
	}
	var b [4]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("connack: %w", err)
	}
	var ack packet.Connack
	if err := ack.Decode(b[:]); err != nil {
		c.Close()
		return nil, err
	}
	if ack.ReturnCode != 0 {
		c.Close()
		return nil, fmt.Errorf("connack code %d", ack.ReturnCode)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// idleClients opens o.n device connections (device i = d<i>) with o.workers
// dialers and keeps them.
func idleClients(o clientOpts, tc *tls.Config) (clientResult, []net.Conn) {
	conns := make([]net.Conn, o.n)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= o.n {
					return
				}
				c, err := dialDevice(o.addr, tc, connectPacket(deviceID(i), o.expiry, 1200))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	res := clientResult{Secs: time.Since(start).Seconds(), Failed: int(failed.Load())}
	res.FirstErr, _ = firstErr.Load().(string)
	var hold []net.Conn
	for _, c := range conns {
		if c != nil {
			hold = append(hold, c)
		}
	}
	res.OK = len(hold)
	return res, hold
}

var disconnect = func() []byte {
	b, _ := (&packet.Disconnect{}).AppendBinary(nil)
	return b
}()

// connectLoop makes o.n full device sessions with o.workers concurrent
// dialers: TCP, TLS handshake, CONNECT with SAS, CONNACK, DISCONNECT, and
// the server's close. Worker w uses devices w, w+workers, … (modulo
// o.devices), so no two live connections share an identity.
func connectLoop(o clientOpts, tc *tls.Config) clientResult {
	perDev := make([][]byte, o.devices)
	for i := range perDev {
		perDev[i] = connectPacket(deviceID(i), o.expiry, 60)
	}
	var res clientResult
	bad := packet.Connect{CleanSession: true, KeepAlive: 60, ClientID: []byte(deviceID(0)), UsernameFlag: true,
		Username: []byte(username(deviceID(0))), PasswordFlag: true,
		Password: []byte(sas.NewToken(sas.DeviceResource(hostName, deviceID(0)), []byte("not the device key"), "", time.Unix(o.expiry, 0)).String())}
	badPkt, _ := bad.AppendBinary(nil)
	if c, err := dialDevice(o.addr, tc, badPkt); err == nil {
		c.Close()
	} else {
		res.BadTokenRefused = true
	}
	if c, err := dialDevice(o.addr, tc, perDev[0]); err == nil {
		st := c.ConnectionState()
		res.TLS = tls.VersionName(st.Version) + " " + st.CurveID.String() + " " + tls.CipherSuiteName(st.CipherSuite)
		_, _ = c.Write(disconnect)
		c.Close()
	}
	time.Sleep(100 * time.Millisecond)
	var next atomic.Int64
	var failed, ok atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for w := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev := w
			var buf [64]byte
			for next.Add(1) <= int64(o.n) {
				c, err := dialDevice(o.addr, tc, perDev[dev%o.devices])
				dev += o.workers
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = c.Write(disconnect)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				for {
					if _, err := c.Read(buf[:]); err != nil {
						break
					}
				}
				c.Close()
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	res.OK, res.Failed, res.Secs = int(ok.Load()), int(failed.Load()), time.Since(start).Seconds()
	res.FirstErr, _ = firstErr.Load().(string)
	return res
}

// ingest publishes o.n messages of o.payload bytes at QoS 1 in total, split
// over o.devices connections of hubwire's mqtt client (raw topic
// devices/{id}/messages/events/, o.window in flight each), after a warm-up
// of 2,000 messages (at least 20 per connection). The clock runs from the first publish
// to the last PUBACK.
func ingest(o clientOpts, tc *tls.Config) clientResult {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	clients := make([]*mqtt.Client, o.devices)
	defer func() {
		for _, c := range clients {
			if c != nil {
				cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = c.Close(cctx)
				ccancel()
			}
		}
	}()
	fail := func(err error) clientResult { return clientResult{Failed: 1, FirstErr: err.Error()} }
	for i := range clients {
		id := deviceID(i)
		c, err := mqtt.NewClient(mqtt.Config{
			URL: "tls://" + o.addr, Transport: transport.Config{TLS: tc},
			ClientID: id, Username: username(id), Password: []byte(token(id, o.expiry)),
			CleanSession: true, KeepAlive: 60 * time.Second, InFlight: o.window,
		})
		if err != nil {
			return fail(err)
		}
		if _, err := c.Connect(ctx); err != nil {
			return fail(fmt.Errorf("%s: %w", id, err))
		}
		clients[i] = c
	}
	payload := make([]byte, o.payload)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	run := func(per int) (int, error) {
		var wg sync.WaitGroup
		var acked atomic.Int64
		var firstErr atomic.Value
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := &mqtt.Message{Topic: []byte("devices/" + deviceID(i) + "/messages/events/"), Payload: payload, QoS: packet.QoS1}
				all := make(chan struct{})
				var n atomic.Int64
				done := func(err error) {
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
					} else {
						acked.Add(1)
					}
					if n.Add(1) == int64(per) {
						close(all)
					}
				}
				for range per {
					if err := c.PublishAsync(ctx, m, done); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
				}
				select {
				case <-all:
				case <-ctx.Done():
					firstErr.CompareAndSwap(nil, ctx.Err())
				}
			}()
		}
		wg.Wait()
		err, _ := firstErr.Load().(error)
		return int(acked.Load()), err
	}
	if _, err := run(max(20, 2000/o.devices)); err != nil {
		return fail(fmt.Errorf("warm-up: %w", err))
	}
	per := o.n / o.devices
	start := time.Now()
	n, err := run(per)
	res := clientResult{OK: n, Failed: per*o.devices - n, Secs: time.Since(start).Seconds()}
	if err != nil {
		res.FirstErr = err.Error()
	}
	return res
}
