package emulator

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"slices"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/iothub/emulator/internal/eventlog"
)

// MaxTelemetrySize is the largest device-to-cloud message, counted as
// contract §3 says: body, system-property values and application-property
// names and values. A larger one closes the connection.
const MaxTelemetrySize = 256 * 1024

// Message is a device-to-cloud message as the hub keeps it: what IoT Hub's
// built-in Event Hubs-compatible endpoint would deliver.
//
// SystemProperties use the hub's names: message-id, correlation-id,
// user-id, content-type, content-encoding, iothub-creation-time-utc,
// absolute-expiry-time, to, iothub-message-schema, dt-subject,
// iothub-interface-id, iothub-outputname, Diagnostic-Id,
// Correlation-Context, and the stamped iothub-connection-device-id,
// iothub-connection-module-id, iothub-connection-auth-method,
// iothub-connection-auth-generation-id, iothub-enqueuedtime,
// iothub-message-source (Telemetry) and dt-dataschema (the model id).
// Properties are the application properties, with mqtt-retain=true for a
// retained publish and iothub-MessageType=Will for a Will.
type Message struct {
	SequenceNumber   int64             `json:"-"`
	EnqueuedTime     time.Time         `json:"-"`
	DeviceID         string            `json:"deviceId"`
	ModuleID         string            `json:"moduleId,omitempty"`
	Body             []byte            `json:"body"`
	SystemProperties map[string]string `json:"systemProperties"`
	Properties       map[string]string `json:"properties"`
}

// sysNames maps the device-settable system properties to the hub's names.
var sysNames = []struct {
	p    iothub.SysProp
	name string
}{
	{iothub.SysMessageID, "message-id"},
	{iothub.SysCorrelationID, "correlation-id"},
	{iothub.SysUserID, "user-id"},
	{iothub.SysContentType, "content-type"},
	{iothub.SysContentEncoding, "content-encoding"},
	{iothub.SysCreationTime, "iothub-creation-time-utc"},
	{iothub.SysExpiry, "absolute-expiry-time"},
	{iothub.SysTo, "to"},
	{iothub.SysSchema, "iothub-message-schema"},
	{iothub.SysSubject, "dt-subject"},
	{iothub.SysInterfaceID, "iothub-interface-id"},
	{iothub.SysOutputName, "iothub-outputname"},
	{iothub.SysDiagID, "Diagnostic-Id"},
	{iothub.SysDiagContext, "Correlation-Context"},
}

// newTelemetry builds the stored message of a device publish: the bag
// decoded leniently (see normalizeBag), the size checked, the
// hub properties stamped. The error is the reason to close the connection.
func (h *Hub) newTelemetry(a *authInfo, r *iothub.Route, payload []byte, retain, will bool, now time.Time) (*Message, error) {
	var props iothub.Properties
	if err := props.ParseD2C(normalizeBag(r.Bag)); err != nil {
		return nil, errors.New("telemetry property bag: " + err.Error())
	}
	if n := len(payload) + props.CountedSize(); n > MaxTelemetrySize {
		return nil, errors.New("telemetry message over 256 KB (§3)")
	}
	m := &Message{
		DeviceID:         a.deviceID,
		ModuleID:         a.moduleID,
		Body:             append([]byte(nil), payload...),
		SystemProperties: make(map[string]string, 8),
		Properties:       make(map[string]string, len(props.App)+1),
	}
	for _, p := range props.App {
		if p.Key == "" {
			continue
		}
		m.Properties[p.Key] = p.Value
	}
	for _, sp := range sysNames {
		if v := props.Get(sp.p); v != "" {
			m.SystemProperties[sp.name] = v
		}
	}
	if retain {
		m.Properties["mqtt-retain"] = "true"
	}
	if will {
		m.Properties["iothub-MessageType"] = "Will"
	}
	sp := m.SystemProperties
	sp["iothub-connection-device-id"] = a.deviceID
	if a.moduleID != "" {
		sp["iothub-connection-module-id"] = a.moduleID
	}
	sp["iothub-connection-auth-method"] = a.authMethodJSON()
	sp["iothub-connection-auth-generation-id"] = a.generationID
	sp["iothub-message-source"] = "Telemetry"
	if a.modelID != "" {
		sp["dt-dataschema"] = a.modelID
	}
	return m, nil
}

