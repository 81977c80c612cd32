package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/iothub/device"
	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/service"
)

// simDevice is one simulated device.
type simDevice struct {
	id     string
	cs     string
	client *device.Client

	mu  sync.Mutex
	lat latencies // PUBACK latencies, written by the client's reader goroutine
}

// simulation is one "hubwire simulate" run.
type simulation struct {
	devices     []*simDevice
	base        device.Config
	host        string // the external hub's name
	rate        float64
	payloadSize int
	concurrency int

	connected, connectErrs atomic.Int64
	sent, acked, sendErrs  atomic.Int64
	reconnects             atomic.Int64
	connectLat             latencies
	connectMu              sync.Mutex
	firstErr               atomic.Pointer[error]
	connectTime, sendTime  time.Duration
}

func (s *simulation) fail(err error) {
	s.firstErr.CompareAndSwap(nil, &err)
}

// simReport is the summary, also printed by --json.
type simReport struct {
	Target          string  `json:"target"`
	Transport       string  `json:"transport"`
	Devices         int     `json:"devices"`
	RatePerDevice   float64 `json:"ratePerDevice"`
	DurationSeconds float64 `json:"durationSeconds"`

	Connected      int64      `json:"connected"`
	ConnectSeconds float64    `json:"connectSeconds"`
	ConnectsPerSec float64    `json:"connectsPerSecond"`
	ConnectLatency latencyRep `json:"connectLatencyMs"`
	Sent           int64      `json:"sent"`
	Acknowledged   int64      `json:"acknowledged"`
	MessagesPerSec float64    `json:"messagesPerSecond"`
	PubackLatency  latencyRep `json:"pubackLatencyMs"`
	Reconnects     int64      `json:"reconnects"`
	Errors         int64      `json:"errors"`
	FirstError     string     `json:"firstError,omitempty"`
}

// latencyRep holds quantiles in milliseconds.
type latencyRep struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func latencyReport(l *latencies) latencyRep {
	f := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return latencyRep{P50: f(l.quantile(0.5)), P90: f(l.quantile(0.9)), P99: f(l.quantile(0.99)), Max: f(l.max())}
}

