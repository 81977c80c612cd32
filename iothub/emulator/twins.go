package emulator

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"sync"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/packet"
)

// MaxTagsLen is the limit on a twin's tags as iothub.TwinSectionSize
// counts them (contract §5; service-side 8 KB).
const MaxTagsLen = 8 * 1024

// Twin is a device or module twin as the service side sees it (the shape
// of IoT Hub's REST twin): identity fields at the root, tags, and the
// desired and reported properties with their "$metadata" and "$version".
type Twin struct {
	DeviceID                  string         `json:"deviceId"`
	ModuleID                  string         `json:"moduleId,omitempty"`
	ETag                      string         `json:"etag"`
	DeviceETag                string         `json:"deviceEtag"`
	Version                   int64          `json:"version"`
	Status                    Status         `json:"status"`
	StatusReason              string         `json:"statusReason"`
	StatusUpdateTime          time.Time      `json:"statusUpdateTime"`
	ConnectionState           string         `json:"connectionState"`
	LastActivityTime          time.Time      `json:"lastActivityTime"`
	CloudToDeviceMessageCount int            `json:"cloudToDeviceMessageCount"`
	AuthenticationType        AuthType       `json:"authenticationType"`
	X509Thumbprint            X509Thumbprint `json:"x509Thumbprint"`
	ModelID                   string         `json:"modelId"`
	Capabilities              *Capabilities  `json:"capabilities,omitempty"`
	Tags                      map[string]any `json:"tags"`
	Properties                TwinProperties `json:"properties"`
}

// TwinProperties holds the two property sections, each including
// "$metadata" ($lastUpdated at every level, ISO-8601 with milliseconds)
// and "$version".
type TwinProperties struct {
	Desired  map[string]any `json:"desired"`
	Reported map[string]any `json:"reported"`
}

// TwinPatch is a service-side twin update: both parts are JSON merge
// patches (null deletes); a nil part is left alone.
type TwinPatch struct {
	Tags    map[string]any
	Desired map[string]any
}

// twinState is the hub's twin of one identity: the device-visible part in
// an iothub.HubTwin, plus tags, metadata, the twin version and etag.
type twinState struct {
	mu      sync.Mutex
	ht      *iothub.HubTwin
	tags    map[string]any
	version int64
	etag    uint64
	dmeta   map[string]any
	rmeta   map[string]any
	modelID string
}

// twinRecord is a twin as stored.
type twinRecord struct {
	Doc     json.RawMessage `json:"doc"` // {"desired":{…,"$version"},"reported":{…}}
	Tags    json.RawMessage `json:"tags"`
	Version int64           `json:"version"`
	ETag    uint64          `json:"etag"`
	DMeta   json.RawMessage `json:"desiredMeta"`
	RMeta   json.RawMessage `json:"reportedMeta"`
	ModelID string          `json:"modelId,omitempty"`
}

func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func newTwinState(now time.Time) *twinState {
	ts := timestamp(now)
	return &twinState{
		ht:      iothub.NewHubTwin(),
		tags:    map[string]any{},
		version: 1,
		etag:    1,
		dmeta:   map[string]any{"$lastUpdated": ts, "$lastUpdatedVersion": int64(1)},
		rmeta:   map[string]any{"$lastUpdated": ts},
	}
}

// record returns t as stored; t.mu must be held or t unshared.
func (t *twinState) record() *twinRecord {
	return &twinRecord{
		Doc:     t.ht.GetBody(),
		Tags:    mustJSON(t.tags),
		Version: t.version,
		ETag:    t.etag,
		DMeta:   mustJSON(t.dmeta),
		RMeta:   mustJSON(t.rmeta),
		ModelID: t.modelID,
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("{}") // twin values are JSON-decoded, so always encodable
	}
	return b
}

