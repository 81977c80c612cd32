package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/iothub/device"
)

// connectDevice creates and connects a device client within timeout.
func connectDevice(ctx context.Context, cfg device.Config, timeout time.Duration) (*device.Client, error) {
	c, err := device.New(cfg)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.Connect(cctx); err != nil {
		closeDevice(c)
		return nil, fmt.Errorf("connecting: %w%s", err, caHint(err))
	}
	return c, nil
}

// caHint suggests --ca when a TLS handshake failed on an unknown CA.
func caHint(err error) string {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return " (trust the hub's CA with --ca or $" + envCAFile + ")"
	}
	return ""
}

// closeDevice closes c, waiting at most 5 s for messages in flight.
func closeDevice(c *device.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil && !errors.Is(err, device.ErrClosed) {
		return fmt.Errorf("closing: %w", err)
	}
	return nil
}

// seqPlaceholder in a payload or message id is replaced by the message's
// number (1, 2, …).
const seqPlaceholder = "{seq}"

func sendCommand() *command {
	var (
		dev         deviceFlags
		props       propertyList
		messageID   string
		contentType string
		count       int
		rate        float64
		duration    = durationFlag(0)
		timeout     = durationFlag(30 * time.Second)
		qos         int
	)
	return &command{
		name:    "send",
		summary: "send telemetry as a device: one message, a number of them or a steady rate",
		usage:   "[flags] [PAYLOAD]",
		long: "Connects as the device (or module) of a connection string and sends device-to-cloud messages at " +
			"QoS 1, each acknowledged by the hub. PAYLOAD is the body (\"-\" reads the standard input, @FILE a " +
			"file); without one the body is {\"seq\":N}. Every " + seqPlaceholder + " in the payload and in --message-id " +
			"becomes the message's number. A payload that is JSON is sent with content type application/json and " +
			"encoding utf-8, so IoT Hub routing queries can read it.\n\n" +
			"By default one message is sent. --count sends that many as fast as they are acknowledged, --rate " +
			"sends at a steady rate (until --count, --duration or Ctrl-C), and a summary with the acknowledgement " +
			"latency is printed. The connection string comes from --connection-string or $" + envDeviceConnStr + ".",
		example: "hubwire send '{\"temperature\":21.5}' --property alert=false\n" +
			"hubwire send --rate 10 --duration 1m --transport mqtt-ws '{\"seq\":{seq}}'",
		flags: func(fs *flag.FlagSet) {
			dev.register(fs)
			fs.Var(&props, "property", "application property `key=value` (repeatable)")
			fs.StringVar(&messageID, "message-id", "", "message `id` ("+seqPlaceholder+" is the message number)")
			fs.StringVar(&contentType, "content-type", "", "content `type` (default application/json for a JSON payload)")
			fs.IntVar(&count, "count", 0, "`number` of messages (default 1, or no limit with --rate or --duration)")
			fs.Float64Var(&rate, "rate", 0, "messages per second, a `rate` (0: each as soon as the previous one is acknowledged)")
			fs.Var(duration, "duration", "stop sending after this `duration`")
			fs.Var(timeout, "timeout", "bound on connecting and on each acknowledgement")
			fs.IntVar(&qos, "qos", 1, "MQTT `QoS`: 1 (acknowledged) or 0 (fire and forget)")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if len(args) > 1 {
				return usagef("unexpected argument %q (quote the payload)", args[1])
			}
			switch {
			case count < 0:
				return usagef("--count must not be negative")
			case rate < 0:
				return usagef("--rate must not be negative")
			case duration.d < 0 || timeout.d <= 0:
				return usagef("--duration and --timeout must be positive")
			case qos != 0 && qos != 1:
				return usagef("--qos %d: IoT Hub takes 0 or 1", qos)
			}
			if count == 0 && rate == 0 && duration.d == 0 {
				count = 1
			}
			// The connection string first: with both from the standard
			// input it is the first line, the payload the rest.
			cfg, err := dev.config(a)
			if err != nil {
				return err
			}
			payload := []byte(`{"seq":` + seqPlaceholder + `}`)
			if len(args) == 1 {
				if payload, err = a.payloadArg(args[0]); err != nil {
					return err
				}
			}
			if contentType == "" && json.Valid(bytes.ReplaceAll(payload, []byte(seqPlaceholder), []byte("1"))) {
				contentType = "application/json"
			}
			c, err := connectDevice(ctx, cfg, timeout.d)
			if err != nil {
				return err
			}
			s := &sender{
				c: c, payload: payload, props: props, messageID: messageID, contentType: contentType,
				qos0: qos == 0, timeout: timeout.d, stats: newLatencies(),
			}
			runErr := s.run(ctx, count, rate, duration.d, a)
			closeErr := closeDevice(c)
			s.report(a.stdout, c.DeviceID(), c.ModuleID())
			if runErr != nil {
				return runErr
			}
			if s.errs > 0 {
				return fmt.Errorf("%d of %d messages failed; the first: %v", s.errs, s.sent, s.firstErr)
			}
			return closeErr
		},
	}
}