func simulateCommand() *command {
	var (
		devices     int
		rate        float64
		duration    = durationFlag(10 * time.Second)
		dev         deviceFlags
		svc         serviceFlags
		external    bool
		prefix      string
		payloadSize int
		concurrency int
		asJSON      bool
		keep        bool
	)
	return &command{
		name:    "simulate",
		summary: "run a fleet of devices from one process and report connect rate, msgs/s and PUBACK latency",
		usage:   "[flags]",
		long: "Connects --devices devices (package iothub/device) and has each send telemetry at QoS 1 at --rate " +
			"messages per second for --duration, then prints a summary: connect rate and latency, messages per " +
			"second, PUBACK latency p50/p90/p99/max, reconnects and errors (--json for scripts). On a terminal a " +
			"live line shows connected devices, msgs/s and errors.\n\n" +
			"By default the fleet runs against an IoT Hub emulator in this process (in memory, loopback ports). " +
			"With --connection-string, or --external to use $" + envServiceConnStr + ", it runs against that hub " +
			"(a real one or a 'hubwire emulator'): the devices {prefix}1, {prefix}2, … are registered through the service API " +
			"when missing and deleted at the end unless --keep.",
		example: "hubwire simulate --devices 100 --rate 1 --duration 30s\n" +
			"hubwire simulate --devices 1000 --rate 5 --duration 1m --transport mqtt-ws --json\n" +
			"hubwire simulate --external --devices 10 --rate 1 --duration 20s",
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&devices, "devices", 10, "`number` of devices")
			fs.Float64Var(&rate, "rate", 1, "telemetry messages per second per device, a `rate`")
			fs.Var(duration, "duration", "how long the devices send")
			fs.StringVar(&dev.transport, "transport", device.TransportMQTT, "`transport`: mqtt (TLS) or mqtt-ws (WebSocket)")
			fs.StringVar(&svc.connStr, "connection-string", "", "service connection `string` of an external hub (\"-\": read from stdin)")
			fs.BoolVar(&external, "external", false, "run against the hub of $"+envServiceConnStr+" instead of an in-process emulator")
			fs.StringVar(&svc.caFile, "ca", "", "external hub: PEM `file` of a CA to trust (default $"+envCAFile+")")
			fs.StringVar(&svc.endpoint, "endpoint", "", "external hub: service API base `URL` (default $"+envServiceEndpoint+")")
			fs.StringVar(&dev.address, "address", "", "external hub: `host:port` the devices dial (default $"+envMQTTAddress+" or $"+envWSSAddress+")")
			fs.StringVar(&prefix, "prefix", "sim-", "device id `prefix`")
			fs.IntVar(&payloadSize, "payload-size", 0, "pad each JSON message body to this many `bytes`")
			fs.IntVar(&concurrency, "connect-concurrency", 64, "`number` of connection attempts in flight at once")
			fs.BoolVar(&asJSON, "json", false, "print the summary as JSON")
			fs.BoolVar(&keep, "keep", false, "external hub: keep the devices registered at the end")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			switch {
			case devices < 1 || devices > 100000:
				return usagef("--devices %d: want 1 to 100000", devices)
			case rate <= 0 || rate > 10000:
				return usagef("--rate %g: want more than 0 and at most 10000 messages per second per device", rate)
			case duration.d <= 0:
				return usagef("--duration must be positive")
			case payloadSize < 0 || payloadSize > device.MaxMessageSize:
				return usagef("--payload-size %d: want 0 to %d", payloadSize, device.MaxMessageSize)
			case concurrency < 1:
				return usagef("--connect-concurrency must be at least 1")
			case dev.transport != device.TransportMQTT && dev.transport != device.TransportMQTTWebSocket:
				return usagef("--transport %q: want mqtt or mqtt-ws", dev.transport)
			}
			s := &simulation{rate: rate, payloadSize: payloadSize, concurrency: concurrency}
			rep := simReport{Transport: dev.transport, Devices: devices, RatePerDevice: rate, DurationSeconds: duration.d.Seconds()}
			ids := make([]string, devices)
			for i := range ids {
				ids[i] = prefix + strconv.Itoa(i+1)
			}
			if svc.connStr != "" || external {
				cleanup, err := s.prepareExternal(ctx, a, &svc, &dev, ids, keep)
				if err != nil {
					return err
				}
				defer cleanup()
				rep.Target = "hub " + s.host
			} else {
				hub, err := emulator.Start(ctx, emulator.Config{MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0"})
				if err != nil {
					return err
				}
				defer hub.Close()
				if err := s.prepareEmulator(ctx, hub, dev.transport, ids); err != nil {
					return err
				}
				rep.Target = "an in-process emulator"
			}
			if !asJSON {
				fmt.Fprintf(a.stdout, "hubwire simulate: %d device%s over %s against %s, %g msg/s each for %s\n",
					devices, plural(devices), dev.transport, rep.Target, rate, duration)
			}
			var progress *progressLine
			if a.isTTY != nil && a.isTTY() {
				t0 := time.Now()
				var lastAcked int64
				lastT := t0
				progress = startProgress(a.stdout, func() string {
					now := time.Now()
					acked := s.acked.Load()
					r := float64(acked-lastAcked) / now.Sub(lastT).Seconds()
					lastAcked, lastT = acked, now
					return fmt.Sprintf("%5.1fs  connected %d/%d  %.0f msg/s  acknowledged %d  errors %d  reconnects %d",
						now.Sub(t0).Seconds(), s.connected.Load(), devices, r, acked, s.connectErrs.Load()+s.sendErrs.Load(), s.reconnects.Load())
				})
			}
			runErr := s.run(ctx, duration.d)
			if progress != nil {
				progress.stop()
			}
			s.fill(&rep)
			if asJSON {
				if err := writeJSON(a.stdout, rep); err != nil {
					return err
				}
			} else {
				printSimReport(a.stdout, &rep)
			}
			switch {
			case runErr != nil:
				return runErr
			case rep.Connected < int64(devices):
				return fmt.Errorf("%d of %d devices did not connect; the first error: %s", int64(devices)-rep.Connected, devices, rep.FirstError)
			case rep.Errors > 0:
				return fmt.Errorf("%d errors; the first: %s", rep.Errors, rep.FirstError)
			}
			return nil
		},
	}
}