// appendTelemetry appends the record of a device's telemetry publish
// (appendRecord's format) straight from the bag, without building a
// Message: the ingest hot path. The record holds what newTelemetry's
// Message would (retain false, no Will); authMethod is
// a.authMethodJSON(), computed once per connection.
func appendTelemetry(dst []byte, a *authInfo, authMethod string, r *iothub.Route, payload []byte, retain bool) ([]byte, error) {
	var props iothub.Properties
	if err := props.ParseD2C(normalizeBag(r.Bag)); err != nil {
		return dst, errors.New("telemetry property bag: " + err.Error())
	}
	if n := len(payload) + props.CountedSize(); n > MaxTelemetrySize {
		return dst, errors.New("telemetry message over 256 KB (§3)")
	}
	// An application property is kept unless a later one has its key
	// (a map keeps the last) or mqtt-retain is stamped over it.
	keep := func(i int) bool {
		k := props.App[i].Key
		if k == "" || (retain && k == "mqtt-retain") {
			return false
		}
		for _, q := range props.App[i+1:] {
			if q.Key == k {
				return false
			}
		}
		return true
	}
	nsys := 4 // device id, auth method, generation id, message source
	if a.moduleID != "" {
		nsys++
	}
	if a.modelID != "" {
		nsys++
	}
	size := 32 + len(a.deviceID) + len(a.moduleID) + len(payload) + len(authMethod) + len(a.generationID) + 2*len(a.deviceID) + len(a.modelID)
	for _, sp := range sysNames {
		if v := props.Get(sp.p); v != "" {
			nsys++
			size += 4 + len(sp.name) + len(v)
		}
	}
	napp := 0
	for i, p := range props.App {
		if keep(i) {
			napp++
			size += 4 + len(p.Key) + len(p.Value)
		}
	}
	if retain {
		napp++
	}
	dst = slices.Grow(dst, size+160)
	dst = append(dst, recordV1)
	dst = appendBytes(dst, a.deviceID)
	dst = appendBytes(dst, a.moduleID)
	dst = appendBytes(dst, payload)
	pair := func(k, v string) {
		dst = appendBytes(dst, k)
		dst = appendBytes(dst, v)
	}
	dst = binary.AppendUvarint(dst, uint64(nsys))
	for _, sp := range sysNames {
		if v := props.Get(sp.p); v != "" {
			pair(sp.name, v)
		}
	}
	pair("iothub-connection-device-id", a.deviceID)
	if a.moduleID != "" {
		pair("iothub-connection-module-id", a.moduleID)
	}
	pair("iothub-connection-auth-method", authMethod)
	pair("iothub-connection-auth-generation-id", a.generationID)
	pair("iothub-message-source", "Telemetry")
	if a.modelID != "" {
		pair("dt-dataschema", a.modelID)
	}
	dst = binary.AppendUvarint(dst, uint64(napp))
	for i, p := range props.App {
		if keep(i) {
			pair(p.Key, p.Value)
		}
	}
	if retain {
		pair("mqtt-retain", "true")
	}
	return dst, nil
}

// normalizeBag makes a device's bag acceptable the way IoT Hub is
// lenient: pairs with an empty key ("=v", which the Node SDK can send) are
// dropped, and of a system property given twice the first counts (SDKs
// write their system properties before the application ones, so a later
// "$.mid" is an application key spelled like a system key, and the system
// property wins). It returns bag itself when nothing needs to change.
func normalizeBag(bag []byte) []byte {
	var seen uint32
	change := false
	it := iothub.ScanBag(bag)
	for {
		p, ok := it.Next()
		if !ok {
			break
		}
		if k := iothub.ClassifyKey(p.Key); k != iothub.SysNone && k != iothub.SysAck {
			if seen&(1<<k) != 0 {
				change = true
			}
			seen |= 1 << k
		}
	}
	if it.Err() == nil && !change {
		return bag
	}
	seen = 0
	out := make([]byte, 0, len(bag))
	for _, seg := range bytes.Split(bag, []byte("&")) {
		if len(seg) == 0 || seg[0] == '=' {
			continue
		}
		key, _, _ := bytes.Cut(seg, []byte("="))
		if k := iothub.ClassifyKey(key); k != iothub.SysNone && k != iothub.SysAck {
			if seen&(1<<k) != 0 {
				continue
			}
			seen |= 1 << k
		}
		if len(out) > 0 {
			out = append(out, '&')
		}
		out = append(out, seg...)
	}
	return out
}