// sender sends the messages of one "hubwire send".
type sender struct {
	c                      *device.Client
	payload                []byte
	props                  propertyList
	messageID, contentType string
	qos0                   bool
	timeout                time.Duration
	mu                     sync.Mutex
	sent, acked, errs      int
	bytes                  int
	firstErr               error
	stats                  *latencies
	start, end             time.Time
}

func (s *sender) message(n int) *device.Message {
	seq := []byte(strconv.Itoa(n))
	m := &device.Message{
		Payload: bytes.ReplaceAll(s.payload, []byte(seqPlaceholder), seq),
		QoS0:    s.qos0,
		Properties: iothub.Properties{
			MessageID:   string(bytes.ReplaceAll([]byte(s.messageID), []byte(seqPlaceholder), seq)),
			ContentType: s.contentType,
		},
	}
	if s.contentType == "application/json" {
		m.Properties.ContentEncoding = "utf-8"
	}
	for _, kv := range s.props {
		m.Properties.Add(kv[0], kv[1])
	}
	return m
}

func (s *sender) done(t0 time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs++
		if s.firstErr == nil {
			s.firstErr = err
		}
		return
	}
	s.acked++
	s.stats.add(time.Since(t0))
}

// run sends count messages (0: no limit) at rate (0: one after the other)
// until duration (0: no limit) or ctx ends.
func (s *sender) run(ctx context.Context, count int, rate float64, duration time.Duration, a *app) error {
	s.start = time.Now()
	defer func() { s.end = time.Now() }()
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	var progress *progressLine
	if (count != 1 || rate > 0) && a.isTTY != nil && a.isTTY() {
		progress = startProgress(a.stdout, func() string {
			s.mu.Lock()
			defer s.mu.Unlock()
			el := time.Since(s.start).Seconds()
			return fmt.Sprintf("sent %d, acknowledged %d, %.1f msg/s, errors %d", s.sent, s.acked, float64(s.acked)/el, s.errs)
		})
		defer progress.stop()
	}
	var wg sync.WaitGroup
	defer func() {
		// The acknowledgements still due, within the timeout; Close fails
		// the rest.
		all := make(chan struct{})
		go func() { wg.Wait(); close(all) }()
		select {
		case <-all:
		case <-time.After(s.timeout):
		}
	}()
	for n := 1; count == 0 || n <= count; n++ {
		if rate > 0 {
			due := s.start.Add(time.Duration(float64(n-1) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return nil
				}
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		m := s.message(n)
		s.mu.Lock()
		s.sent++
		s.bytes += len(m.Payload)
		s.mu.Unlock()
		t0 := time.Now()
		if rate == 0 {
			// One after the other: each Send returns with its PUBACK.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
			err := s.c.Send(sctx, m)
			cancel()
			s.done(t0, err)
			continue
		}
		wg.Add(1)
		err := s.c.SendAsync(ctx, m, func(err error) {
			s.done(t0, err)
			wg.Done()
		})
		if err != nil {
			wg.Done()
			if ctx.Err() != nil {
				s.mu.Lock()
				s.sent--
				s.mu.Unlock()
				return nil
			}
			s.done(t0, err)
		}
	}
	return nil
}

func (s *sender) report(w io.Writer, deviceID, moduleID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	who := deviceID
	if moduleID != "" {
		who += "/" + moduleID
	}
	what := "acknowledged"
	if s.qos0 {
		what = "written (QoS 0)"
	}
	if s.sent == 1 && s.errs == 0 {
		fmt.Fprintf(w, "sent 1 message (%d byte%s) as %s, %s in %s\n", s.bytes, plural(s.bytes), who, what, ms(s.stats.max()))
		return
	}
	el := s.end.Sub(s.start)
	fmt.Fprintf(w, "sent %d messages (%d bytes) as %s in %.2f s: %d %s (%.1f msg/s), %d errors\n",
		s.sent, s.bytes, who, el.Seconds(), s.acked, what, float64(s.acked)/el.Seconds(), s.errs)
	if s.stats.n() > 0 {
		fmt.Fprintf(w, "latency: p50 %s, p90 %s, p99 %s, max %s\n", ms(s.stats.quantile(0.5)), ms(s.stats.quantile(0.9)), ms(s.stats.quantile(0.99)), ms(s.stats.max()))
	}
}