func decodeObject(b []byte) (map[string]any, error) {
	m := map[string]any{}
	if len(b) == 0 {
		return m, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

func restoreTwin(r *twinRecord) (*twinState, error) {
	doc, err := iothub.ParseTwin(r.Doc)
	if err != nil {
		return nil, err
	}
	t := &twinState{ht: iothub.RestoreHubTwin(doc), version: r.Version, etag: r.ETag, modelID: r.ModelID}
	if t.tags, err = decodeObject(r.Tags); err != nil {
		return nil, err
	}
	if t.dmeta, err = decodeObject(r.DMeta); err != nil {
		return nil, err
	}
	if t.rmeta, err = decodeObject(r.RMeta); err != nil {
		return nil, err
	}
	return t, nil
}

// twinStore maps identity keys to twins.
type twinStore struct {
	mu sync.Mutex
	m  map[string]*twinState
}

func newTwinStore() *twinStore { return &twinStore{m: map[string]*twinState{}} }

func (s *twinStore) get(key string) *twinState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}

func (s *twinStore) set(key string, t *twinState) {
	s.mu.Lock()
	s.m[key] = t
	s.mu.Unlock()
}

func (s *twinStore) remove(key string) {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

func (s *twinStore) load(st *store) error {
	return loadJSON(st, bucketTwins, func(k []byte, v *twinRecord) error {
		t, err := restoreTwin(v)
		if err != nil {
			return err
		}
		s.m[string(k)] = t
		return nil
	})
}

// stampMeta records ts as the $lastUpdated of every member patch touches,
// and of the section (version, when positive, is $lastUpdatedVersion as the
// desired section has it). Deleted members lose their metadata.
func stampMeta(meta, patch map[string]any, ts string, version int64) map[string]any {
	if meta == nil {
		meta = map[string]any{}
	}
	meta["$lastUpdated"] = ts
	if version > 0 {
		meta["$lastUpdatedVersion"] = version
	}
	for k, v := range patch {
		if v == nil {
			delete(meta, k)
			continue
		}
		if obj, ok := v.(map[string]any); ok {
			child, _ := meta[k].(map[string]any)
			meta[k] = stampMeta(child, obj, ts, version)
			continue
		}
		leaf := map[string]any{"$lastUpdated": ts}
		if version > 0 {
			leaf["$lastUpdatedVersion"] = version
		}
		meta[k] = leaf
	}
	return meta
}

func twinETag(n uint64) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, n))
}

