package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

func (s *restServer) routeTwins() {
	s.handle("GET /twins/{id}", ServiceConnect, s.getTwin)
	s.handle("PATCH /twins/{id}", ServiceConnect, s.patchTwin)
	s.handle("PUT /twins/{id}", ServiceConnect, s.putTwin)
	s.handle("GET /twins/{id}/modules/{mid}", ServiceConnect, s.getTwin)
	s.handle("PATCH /twins/{id}/modules/{mid}", ServiceConnect, s.patchTwin)
	s.handle("PUT /twins/{id}/modules/{mid}", ServiceConnect, s.putTwin)
}

// twinTarget returns the device and (for the module routes) module id.
func twinTarget(r *http.Request) (deviceID, moduleID string, err error) {
	deviceID, err = pathID(r, "id")
	if err != nil {
		return "", "", err
	}
	if r.PathValue("mid") != "" || strings.Contains(r.Pattern, "{mid}") {
		moduleID, err = pathID(r, "mid")
		if err != nil {
			return "", "", err
		}
	}
	return deviceID, moduleID, nil
}

// twinBody is a twin write: tags and properties.desired; the identity
// fields a client may send back with them (C# sends a whole twin) are
// ignored, except that deviceId and moduleId must name the twin.
type twinBody struct {
	DeviceID   *string         `json:"deviceId"`
	ModuleID   *string         `json:"moduleId"`
	Tags       json.RawMessage `json:"tags"`
	Properties *struct {
		Desired  json.RawMessage `json:"desired"`
		Reported json.RawMessage `json:"reported"`
	} `json:"properties"`
}

// object decodes a member that must be a JSON object (numbers kept exact);
// absent or null gives nil.
func object(name string, raw json.RawMessage) (map[string]any, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return nil, nil
	}
	if t[0] != '{' {
		return nil, badRequest("%s must be a JSON object", name)
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, badRequest("%s: %s", name, jsonErrorText(err))
	}
	return m, nil
}

// readTwinBody reads and checks a twin write for the twin of deviceID and
// moduleID.
func readTwinBody(r *http.Request, deviceID, moduleID string) (tags, desired map[string]any, err error) {
	var b twinBody
	if err := decodeJSON(r, maxRESTBody, &b); err != nil {
		return nil, nil, err
	}
	if b.DeviceID != nil && *b.DeviceID != "" && *b.DeviceID != deviceID {
		return nil, nil, badRequest("the body's deviceId %q does not match the path's %q", *b.DeviceID, deviceID)
	}
	if b.ModuleID != nil && *b.ModuleID != "" && *b.ModuleID != moduleID {
		return nil, nil, badRequest("the body's moduleId %q does not match the path's %q", *b.ModuleID, moduleID)
	}
	if tags, err = object("tags", b.Tags); err != nil {
		return nil, nil, err
	}
	if b.Properties != nil {
		if desired, err = object("properties.desired", b.Properties.Desired); err != nil {
			return nil, nil, err
		}
		rep, err := object("properties.reported", b.Properties.Reported)
		if err != nil {
			return nil, nil, err
		}
		for k := range rep {
			// A twin read back and sent whole carries reported with only its
			// $metadata and $version; anything else is a write.
			if k != "$metadata" && k != "$version" {
				return nil, nil, badRequest("reported properties are read-only from the service; only the device can change them")
			}
		}
	}
	// A twin read back and sent whole carries $metadata and $version in
	// desired; they are the hub's, not part of the write.
	delete(desired, "$metadata")
	delete(desired, "$version")
	return tags, desired, nil
}

func (s *restServer) getTwin(w http.ResponseWriter, r *http.Request) error {
	d, m, err := twinTarget(r)
	if err != nil {
		return err
	}
	tw, err := s.h.GetTwin(d, m)
	if err != nil {
		return err
	}
	return writeTwin(w, tw)
}

// patchTwin merges the body into the twin (PATCH).
func (s *restServer) patchTwin(w http.ResponseWriter, r *http.Request) error {
	return s.writeTwinBody(w, r, false)
}

// putTwin replaces the twin's tags and desired properties (PUT).
func (s *restServer) putTwin(w http.ResponseWriter, r *http.Request) error {
	return s.writeTwinBody(w, r, true)
}

func (s *restServer) writeTwinBody(w http.ResponseWriter, r *http.Request, replace bool) error {
	d, m, err := twinTarget(r)
	if err != nil {
		return err
	}
	tags, desired, err := readTwinBody(r, d, m)
	if err != nil {
		return err
	}
	im, _ := ifMatch(r)
	var tw Twin
	if replace {
		tw, err = s.h.ReplaceTwin(r.Context(), d, m, tags, desired, im)
	} else {
		tw, err = s.h.UpdateTwin(r.Context(), d, m, TwinPatch{Tags: tags, Desired: desired}, im)
	}
	if err != nil {
		return err
	}
	return writeTwin(w, tw)
}

func writeTwin(w http.ResponseWriter, tw Twin) error {
	if tw.Tags == nil {
		tw.Tags = map[string]any{}
	}
	return writeJSON(w, http.StatusOK, tw, tw.ETag)
}
