package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/hubwire/hubwire/iothub/service"
)

// monitorEvent is one line of "hubwire monitor --json", in the shape of
// "az iot hub monitor-events" output.
type monitorEvent struct {
	SequenceNumber   int64             `json:"sequenceNumber"`
	EnqueuedTime     time.Time         `json:"enqueuedTime"`
	Origin           string            `json:"origin"`
	Module           string            `json:"module,omitempty"`
	Payload          json.RawMessage   `json:"payload"`
	Properties       map[string]string `json:"properties,omitempty"`
	SystemProperties map[string]string `json:"systemProperties,omitempty"`
}

// printableBody returns the body as text, or a note for binary bodies.
func printableBody(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return fmt.Sprintf("(%d bytes of binary)", len(b))
}

func monitorCommand() *command {
	var (
		svc      serviceFlags
		deviceID string
		moduleID string
		from     string
		count    int
		duration = durationFlag(0)
		system   bool
		asJSON   bool
		noFollow bool
		conns    bool
	)
	return &command{
		name:    "monitor",
		summary: "print the telemetry the hub receives, as it arrives (emulator)",
		usage:   "[flags]",
		long: "Prints device-to-cloud messages from the hub's telemetry log, like 'az iot hub monitor-events': " +
			"each with its sequence number, enqueued time, sender, body and application properties (--system " +
			"adds the system properties). It starts at the newest message by default (--from earliest or a " +
			"sequence number to replay) and follows the log until Ctrl-C, --count or --duration. It reads the " +
			"emulator's own telemetry endpoint (package iothub/service); a real hub serves telemetry over AMQP instead.",
		example: "hubwire monitor\nhubwire monitor --device dev1 --from earliest --count 10 --json\nhubwire monitor --connections",
		flags: func(fs *flag.FlagSet) {
			svc.register(fs)
			fs.StringVar(&deviceID, "device", "", "only messages from device `id`")
			fs.StringVar(&moduleID, "module", "", "with --device: only messages from module `id`")
			fs.StringVar(&from, "from", "latest", "`position` to start at: latest, earliest or a sequence number")
			fs.IntVar(&count, "count", 0, "stop after this `number` of messages (0: no limit)")
			fs.Var(duration, "duration", "stop after this `duration`")
			fs.BoolVar(&system, "system", false, "also print the system properties")
			fs.BoolVar(&asJSON, "json", false, "one JSON object a line")
			fs.BoolVar(&noFollow, "no-follow", false, "stop at the end of the log instead of waiting for more")
			fs.BoolVar(&conns, "connections", false, "print connection events (connected, disconnected and why) as they happen, instead of telemetry")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			opts := service.StreamOptions{DeviceID: deviceID, ModuleID: moduleID, Follow: !noFollow}
			switch from {
			case "latest":
				opts.From = service.FromLatest
			case "earliest":
				opts.From = service.FromEarliest
			default:
				n, err := strconv.ParseInt(from, 10, 64)
				if err != nil || n < 0 {
					return usagef("--from %q: want latest, earliest or a sequence number", from)
				}
				opts.From = service.FromSequence(n)
			}
			if conns && (from != "latest" || noFollow) {
				return usagef("connection events are live only: --connections takes neither --from nor --no-follow")
			}
			if moduleID != "" && deviceID == "" {
				return usagef("--module needs --device")
			}
			if count < 0 || duration.d < 0 {
				return usagef("--count and --duration must not be negative")
			}
			c, err := svc.client(a)
			if err != nil {
				return err
			}
			if duration.d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration.d)
				defer cancel()
			}
			what := "telemetry"
			if conns {
				what = "connections"
			}
			if !asJSON {
				fmt.Fprintf(a.stderr, "monitoring %s of %s from %s (Ctrl-C stops)\n", what, c.HostName(), from)
			}
			if conns {
				return monitorConnections(ctx, a, c, opts, count, asJSON)
			}
			n := 0
			for m, err := range c.Telemetry(ctx, opts) {
				if err != nil {
					if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
						return nil
					}
					return err
				}
				if asJSON {
					e := monitorEvent{SequenceNumber: m.SequenceNumber, EnqueuedTime: m.EnqueuedTime, Origin: m.DeviceID, Module: m.ModuleID,
						Payload: rawOrString(m.Body), Properties: m.Properties}
					if e.Payload == nil {
						e.Payload = json.RawMessage(`""`)
					}
					if system {
						e.SystemProperties = m.SystemProperties
					}
					b, err := json.Marshal(e)
					if err != nil {
						return err
					}
					fmt.Fprintf(a.stdout, "%s\n", b)
				} else {
					who := m.DeviceID
					if m.ModuleID != "" {
						who += "/" + m.ModuleID
					}
					fmt.Fprintf(a.stdout, "#%d %s %s  %s", m.SequenceNumber, m.EnqueuedTime.UTC().Format("15:04:05.000"), who, printableBody(m.Body))
					if len(m.Properties) > 0 {
						fmt.Fprintf(a.stdout, "  [%s]", formatProperties(m.Properties))
					}
					fmt.Fprintln(a.stdout)
					if system {
						fmt.Fprintf(a.stdout, "    system: %s\n", formatProperties(m.SystemProperties))
					}
				}
				n++
				if count > 0 && n >= count {
					return nil
				}
			}
			return nil
		},
	}
}

// monitorConnections prints the emulator's connection events.
func monitorConnections(ctx context.Context, a *app, c *service.Client, opts service.StreamOptions, count int, asJSON bool) error {
	n := 0
	for e, err := range c.ConnectionEvents(ctx, opts) {
		if err != nil {
			if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
				return nil
			}
			return err
		}
		if asJSON {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s\n", b)
		} else {
			who := e.DeviceID
			if e.ModuleID != "" {
				who += "/" + e.ModuleID
			}
			fmt.Fprintf(a.stdout, "#%d %s %s  %s", e.SequenceNumber, e.Time.UTC().Format("15:04:05.000"), who, e.Event)
			if e.Reason != "" {
				fmt.Fprintf(a.stdout, " (%s)", e.Reason)
			}
			fmt.Fprintln(a.stdout)
		}
		n++
		if count > 0 && n >= count {
			return nil
		}
	}
	return nil
}
