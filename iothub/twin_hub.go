package iothub

import (
	"sync"
)

// Action is one message a state machine asks its caller to publish. Twin
// and method traffic goes at QoS 0 (contract §5, §6). Topic and Payload are
// owned by the receiver of the Action.
type Action struct {
	Topic   []byte
	Payload []byte
}

// HubTwin is the hub-side twin of one device or module: it answers the
// device's GET and reported PATCH requests, applies desired updates from the
// service side, and produces the responses and notifications the contract
// specifies (§5). It does no I/O. It is safe for concurrent use.
type HubTwin struct {
	mu sync.Mutex
	t  Twin
}

// NewHubTwin returns a twin with empty sections at version 1, as a live hub
// reports for a new device: {"desired":{"$version":1},"reported":{"$version":1}}.
func NewHubTwin() *HubTwin {
	return &HubTwin{t: Twin{
		Desired:  TwinSection{Version: 1, Props: map[string]any{}},
		Reported: TwinSection{Version: 1, Props: map[string]any{}},
	}}
}

// RestoreHubTwin returns a HubTwin holding a copy of t (for an emulator
// loading persisted state).
func RestoreHubTwin(t Twin) *HubTwin {
	t = t.Clone()
	if t.Desired.Props == nil {
		t.Desired.Props = map[string]any{}
	}
	if t.Reported.Props == nil {
		t.Reported.Props = map[string]any{}
	}
	return &HubTwin{t: t}
}

// Snapshot returns a deep copy of the twin.
func (h *HubTwin) Snapshot() Twin {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.t.Clone()
}

// GetBody returns the body of a GET reply:
// {"desired":{…,"$version":n},"reported":{…,"$version":m}}, no $metadata.
func (h *HubTwin) GetBody() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.t.AppendJSON(nil)
}

// PatchReported applies a device's reported-properties patch and returns
// the new reported $version. An invalid patch (bad JSON, a forbidden key,
// too deep, a value out of range, a section grown over 32 KB as
// TwinSectionSize counts it) changes nothing and returns a *TwinError
// (errors.Is ErrBadRequest, status 400).
func (h *HubTwin) PatchReported(body []byte) (int64, error) {
	patch, err := ParseTwinPatch(body)
	if err != nil {
		return 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	merged := MergePatch(cloneObject(h.t.Reported.Props), patch)
	if err := checkSectionSize(h.t.Reported.Props, merged); err != nil {
		return 0, err
	}
	h.t.Reported.Props = merged
	h.t.Reported.Version++
	return h.t.Reported.Version, nil
}

// UpdateDesired applies a desired-properties patch from the service side,
// bumps the desired $version, and returns the notification to publish on
// every connected subscriber of $iothub/twin/PATCH/properties/desired/#
// (nothing is queued for offline devices): topic
// $iothub/twin/PATCH/properties/desired/?$version=V and the patch with
// "$version":V in its body. Invalid patches change nothing and return a
// *TwinError (400).
func (h *HubTwin) UpdateDesired(body []byte) (Action, int64, error) {
	patch, err := ParseTwinPatch(body)
	if err != nil {
		return Action{}, 0, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	merged := MergePatch(cloneObject(h.t.Desired.Props), patch)
	if err := checkSectionSize(h.t.Desired.Props, merged); err != nil {
		return Action{}, 0, err
	}
	h.t.Desired.Props = merged
	h.t.Desired.Version++
	v := h.t.Desired.Version
	return Action{
		Topic:   AppendTwinDesiredTopic(nil, v),
		Payload: AppendPatchJSON(nil, patch, v),
	}, v, nil
}

// ReplaceDesired replaces the whole desired section (the service's "replace
// twin"), bumps its version and returns the notification: a patch that
// turns the old section into the new one (removed members are null).
func (h *HubTwin) ReplaceDesired(body []byte) (Action, int64, error) {
	doc, err := ParseTwinPatch(body)
	if err != nil {
		return Action{}, 0, err
	}
	for k, v := range doc {
		if v == nil {
			delete(doc, k) // a null member of a full document is just absent
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := checkSectionSize(h.t.Desired.Props, doc); err != nil {
		return Action{}, 0, err
	}
	patch := DiffPatch(h.t.Desired.Props, doc)
	h.t.Desired.Props = doc
	h.t.Desired.Version++
	v := h.t.Desired.Version
	return Action{
		Topic:   AppendTwinDesiredTopic(nil, v),
		Payload: AppendPatchJSON(nil, patch, v),
	}, v, nil
}

// HandleRequest answers a device's twin request: r must be a RouteTwinGet
// or RouteTwinPatchReported route and payload its body. It returns the
// reply to publish on the device's connection:
//
//   - GET → $iothub/twin/res/200/?$rid=R with the twin document;
//   - PATCH → $iothub/twin/res/204/?$rid=R&$version=N, empty body;
//   - an invalid patch → $iothub/twin/res/400/?$rid=R, empty body.
//
// The $rid is echoed verbatim. ok is false for any other route kind.
func (h *HubTwin) HandleRequest(r *Route, payload []byte) (reply Action, ok bool) {
	switch r.Kind {
	case RouteTwinGet:
		return Action{
			Topic:   AppendTwinResponseTopic(nil, 200, r.RequestID, -1),
			Payload: h.GetBody(),
		}, true
	case RouteTwinPatchReported:
		v, err := h.PatchReported(payload)
		if err != nil {
			return Action{Topic: AppendTwinResponseTopic(nil, StatusOf(err), r.RequestID, -1)}, true
		}
		return Action{Topic: AppendTwinResponseTopic(nil, 204, r.RequestID, v)}, true
	}
	return Action{}, false
}