// Position is where a telemetry read starts: Earliest, Latest,
// FromSequence or FromEnqueuedTime.
type Position struct {
	kind uint8
	seq  int64
	at   time.Time
}

// Telemetry positions.
var (
	// Earliest starts at the oldest message still retained.
	Earliest = Position{kind: 1}
	// Latest starts after the newest message: only messages enqueued
	// after the read begins.
	Latest = Position{kind: 2}
)

// FromEnqueuedTime starts at the first retained message enqueued at or
// after t.
func FromEnqueuedTime(t time.Time) Position { return Position{kind: 4, at: t} }

// FromSequence starts at sequence number n (inclusive), or at the oldest
// retained message when n has been dropped.
func FromSequence(n int64) Position { return Position{kind: 3, seq: max(n, 0)} }

// telemetry is the hub's retained telemetry log: package eventlog, with
// group commit (concurrent appends share one fsync), sequence numbers from
// 0 and the enqueued time it stamps. A record is a Message encoded as JSON
// without its sequence number and enqueued time, which come from the log.
type telemetry struct {
	h    *Hub
	log  *eventlog.Log
	stop chan struct{}
}

func openTelemetry(h *Hub) (*telemetry, error) {
	dir := ""
	if h.cfg.DataDir != "" {
		dir = filepath.Join(h.cfg.DataDir, "telemetry")
	}
	l, err := eventlog.Open(dir, eventlog.Options{
		MaxAge:         h.cfg.TelemetryRetention,
		MaxBytes:       h.cfg.TelemetryMaxBytes,
		MaxRecordBytes: 2 * maxPacket,
		Now:            h.cfg.Now,
		Logger:         h.log,
	})
	if err != nil {
		return nil, fmt.Errorf("emulator: telemetry log: %w", err)
	}
	return &telemetry{h: h, log: l, stop: make(chan struct{})}, nil
}

func (t *telemetry) close() {
	close(t.stop)
	t.log.Close()
}

// append stores msgs durably (one group commit); it returns once they are.
func (t *telemetry) append(msgs []*Message) error {
	if len(msgs) == 0 {
		return nil
	}
	recs := make([][]byte, len(msgs))
	for i, m := range msgs {
		recs[i] = appendRecord(nil, m)
	}
	first, err := t.log.Append(recs...)
	if err != nil {
		if errors.Is(err, eventlog.ErrClosed) {
			return ErrClosed
		}
		return err
	}
	for i, m := range msgs {
		m.SequenceNumber = int64(first) + int64(i)
	}
	return nil
}

// recordV1 marks the binary record format: after this byte, uvarint
// length-prefixed device id, module id and body, then the system and the
// application properties, each a uvarint count of length-prefixed key and
// value pairs. Records written as JSON (starting '{') are read too.
const recordV1 = 1

// appendRecord appends m's record (without sequence number and enqueued
// time, which the log keeps). It is the hot path of ingest, so it avoids
// encoding/json's reflection.
func appendRecord(dst []byte, m *Message) []byte {
	n := 16 + len(m.DeviceID) + len(m.ModuleID) + len(m.Body)
	for k, v := range m.SystemProperties {
		n += 4 + len(k) + len(v)
	}
	for k, v := range m.Properties {
		n += 4 + len(k) + len(v)
	}
	dst = slices.Grow(dst, n)
	dst = append(dst, recordV1)
	dst = appendBytes(dst, m.DeviceID)
	dst = appendBytes(dst, m.ModuleID)
	dst = appendBytes(dst, m.Body)
	for _, props := range []map[string]string{m.SystemProperties, m.Properties} {
		dst = binary.AppendUvarint(dst, uint64(len(props)))
		for k, v := range props {
			dst = appendBytes(dst, k)
			dst = appendBytes(dst, v)
		}
	}
	return dst
}