// prepareEmulator registers the fleet on an in-process hub.
func (s *simulation) prepareEmulator(ctx context.Context, hub *emulator.Hub, transport string, ids []string) error {
	addr := hub.MQTTAddr().String()
	if transport == device.TransportMQTTWebSocket {
		addr = hub.HTTPSAddr().String()
	}
	s.base = device.Config{Transport: transport, Address: addr, RootCAs: hub.CertPool()}
	for _, id := range ids {
		if _, err := hub.CreateDevice(ctx, emulator.Device{DeviceID: id}); err != nil {
			return fmt.Errorf("registering %s: %w", id, err)
		}
		cs, err := hub.DeviceConnectionString(id)
		if err != nil {
			return err
		}
		s.devices = append(s.devices, &simDevice{id: id, cs: cs})
	}
	return nil
}

// prepareExternal registers the fleet (when missing) through the service
// API of an external hub, and returns what deletes the devices it made.
func (s *simulation) prepareExternal(ctx context.Context, a *app, svc *serviceFlags, dev *deviceFlags, ids []string, keep bool) (func(), error) {
	c, err := svc.client(a)
	if err != nil {
		return nil, err
	}
	pool, err := rootCAs(a.orEnv(svc.caFile, envCAFile))
	if err != nil {
		return nil, err
	}
	addrEnv := envMQTTAddress
	if dev.transport == device.TransportMQTTWebSocket {
		addrEnv = envWSSAddress
	}
	s.base = device.Config{Transport: dev.transport, Address: a.orEnv(dev.address, addrEnv), RootCAs: pool}
	s.host = c.HostName()
	var created []string
	cleanup := func() {
		if keep {
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for _, id := range created {
			c.DeleteDevice(dctx, id, "")
		}
	}
	for _, id := range ids {
		d, err := c.GetDevice(ctx, id)
		if errors.Is(err, service.ErrDeviceNotFound) {
			d, err = c.CreateDevice(ctx, &service.Device{DeviceID: id})
			if err == nil {
				created = append(created, id)
			}
		}
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("registering %s: %w", id, err)
		}
		cs := identityConnectionString(c.HostName(), id, "", d.Authentication)
		if cs == "" {
			cleanup()
			return nil, fmt.Errorf("device %s does not use SAS keys", id)
		}
		s.devices = append(s.devices, &simDevice{id: id, cs: cs})
	}
	return cleanup, nil
}

// run connects the fleet, sends for duration and closes it.
func (s *simulation) run(ctx context.Context, duration time.Duration) error {
	defer s.closeAll()
	t0 := time.Now()
	sem := make(chan struct{}, s.concurrency)
	var wg sync.WaitGroup
	for _, d := range s.devices {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.connect(ctx, d)
		}()
	}
	wg.Wait()
	s.connectTime = time.Since(t0)
	if ctx.Err() != nil {
		return nil
	}

	t1 := time.Now()
	end := t1.Add(duration)
	for i, d := range s.devices {
		if d.client == nil {
			continue
		}
		// Devices start spread over one period, as a fleet does, rather
		// than all sending in the same instant.
		first := t1.Add(time.Duration(float64(i) / float64(len(s.devices)) / s.rate * float64(time.Second)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.send(ctx, d, first, end)
		}()
	}
	wg.Wait()
	// The acknowledgements still due, for at most 10 s.
	deadline := time.Now().Add(10 * time.Second)
	for s.acked.Load()+s.sendErrs.Load() < s.sent.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	s.sendTime = time.Since(t1)
	return nil
}

