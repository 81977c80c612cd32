package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (s *restServer) routeMessages() {
	s.handle("DELETE /devices/{id}/commands", ServiceConnect, s.purge)
	s.handle("GET /messages/serviceBound/feedback", ServiceConnect, s.receiveFeedback)
	s.handle("DELETE /messages/serviceBound/feedback/{lock}", ServiceConnect, s.completeFeedback)
	s.handle("POST /messages/serviceBound/feedback/{lock}/abandon", ServiceConnect, s.abandonFeedback)

	// The emulator's own endpoints: IoT Hub sends C2D and serves telemetry
	// over AMQP only.
	s.handle("POST /emulator/devices/{id}/messages/devicebound", ServiceConnect, s.sendC2D)
	s.handle("GET /emulator/telemetry", ServiceConnect, s.telemetryStream)
	s.handle("GET /emulator/events", ServiceConnect, s.eventStream)
}

type purgeReply struct {
	TotalMessagesPurged int     `json:"totalMessagesPurged"`
	DeviceID            string  `json:"deviceId"`
	ModuleID            *string `json:"moduleId"`
}

func (s *restServer) purge(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	n, err := s.h.PurgeC2D(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, purgeReply{TotalMessagesPurged: n, DeviceID: id}, "")
}

func (s *restServer) receiveFeedback(w http.ResponseWriter, r *http.Request) error {
	b, ok := s.h.ReceiveFeedback()
	if !ok {
		writeNoContent(w)
		return nil
	}
	return writeJSON(w, http.StatusOK, b.Records, b.LockToken)
}

func lockToken(r *http.Request) (string, error) {
	t := strings.Trim(r.PathValue("lock"), `"`)
	if t == "" || len(t) > 128 {
		return "", badRequest("malformed lock token")
	}
	return t, nil
}

func (s *restServer) completeFeedback(w http.ResponseWriter, r *http.Request) error {
	t, err := lockToken(r)
	if err != nil {
		return err
	}
	if err := s.h.CompleteFeedback(r.Context(), t); err != nil {
		return err
	}
	writeNoContent(w)
	return nil
}

func (s *restServer) abandonFeedback(w http.ResponseWriter, r *http.Request) error {
	t, err := lockToken(r)
	if err != nil {
		return err
	}
	if err := s.h.AbandonFeedback(r.Context(), t); err != nil {
		return err
	}
	writeNoContent(w)
	return nil
}

// c2dAppPrefix starts the header of each application property of a C2D
// send, as in IoT Hub's device HTTP API.
const c2dAppPrefix = "Iothub-App-"

func (s *restServer) sendC2D(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	body, err := readBody(r, MaxC2DSize)
	if err != nil {
		return err
	}
	h := r.Header
	m := C2DMessage{
		Body:            body,
		MessageID:       h.Get("iothub-messageid"),
		CorrelationID:   h.Get("iothub-correlationid"),
		UserID:          h.Get("iothub-userid"),
		ContentType:     h.Get("iothub-contenttype"),
		ContentEncoding: h.Get("iothub-contentencoding"),
		Ack:             AckMode(strings.ToLower(h.Get("iothub-ack"))),
	}
	if v := h.Get("iothub-expiry"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return badRequest("iothub-expiry must be an RFC 3339 time")
		}
		m.ExpiryTime = t
	} else if v := h.Get("iothub-ttl"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n > int64(MaxC2DTTL/time.Second) {
			return badRequest("iothub-ttl must be a number of seconds from 1 to %d", int64(MaxC2DTTL/time.Second))
		}
		m.TTL = time.Duration(n) * time.Second
	}
	for k, v := range h {
		if name, ok := strings.CutPrefix(k, c2dAppPrefix); ok && len(v) > 0 {
			if m.Properties == nil {
				m.Properties = map[string]string{}
			}
			// Header names arrive canonicalized (Iothub-App-Alert); the
			// property name is sent in lower case, as HTTP gives no case.
			m.Properties[strings.ToLower(name)] = v[0]
		}
	}
	mid, err := s.h.SendC2D(r.Context(), id, m)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		MessageID string `json:"messageId"`
		DeviceID  string `json:"deviceId"`
	}{mid, id}, "")
}

// streamFormat says how a stream is written.
type streamFormat int

const (
	formatNDJSON streamFormat = iota
	formatSSE
)

// streamWriter writes the entries of a stream, flushing each.
type streamWriter struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	format streamFormat
	event  string // SSE event name
}

func newStreamWriter(w http.ResponseWriter, r *http.Request, event string) (*streamWriter, error) {
	f := formatNDJSON
	switch strings.ToLower(r.URL.Query().Get("format")) {
	case "sse":
		f = formatSSE
	case "", "ndjson":
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			f = formatSSE
		}
	default:
		return nil, badRequest("format must be ndjson or sse")
	}
	sw := &streamWriter{w: w, rc: http.NewResponseController(w), format: f, event: event}
	hdr := w.Header()
	if f == formatSSE {
		hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	} else {
		hdr.Set("Content-Type", "application/x-ndjson; charset=utf-8")
	}
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw.rc.Flush()
	return sw, nil
}

// write writes one entry with sequence number seq.
func (sw *streamWriter) write(seq int64, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if sw.format == formatSSE {
		_, err = fmt.Fprintf(sw.w, "id: %d\nevent: %s\ndata: %s\n\n", seq, sw.event, b)
	} else {
		b = append(b, '\n')
		_, err = sw.w.Write(b)
	}
	if err != nil {
		return err
	}
	return sw.rc.Flush()
}