func appendBytes[T ~string | ~[]byte](dst []byte, s T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// errCorruptRecord is returned for a record that does not decode.
var errCorruptRecord = errors.New("emulator: corrupt telemetry record")

// parseRecord decodes appendRecord's format.
func parseRecord(b []byte) (Message, error) {
	var m Message
	b = b[1:]
	next := func() ([]byte, bool) {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return nil, false
		}
		v := b[w : w+int(n)]
		b = b[w+int(n):]
		return v, true
	}
	f := make([][]byte, 3)
	for i := range f {
		v, ok := next()
		if !ok {
			return Message{}, errCorruptRecord
		}
		f[i] = v
	}
	m.DeviceID, m.ModuleID, m.Body = string(f[0]), string(f[1]), slices.Clone(f[2])
	for i := range 2 {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)) {
			return Message{}, errCorruptRecord
		}
		b = b[w:]
		props := make(map[string]string, n)
		for range n {
			k, ok1 := next()
			v, ok2 := next()
			if !ok1 || !ok2 {
				return Message{}, errCorruptRecord
			}
			props[string(k)] = string(v)
		}
		if i == 0 {
			m.SystemProperties = props
		} else {
			m.Properties = props
		}
	}
	if len(b) != 0 {
		return Message{}, errCorruptRecord
	}
	return m, nil
}

// decode turns a log record into a Message.
func decodeRecord(r eventlog.Record) (Message, error) {
	var m Message
	var err error
	if len(r.Data) > 0 && r.Data[0] == recordV1 {
		m, err = parseRecord(r.Data)
	} else {
		err = json.Unmarshal(r.Data, &m)
	}
	if err != nil {
		return Message{}, fmt.Errorf("emulator: telemetry record %d: %w", r.Seq, err)
	}
	m.SequenceNumber = int64(r.Seq)
	m.EnqueuedTime = r.Time.UTC()
	if m.SystemProperties == nil {
		m.SystemProperties = map[string]string{}
	}
	m.SystemProperties["iothub-enqueuedtime"] = m.EnqueuedTime.Format(time.RFC3339Nano)
	return m, nil
}

func (t *telemetry) start(from Position) uint64 {
	switch from.kind {
	case 2:
		return t.log.Next()
	case 3:
		return max(uint64(from.seq), t.log.First())
	case 4:
		if seq, err := t.log.SeqAt(from.at); err == nil {
			return seq
		}
		return t.log.Next()
	}
	return t.log.First()
}

// ReadTelemetry returns up to max (at least 1) messages durable now from
// position from, oldest first.
func (h *Hub) ReadTelemetry(from Position, max int) ([]Message, error) {
	if max <= 0 {
		max = 1
	}
	var out []Message
	var derr error
	_, err := h.telemetry.log.Read(h.telemetry.start(from), max, func(r eventlog.Record) bool {
		m, err := decodeRecord(r)
		if err != nil {
			derr = err
			return false
		}
		out = append(out, m)
		return true
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// TelemetryRange returns the sequence numbers of the oldest retained
// message and the one the next message will get.
func (h *Hub) TelemetryRange() (first, next int64) {
	return int64(h.telemetry.log.First()), int64(h.telemetry.log.Next())
}

// Telemetry streams telemetry from position from: the retained messages,
// then each new one as it is enqueued, until ctx is done or the hub
// closes; the last pair yielded then carries ctx.Err() or ErrClosed.
func (h *Hub) Telemetry(ctx context.Context, from Position) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		l := h.telemetry.log
		c := l.NewCursor(h.telemetry.start(from))
		defer c.Close()
		for {
			r, err := c.Next(ctx)
			if err != nil {
				if errors.Is(err, eventlog.ErrClosed) {
					err = ErrClosed
				}
				yield(Message{}, err)
				return
			}
			m, err := decodeRecord(r)
			if !yield(m, err) || err != nil {
				return
			}
		}
	}
}