// twinLimiter is a token bucket for device twin operations
// (Config.TwinOpsPerSecond); nil means unlimited.
type twinLimiter struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func (l *twinLimiter) allow(now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = min(l.rate, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// twinRequest answers a device's twin GET or reported PATCH (contract §5):
// 200 with the twin, 204 with the new $version once the patch is durable,
// 400 for an invalid patch, 429 when throttled.
func (h *Hub) twinRequest(s *session, r *iothub.Route, payload []byte) iothub.Action {
	if st := h.takeTwinFailure(s.key); st != 0 {
		return iothub.Action{Topic: iothub.AppendTwinResponseTopic(nil, st, r.RequestID, -1)}
	}
	if !h.twinLimit.allow(time.Now()) {
		return iothub.Action{Topic: iothub.AppendTwinResponseTopic(nil, 429, r.RequestID, -1)}
	}
	t := h.twins.get(s.key)
	if t == nil {
		return iothub.Action{Topic: iothub.AppendTwinResponseTopic(nil, 404, r.RequestID, -1)}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.Kind == iothub.RouteTwinGet {
		reply, _ := t.ht.HandleRequest(r, payload)
		return reply
	}
	patch, err := iothub.ParseTwinPatch(payload)
	if err != nil {
		s.log.Info("reported patch refused", "reason", err.Error())
		return iothub.Action{Topic: iothub.AppendTwinResponseTopic(nil, 400, r.RequestID, -1)}
	}
	v, err := t.ht.PatchReported(payload)
	if err != nil {
		s.log.Info("reported patch refused", "reason", err.Error())
		return iothub.Action{Topic: iothub.AppendTwinResponseTopic(nil, iothub.StatusOf(err), r.RequestID, -1)}
	}
	t.rmeta = stampMeta(t.rmeta, patch, timestamp(h.now()), 0)
	t.version++
	t.etag++
	if err := h.store.write(put(bucketTwins, []byte(s.key), t.record())); err != nil {
		s.log.Error("reported properties not stored", "err", err)
		return iothub.Action{Topic: iothub.AppendTwinResponseTopic(nil, 500, r.RequestID, -1)}
	}
	return iothub.Action{Topic: iothub.AppendTwinResponseTopic(nil, 204, r.RequestID, v)}
}

// setModelID records a Plug and Play model id announced in CONNECT.
func (h *Hub) setModelID(key, modelID string) {
	t := h.twins.get(key)
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.modelID == modelID {
		return
	}
	t.modelID = modelID
	if err := h.store.write(put(bucketTwins, []byte(key), t.record())); err != nil {
		h.log.Error("model id not stored", "err", err)
	}
}

// twinFor returns the twin of an identity, or ErrDeviceNotFound /
// ErrModuleNotFound.
func (h *Hub) twinFor(deviceID, moduleID string) (*twinState, error) {
	if moduleID == "" {
		if _, err := h.GetDevice(deviceID); err != nil {
			return nil, err
		}
	} else if _, err := h.GetModule(deviceID, moduleID); err != nil {
		return nil, err
	}
	t := h.twins.get(identityKey(deviceID, moduleID))
	if t == nil {
		return nil, ErrDeviceNotFound
	}
	return t, nil
}

// GetTwin returns the twin of a device (moduleID "") or module, with
// $metadata and versions. Errors: ErrDeviceNotFound, ErrModuleNotFound.
func (h *Hub) GetTwin(deviceID, moduleID string) (Twin, error) {
	t, err := h.twinFor(deviceID, moduleID)
	if err != nil {
		return Twin{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return h.renderTwin(deviceID, moduleID, t), nil
}

// renderTwin builds the service view; t.mu must be held.
func (h *Hub) renderTwin(deviceID, moduleID string, t *twinState) Twin {
	snap := t.ht.Snapshot()
	tw := Twin{
		DeviceID: deviceID,
		ModuleID: moduleID,
		ETag:     twinETag(t.etag),
		Version:  t.version,
		ModelID:  t.modelID,
		Tags:     iothub.MergePatch(map[string]any{}, t.tags),
		Properties: TwinProperties{
			Desired:  section(snap.Desired, t.dmeta),
			Reported: section(snap.Reported, t.rmeta),
		},
	}
	if moduleID == "" {
		if d, err := h.GetDevice(deviceID); err == nil {
			tw.DeviceETag, tw.Status, tw.StatusReason = d.ETag, d.Status, d.StatusReason
			tw.StatusUpdateTime, tw.ConnectionState, tw.LastActivityTime = d.StatusUpdatedTime, d.ConnectionState, d.LastActivityTime
			tw.CloudToDeviceMessageCount = d.CloudToDeviceMessageCount
			tw.AuthenticationType, tw.X509Thumbprint = d.Authentication.Type, d.Authentication.X509Thumbprint
			c := d.Capabilities
			tw.Capabilities = &c
		}
	} else if m, err := h.GetModule(deviceID, moduleID); err == nil {
		tw.DeviceETag, tw.ConnectionState, tw.LastActivityTime = m.ETag, m.ConnectionState, m.LastActivityTime
		tw.AuthenticationType, tw.X509Thumbprint = m.Authentication.Type, m.Authentication.X509Thumbprint
		tw.Status = StatusEnabled
	}
	return tw
}

func section(s iothub.TwinSection, meta map[string]any) map[string]any {
	out := iothub.MergePatch(map[string]any{}, s.Props)
	out["$metadata"] = iothub.MergePatch(map[string]any{}, meta)
	out["$version"] = s.Version
	return out
}

// UpdateTwin merges patch into a twin's tags and desired properties when
// ifMatch matches the twin's etag ("" and "*" always do), bumps the
// versions and etag, and sends the desired change to the identity's
// connection if it subscribed to desired notifications (nothing is queued
// for offline devices). It returns the updated twin once it is durable.
// Errors: ErrDeviceNotFound, ErrModuleNotFound, ErrPreconditionFailed,
// ErrInvalidArgument (a key, value, depth or size over the limits).
func (h *Hub) UpdateTwin(ctx context.Context, deviceID, moduleID string, patch TwinPatch, ifMatch string) (Twin, error) {
	return h.changeTwin(deviceID, moduleID, ifMatch, func(t *twinState, ts string) (*iothub.Action, error) {
		var tags map[string]any
		if patch.Tags != nil {
			p, err := iothub.ParseTwinPatch(mustJSON(patch.Tags))
			if err != nil {
				return nil, invalid("tags: " + err.Error())
			}
			tags = iothub.MergePatch(iothub.MergePatch(map[string]any{}, t.tags), p)
			if iothub.TwinSectionSize(tags) > MaxTagsLen {
				return nil, invalid("tags over 8 KB")
			}
		}
		var act *iothub.Action
		if patch.Desired != nil {
			body := mustJSON(patch.Desired)
			p, err := iothub.ParseTwinPatch(body)
			if err != nil {
				return nil, invalid("desired: " + err.Error())
			}
			a, v, err := t.ht.UpdateDesired(body)
			if err != nil {
				return nil, invalid("desired: " + err.Error())
			}
			t.dmeta = stampMeta(t.dmeta, p, ts, v)
			act = &a
		}
		if tags != nil {
			t.tags = tags
		}
		return act, nil
	})
}

// ReplaceTwin replaces a twin's tags and desired properties wholesale (the
// service's PUT), as UpdateTwin does for a patch; members absent from
// desired are deleted (the notification carries them as null).
func (h *Hub) ReplaceTwin(ctx context.Context, deviceID, moduleID string, tags, desired map[string]any, ifMatch string) (Twin, error) {
	return h.changeTwin(deviceID, moduleID, ifMatch, func(t *twinState, ts string) (*iothub.Action, error) {
		if tags == nil {
			tags = map[string]any{}
		}
		tp, err := iothub.ParseTwinPatch(mustJSON(tags))
		if err != nil {
			return nil, invalid("tags: " + err.Error())
		}
		tp = iothub.MergePatch(map[string]any{}, tp) // drop nulls
		if iothub.TwinSectionSize(tp) > MaxTagsLen {
			return nil, invalid("tags over 8 KB")
		}
		if desired == nil {
			desired = map[string]any{}
		}
		body := mustJSON(desired)
		doc, err := iothub.ParseTwinPatch(body)
		if err != nil {
			return nil, invalid("desired: " + err.Error())
		}
		a, v, err := t.ht.ReplaceDesired(body)
		if err != nil {
			return nil, invalid("desired: " + err.Error())
		}
		t.dmeta = stampMeta(nil, iothub.MergePatch(map[string]any{}, doc), ts, v)
		t.tags = tp
		return &a, nil
	})
}

// UpdateDesired is UpdateTwin with only a desired patch given as JSON. It
// returns the new desired $version.
func (h *Hub) UpdateDesired(ctx context.Context, deviceID, moduleID string, patchJSON []byte) (int64, error) {
	p, err := decodeObject(patchJSON)
	if err != nil {
		return 0, invalid("desired patch is not a JSON object")
	}
	tw, err := h.UpdateTwin(ctx, deviceID, moduleID, TwinPatch{Desired: p}, "")
	if err != nil {
		return 0, err
	}
	v, _ := tw.Properties.Desired["$version"].(int64)
	return v, nil
}

// changeTwin runs one service-side twin change under the twin's lock:
// etag check, fn, version bump, durable write, then the notification.
func (h *Hub) changeTwin(deviceID, moduleID, ifMatch string, fn func(t *twinState, ts string) (*iothub.Action, error)) (Twin, error) {
	t, err := h.twinFor(deviceID, moduleID)
	if err != nil {
		return Twin{}, err
	}
	key := identityKey(deviceID, moduleID)
	t.mu.Lock()
	if !matchETag(ifMatch, twinETag(t.etag)) {
		t.mu.Unlock()
		return Twin{}, ErrPreconditionFailed
	}
	// Work on a copy so a failed change (or a failed write) leaves the twin
	// as it was.
	work := &twinState{ht: iothub.RestoreHubTwin(t.ht.Snapshot()), tags: t.tags, version: t.version, etag: t.etag,
		dmeta: iothub.MergePatch(map[string]any{}, t.dmeta), rmeta: t.rmeta, modelID: t.modelID}
	act, err := fn(work, timestamp(h.now()))
	if err != nil {
		t.mu.Unlock()
		return Twin{}, err
	}
	work.version++
	work.etag++
	if err := h.store.write(put(bucketTwins, []byte(key), work.record())); err != nil {
		t.mu.Unlock()
		return Twin{}, err
	}
	t.ht, t.tags, t.version, t.etag, t.dmeta = work.ht, work.tags, work.version, work.etag, work.dmeta
	tw := h.renderTwin(deviceID, moduleID, t)
	if act != nil {
		// Sent under the twin's lock so notifications leave in version
		// order.
		if s := h.liveSession(key); s != nil && s.subscribed(iothub.FilterTwinDesired) {
			if err := s.publish(act.Topic, act.Payload, packet.QoS0, 0); err != nil {
				s.log.Debug("desired notification not sent", "err", err)
			}
		}
	}
	t.mu.Unlock()
	return tw, nil
}
