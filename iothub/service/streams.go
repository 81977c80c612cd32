package service

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxStreamLine bounds one NDJSON line of a stream: a 256 KB message in
// base64 with its properties fits.
const maxStreamLine = 1 << 20

// Stream start positions for StreamOptions.From.
const (
	FromEarliest = "earliest"
	FromLatest   = "latest"
)

// FromSequence returns the StreamOptions.From that starts a stream at the
// given sequence number.
func FromSequence(n int64) string { return strconv.FormatInt(n, 10) }

// StreamOptions selects what a telemetry or connection-event stream yields.
type StreamOptions struct {
	// From is where the stream starts: FromEarliest (the default when
	// empty), FromLatest (only what arrives from now on) or FromSequence(n)
	// (the entry with sequence number n and those after it).
	From string
	// DeviceID and ModuleID, if set, keep only that identity's entries.
	DeviceID, ModuleID string
	// Follow keeps the stream open, yielding entries as they arrive, until
	// ctx ends or the loop stops. Without it the stream ends at the
	// current tail.
	Follow bool
}

func (o StreamOptions) values() url.Values {
	q := url.Values{}
	if o.From != "" {
		q.Set("from", o.From)
	}
	if o.DeviceID != "" {
		q.Set("deviceId", o.DeviceID)
	}
	if o.ModuleID != "" {
		q.Set("moduleId", o.ModuleID)
	}
	q.Set("follow", strconv.FormatBool(o.Follow))
	return q
}

// TelemetryMessage is one device-to-cloud message from the emulator's
// telemetry log, in the shape of an Event Hubs-compatible event.
type TelemetryMessage struct {
	// SequenceNumber orders the log (the first entry is 0, as in Event Hubs).
	SequenceNumber int64 `json:"sequenceNumber"`
	// EnqueuedTime is when the hub accepted the message.
	EnqueuedTime time.Time `json:"enqueuedTime"`
	// DeviceID and ModuleID name the sender.
	DeviceID string `json:"deviceId"`
	ModuleID string `json:"moduleId,omitempty"`
	// Body is the payload.
	Body []byte `json:"body"`
	// Properties are the application properties.
	Properties map[string]string `json:"properties,omitempty"`
	// SystemProperties are the message's system properties and those the
	// hub stamps, by their Event Hubs names: message-id, correlation-id,
	// content-type, content-encoding, iothub-connection-device-id,
	// iothub-connection-module-id, iothub-enqueuedtime, …
	SystemProperties map[string]string `json:"systemProperties,omitempty"`
}

// Telemetry streams the emulator's telemetry log (GET
// /emulator/telemetry as NDJSON). An error ends the sequence, yielded with
// a nil message; so does ctx ending (its error is yielded unless the loop
// has already stopped). The emulator's own endpoint: a real hub serves
// telemetry on its Event Hubs-compatible AMQP endpoint instead.
func (c *Client) Telemetry(ctx context.Context, o StreamOptions) iter.Seq2[*TelemetryMessage, error] {
	return streamNDJSON[TelemetryMessage](c, ctx, "Telemetry", "/emulator/telemetry", o)
}

// ConnectionEvent is a device or module connecting to or disconnecting from
// the emulator.
type ConnectionEvent struct {
	// SequenceNumber orders the events.
	SequenceNumber int64 `json:"sequenceNumber"`
	// Time is when it happened.
	Time time.Time `json:"time"`
	// DeviceID and ModuleID name the identity.
	DeviceID string `json:"deviceId"`
	ModuleID string `json:"moduleId,omitempty"`
	// Event is "deviceConnected" or "deviceDisconnected".
	Event string `json:"event"`
	// Reason says why a connection ended, when known.
	Reason string `json:"reason,omitempty"`
}

// ConnectionEvents streams the emulator's connection events (GET
// /emulator/events as NDJSON), as Telemetry does the telemetry log.
func (c *Client) ConnectionEvents(ctx context.Context, o StreamOptions) iter.Seq2[*ConnectionEvent, error] {
	return streamNDJSON[ConnectionEvent](c, ctx, "ConnectionEvents", "/emulator/events", o)
}

func streamNDJSON[T any](c *Client, ctx context.Context, op, path string, o StreamOptions) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // closes the stream when the loop stops early
		resp, err := c.send(ctx, &request{op: op, method: http.MethodGet, path: path, query: o.values(), accept: "application/x-ndjson"})
		if err != nil {
			yield(nil, err)
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), maxStreamLine)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 {
				continue
			}
			v := new(T)
			if err := json.Unmarshal(line, v); err != nil {
				yield(nil, fmt.Errorf("service: %s: decoding a stream entry: %w", op, err))
				return
			}
			if !yield(v, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			yield(nil, fmt.Errorf("service: %s: %w", op, err))
		}
	}
}