// streamQuery holds the common parameters of the two streams.
type streamQuery struct {
	from           Position
	fromName       string
	device, module string
	follow         bool
}

func parseStreamQuery(r *http.Request) (streamQuery, error) {
	q := r.URL.Query()
	sq := streamQuery{from: Earliest, fromName: "earliest", device: q.Get("deviceId"), module: q.Get("moduleId"), follow: true}
	from := strings.ToLower(strings.TrimSpace(q.Get("from")))
	if from == "" {
		// An SSE client reconnecting resumes after the last event it saw.
		if v := r.Header.Get("Last-Event-ID"); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				from = strconv.FormatInt(n+1, 10)
			}
		}
	}
	switch from {
	case "", "earliest":
	case "latest":
		sq.from, sq.fromName = Latest, "latest"
	default:
		n, err := strconv.ParseInt(from, 10, 64)
		if err != nil || n < 0 {
			return sq, badRequest("from must be earliest, latest or a sequence number")
		}
		sq.from, sq.fromName = FromSequence(n), from
	}
	if v := q.Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return sq, badRequest("follow must be true or false")
		}
		sq.follow = b
	}
	return sq, nil
}

func (sq *streamQuery) keep(deviceID, moduleID string) bool {
	return (sq.device == "" || sq.device == deviceID) && (sq.module == "" || sq.module == moduleID)
}

// telemetryJSON is a telemetry message as the stream writes it.
type telemetryJSON struct {
	SequenceNumber   int64             `json:"sequenceNumber"`
	EnqueuedTime     time.Time         `json:"enqueuedTime"`
	DeviceID         string            `json:"deviceId"`
	ModuleID         string            `json:"moduleId,omitempty"`
	Body             []byte            `json:"body"`
	Properties       map[string]string `json:"properties"`
	SystemProperties map[string]string `json:"systemProperties"`
}

func toTelemetryJSON(m *Message) telemetryJSON {
	return telemetryJSON{SequenceNumber: m.SequenceNumber, EnqueuedTime: m.EnqueuedTime, DeviceID: m.DeviceID, ModuleID: m.ModuleID,
		Body: m.Body, Properties: m.Properties, SystemProperties: m.SystemProperties}
}

// telemetryPage is how many messages a non-following read takes at a time.
const telemetryPage = 256

func (s *restServer) telemetryStream(w http.ResponseWriter, r *http.Request) error {
	sq, err := parseStreamQuery(r)
	if err != nil {
		return err
	}
	if !sq.follow {
		// What is retained now, then the end of the stream.
		_, end := s.h.TelemetryRange()
		from := sq.from
		var sw *streamWriter
		for {
			msgs, err := s.h.ReadTelemetry(from, telemetryPage)
			if err != nil && sw == nil {
				return err
			}
			if sw == nil {
				if sw, err = newStreamWriter(w, r, "telemetry"); err != nil {
					return err
				}
			}
			if err != nil || len(msgs) == 0 {
				return nil
			}
			for _, m := range msgs {
				if m.SequenceNumber >= end {
					return nil
				}
				if sq.keep(m.DeviceID, m.ModuleID) {
					if sw.write(m.SequenceNumber, toTelemetryJSON(&m)) != nil {
						return nil
					}
				}
			}
			from = FromSequence(msgs[len(msgs)-1].SequenceNumber + 1)
		}
	}
	sw, err := newStreamWriter(w, r, "telemetry")
	if err != nil {
		return err
	}
	for m, err := range s.h.Telemetry(r.Context(), sq.from) {
		if err != nil {
			return nil // the client went away or the hub closed: end the stream
		}
		if !sq.keep(m.DeviceID, m.ModuleID) {
			continue
		}
		if sw.write(m.SequenceNumber, toTelemetryJSON(&m)) != nil {
			return nil
		}
	}
	return nil
}

// connectionEventJSON is a connection event as the stream writes it.
type connectionEventJSON struct {
	SequenceNumber int64     `json:"sequenceNumber"`
	Time           time.Time `json:"time"`
	DeviceID       string    `json:"deviceId"`
	ModuleID       string    `json:"moduleId,omitempty"`
	Event          EventType `json:"event"`
	Transport      string    `json:"transport,omitempty"`
	ConnectionID   uint64    `json:"connectionId"`
	Reason         string    `json:"reason,omitempty"`
}

// eventStream streams connection events. The hub keeps no history of
// them, so the stream starts now: from may only be latest, and follow=false
// ends it at once.
func (s *restServer) eventStream(w http.ResponseWriter, r *http.Request) error {
	sq, err := parseStreamQuery(r)
	if err != nil {
		return err
	}
	if q := r.URL.Query().Get("from"); q != "" && sq.fromName != "latest" {
		return badRequest("connection events are not retained: from must be latest (or absent)")
	}
	events := s.h.WatchConnections(r.Context())
	sw, err := newStreamWriter(w, r, "connection")
	if err != nil {
		return err
	}
	if !sq.follow {
		return nil
	}
	var seq int64
	for ev := range events {
		if !sq.keep(ev.DeviceID, ev.ModuleID) {
			continue
		}
		if sw.write(seq, connectionEventJSON{SequenceNumber: seq, Time: ev.Time, DeviceID: ev.DeviceID, ModuleID: ev.ModuleID,
			Event: ev.Type, Transport: ev.Transport, ConnectionID: ev.ConnectionID, Reason: ev.Reason}) != nil {
			return nil
		}
		seq++
	}
	return nil
}
