package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/iothub/device"
)

// eventPrinter writes the events of "hubwire listen", one at a time, and
// counts them.
type eventPrinter struct {
	mu     sync.Mutex
	w      io.Writer
	asJSON bool
	n      int
	limit  int // stop after this many; 0: no limit
	full   chan struct{}
}

// listenEvent is one line of "hubwire listen --json".
type listenEvent struct {
	Type       string            `json:"type"` // c2d, desired, method
	Time       time.Time         `json:"time"`
	Payload    json.RawMessage   `json:"payload,omitempty"`
	Body       string            `json:"body,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	Version    int64             `json:"version,omitempty"`
	Full       bool              `json:"full,omitempty"`
	Resync     bool              `json:"resync,omitempty"`
	Method     string            `json:"method,omitempty"`
	Status     int               `json:"status,omitempty"`
	Response   json.RawMessage   `json:"response,omitempty"`
}

// print prints an event, or reports false once --count events were
// printed.
func (p *eventPrinter) print(e listenEvent, text string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limit > 0 && p.n >= p.limit {
		return false
	}
	p.n++
	if p.asJSON {
		b, _ := json.Marshal(e)
		fmt.Fprintf(p.w, "%s\n", b)
	} else {
		fmt.Fprintf(p.w, "%s  %-7s  %s\n", e.Time.Format("15:04:05.000"), e.Type, text)
	}
	if p.limit > 0 && p.n == p.limit {
		close(p.full)
	}
	return true
}

// c2dProperties flattens a C2D message's properties for printing.
func c2dProperties(p iothub.Properties) map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{
		"message-id": p.MessageID, "correlation-id": p.CorrelationID, "user-id": p.UserID, "to": p.To,
		"content-type": p.ContentType, "content-encoding": p.ContentEncoding, "expiry": p.Expiry, "ack": p.Ack,
	} {
		if v != "" {
			m[k] = v
		}
	}
	for _, kv := range p.App {
		m[kv.Key] = kv.Value
	}
	return m
}

func formatProperties(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}

// rawOrString returns b as JSON if it is JSON, else as a JSON string.
func rawOrString(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	s, _ := json.Marshal(string(b))
	return s
}

func listenCommand() *command {
	var (
		dev           deviceFlags
		methodStatus  int
		methodPayload string
		count         int
		duration      = durationFlag(0)
		timeout       = durationFlag(30 * time.Second)
		asJSON        bool
	)
	return &command{
		name:    "listen",
		summary: "act as a device: print C2D messages, desired updates and method calls, answering methods",
		usage:   "[flags]",
		long: "Connects as the device (or module) of a connection string and prints what the hub sends it: " +
			"cloud-to-device messages (acknowledged once printed), desired-property updates (the first line is " +
			"the full desired section) and direct-method calls, each answered with --method-status and " +
			"--method-payload. Runs until Ctrl-C, --duration or --count events.",
		example: "hubwire listen\n" +
			"hubwire listen --method-status 200 --method-payload '{\"rebooting\":true}' --count 3 --json",
		flags: func(fs *flag.FlagSet) {
			dev.register(fs)
			fs.IntVar(&methodStatus, "method-status", 200, "`status` answered to every direct method")
			fs.StringVar(&methodPayload, "method-payload", "", "JSON `payload` answered to every direct method (default none)")
			fs.IntVar(&count, "count", 0, "stop after this `number` of events (0: no limit)")
			fs.Var(duration, "duration", "stop after this `duration`")
			fs.Var(timeout, "timeout", "bound on connecting")
			fs.BoolVar(&asJSON, "json", false, "one JSON object a line")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			if count < 0 || duration.d < 0 || timeout.d <= 0 {
				return usagef("--count, --duration and --timeout must be positive")
			}
			var answer []byte
			if methodPayload != "" {
				if !json.Valid([]byte(methodPayload)) {
					return usagef("--method-payload is not JSON")
				}
				answer = []byte(methodPayload)
			}
			cfg, err := dev.config(a)
			if err != nil {
				return err
			}
			p := &eventPrinter{w: a.stdout, asJSON: asJSON, limit: count, full: make(chan struct{})}
			cfg.OnC2D = func(ctx context.Context, m *device.C2DMessage) {
				props := c2dProperties(m.Properties)
				if !p.print(listenEvent{Type: "c2d", Time: time.Now(), Body: string(m.Payload), Properties: props},
					fmt.Sprintf("%q %s", m.Payload, formatProperties(props))) {
					// Past --count: hold the message unacknowledged until
					// the client closes, so the hub keeps it for the next
					// listener instead of completing it unseen.
					<-ctx.Done()
				}
			}
			cfg.OnDesired = func(u device.DesiredUpdate) {
				patch, _ := json.Marshal(u.Patch)
				kind := ""
				switch {
				case u.Full:
					kind = " (full)"
				case u.Resync:
					kind = " (resync)"
				}
				p.print(listenEvent{Type: "desired", Time: time.Now(), Version: u.Version, Full: u.Full, Resync: u.Resync, Payload: patch},
					fmt.Sprintf("$version %d%s %s", u.Version, kind, patch))
			}
			cfg.DefaultMethod = func(ctx context.Context, req iothub.MethodRequest) (int, []byte, error) {
				shown := string(req.Payload)
				if shown == "" {
					shown = "(no payload)"
				}
				resp := string(answer)
				if resp == "" {
					resp = "(no payload)"
				}
				p.print(listenEvent{Type: "method", Time: time.Now(), Method: req.Name, Payload: rawOrString(req.Payload), Status: methodStatus, Response: answer},
					fmt.Sprintf("%s %s -> %d %s", req.Name, shown, methodStatus, resp))
				return methodStatus, answer, nil
			}
			c, err := connectDevice(ctx, cfg, timeout.d)
			if err != nil {
				return err
			}
			who := c.DeviceID()
			if c.ModuleID() != "" {
				who += "/" + c.ModuleID()
			}
			if !asJSON {
				fmt.Fprintf(a.stderr, "listening as %s over %s (Ctrl-C stops)\n", who, dev.transport)
			}
			var stop <-chan time.Time
			if duration.d > 0 {
				stop = time.After(duration.d)
			}
			var runErr error
			select {
			case <-ctx.Done():
			case <-stop:
			case <-p.full:
			case <-c.Done():
				runErr = c.Err()
			}
			if err := closeDevice(c); err != nil && runErr == nil {
				runErr = err
			}
			return runErr
		},
	}
}