func (s *simulation) connect(ctx context.Context, d *simDevice) {
	cfg := s.base
	cfg.ConnectionString = d.cs
	cfg.ClientType = "hubwire-simulate"
	cfg.OnStateChange = func(from, to device.State, err error) {
		if from == device.StateConnected && to == device.StateReconnecting {
			s.reconnects.Add(1)
		}
	}
	c, err := device.New(cfg)
	if err != nil {
		s.connectErrs.Add(1)
		s.fail(fmt.Errorf("%s: %w", d.id, err))
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := c.Connect(cctx); err != nil {
		closeDevice(c)
		if ctx.Err() == nil {
			s.connectErrs.Add(1)
			s.fail(fmt.Errorf("%s: connecting: %w%s", d.id, err, caHint(err)))
		}
		return
	}
	took := time.Since(t0)
	s.connectMu.Lock()
	s.connectLat.add(took)
	s.connectMu.Unlock()
	d.client = c
	s.connected.Add(1)
}

// send has one device send at the rate from start until end, or until
// ctx ends. Which messages are sent depends on the schedule only, not on
// how late a goroutine runs: every message due before end is sent.
func (s *simulation) send(ctx context.Context, d *simDevice, start, end time.Time) {
	m := &device.Message{Properties: iothub.Properties{ContentType: "application/json", ContentEncoding: "utf-8"}}
	var body []byte
	for n := 1; ; n++ {
		due := start.Add(time.Duration(float64(n-1) / s.rate * float64(time.Second)))
		if !due.Before(end) {
			return
		}
		if wait := time.Until(due); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
		}
		body = append(body[:0], `{"deviceId":"`...)
		body = append(body, d.id...)
		body = append(body, `","seq":`...)
		body = strconv.AppendInt(body, int64(n), 10)
		body = append(body, `,"temperature":21.5`...)
		if pad := s.payloadSize - len(body) - len(`,"pad":""}`); pad > 0 {
			body = append(body, `,"pad":"`...)
			body = append(body, strings.Repeat("x", pad)...)
			body = append(body, '"')
		}
		body = append(body, '}')
		m.Payload = body
		t0 := time.Now()
		s.sent.Add(1)
		err := d.client.SendAsync(ctx, m, func(err error) {
			if err != nil {
				s.sendErrs.Add(1)
				s.fail(fmt.Errorf("%s: %w", d.id, err))
				return
			}
			took := time.Since(t0)
			d.mu.Lock()
			d.lat.add(took)
			d.mu.Unlock()
			s.acked.Add(1)
		})
		if err != nil {
			if ctx.Err() != nil {
				s.sent.Add(-1) // only the wait for room was cut short
				return
			}
			s.sendErrs.Add(1)
			s.fail(fmt.Errorf("%s: %w", d.id, err))
		}
	}
}

func (s *simulation) closeAll() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.concurrency)
	for _, d := range s.devices {
		if d.client == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			closeDevice(d.client)
		}()
	}
	wg.Wait()
}

// fill completes the report from the counters.
func (s *simulation) fill(rep *simReport) {
	rep.Connected = s.connected.Load()
	rep.ConnectSeconds = s.connectTime.Seconds()
	if s.connectTime > 0 {
		rep.ConnectsPerSec = float64(rep.Connected) / s.connectTime.Seconds()
	}
	s.connectMu.Lock()
	rep.ConnectLatency = latencyReport(&s.connectLat)
	s.connectMu.Unlock()
	rep.Sent = s.sent.Load()
	rep.Acknowledged = s.acked.Load()
	if s.sendTime > 0 {
		rep.MessagesPerSec = float64(rep.Acknowledged) / s.sendTime.Seconds()
	}
	var all latencies
	for _, d := range s.devices {
		d.mu.Lock()
		all.d = append(all.d, d.lat.d...)
		d.mu.Unlock()
	}
	rep.PubackLatency = latencyReport(&all)
	rep.Reconnects = s.reconnects.Load()
	rep.Errors = s.connectErrs.Load() + s.sendErrs.Load()
	if p := s.firstErr.Load(); p != nil {
		rep.FirstError = oneLine((*p).Error())
	}
}

func printSimReport(w io.Writer, r *simReport) {
	lat := func(l latencyRep) string {
		return fmt.Sprintf("p50 %.2f ms   p90 %.2f ms   p99 %.2f ms   max %.2f ms", l.P50, l.P90, l.P99, l.Max)
	}
	fmt.Fprintf(w, "\n  %-18s %d of %d in %.2f s (%.1f connects/s)\n", "devices connected", r.Connected, r.Devices, r.ConnectSeconds, r.ConnectsPerSec)
	fmt.Fprintf(w, "  %-18s %s\n", "connect latency", lat(r.ConnectLatency))
	fmt.Fprintf(w, "  %-18s %d sent, %d acknowledged (%.1f msg/s)\n", "messages", r.Sent, r.Acknowledged, r.MessagesPerSec)
	fmt.Fprintf(w, "  %-18s %s\n", "PUBACK latency", lat(r.PubackLatency))
	fmt.Fprintf(w, "  %-18s %d\n", "reconnects", r.Reconnects)
	fmt.Fprintf(w, "  %-18s %d\n", "errors", r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(w, "  %-18s %s\n", "first error", r.FirstError)
	}
}
