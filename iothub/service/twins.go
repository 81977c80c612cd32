package service

import (
	"context"
	"net/http"
	"time"
)

// Twin is a device or module twin in IoT Hub's REST shape: the identity's
// fields at the root, then tags and the desired and reported properties.
// Property maps hold what encoding/json decodes (map[string]any, []any,
// float64, string, bool, nil), "$metadata" and "$version" included.
//
// As a patch (UpdateTwin) or replacement (ReplaceTwin), only Tags and
// Properties.Desired count; a nil value in a patch deletes that key.
type Twin struct {
	DeviceID                  string          `json:"deviceId,omitempty"`
	ModuleID                  string          `json:"moduleId,omitempty"`
	ETag                      string          `json:"etag,omitempty"`
	DeviceETag                string          `json:"deviceEtag,omitempty"`
	Version                   int64           `json:"version,omitempty"`
	Status                    Status          `json:"status,omitempty"`
	StatusReason              string          `json:"statusReason,omitempty"`
	StatusUpdateTime          time.Time       `json:"statusUpdateTime,omitzero"`
	ConnectionState           string          `json:"connectionState,omitempty"`
	LastActivityTime          time.Time       `json:"lastActivityTime,omitzero"`
	CloudToDeviceMessageCount int             `json:"cloudToDeviceMessageCount,omitempty"`
	AuthenticationType        AuthType        `json:"authenticationType,omitempty"`
	X509Thumbprint            *X509Thumbprint `json:"x509Thumbprint,omitempty"`
	ModelID                   string          `json:"modelId,omitempty"`
	Capabilities              *Capabilities   `json:"capabilities,omitempty"`
	Tags                      map[string]any  `json:"tags,omitempty"`
	Properties                TwinProperties  `json:"properties,omitzero"`
}

// TwinProperties are a twin's desired and reported properties.
type TwinProperties struct {
	Desired  map[string]any `json:"desired,omitempty"`
	Reported map[string]any `json:"reported,omitempty"`
}

// DesiredVersion returns properties.desired.$version, or 0.
func (t *Twin) DesiredVersion() int64 { return versionOf(t.Properties.Desired) }

// ReportedVersion returns properties.reported.$version, or 0.
func (t *Twin) ReportedVersion() int64 { return versionOf(t.Properties.Reported) }

func versionOf(m map[string]any) int64 {
	if f, ok := m["$version"].(float64); ok {
		return int64(f)
	}
	return 0
}

func twinPath(deviceID string) string { return "/twins/" + escape(deviceID) }

func moduleTwinPath(deviceID, moduleID string) string {
	return "/twins/" + escape(deviceID) + "/modules/" + escape(moduleID)
}

// GetTwin returns the twin of device id, or ErrDeviceNotFound.
func (c *Client) GetTwin(ctx context.Context, id string) (*Twin, error) {
	return c.twin(ctx, "GetTwin", http.MethodGet, twinPath(id), nil, "")
}

// UpdateTwin merges patch's tags and desired properties into the twin of
// device id (PATCH; nil values delete keys) when the twin's etag is etag
// ("" or "*": unconditionally), and returns the new twin. A stale etag gives
// ErrPreconditionFailed.
func (c *Client) UpdateTwin(ctx context.Context, id string, patch *Twin, etag string) (*Twin, error) {
	return c.twin(ctx, "UpdateTwin", http.MethodPatch, twinPath(id), patchBody(patch), etag)
}

// ReplaceTwin replaces the tags and desired properties of device id's twin
// with twin's (PUT) when the twin's etag is etag ("" or "*":
// unconditionally), and returns the new twin.
func (c *Client) ReplaceTwin(ctx context.Context, id string, twin *Twin, etag string) (*Twin, error) {
	return c.twin(ctx, "ReplaceTwin", http.MethodPut, twinPath(id), replaceBody(twin), etag)
}

// GetModuleTwin returns a module's twin.
func (c *Client) GetModuleTwin(ctx context.Context, deviceID, moduleID string) (*Twin, error) {
	return c.twin(ctx, "GetModuleTwin", http.MethodGet, moduleTwinPath(deviceID, moduleID), nil, "")
}

// UpdateModuleTwin is UpdateTwin for a module's twin.
func (c *Client) UpdateModuleTwin(ctx context.Context, deviceID, moduleID string, patch *Twin, etag string) (*Twin, error) {
	return c.twin(ctx, "UpdateModuleTwin", http.MethodPatch, moduleTwinPath(deviceID, moduleID), patchBody(patch), etag)
}

// ReplaceModuleTwin is ReplaceTwin for a module's twin.
func (c *Client) ReplaceModuleTwin(ctx context.Context, deviceID, moduleID string, twin *Twin, etag string) (*Twin, error) {
	return c.twin(ctx, "ReplaceModuleTwin", http.MethodPut, moduleTwinPath(deviceID, moduleID), replaceBody(twin), etag)
}

// twinWrite is what a twin write sends: tags and desired properties only.
type twinWrite struct {
	Tags       map[string]any `json:"tags,omitempty"`
	Properties *struct {
		Desired map[string]any `json:"desired"`
	} `json:"properties,omitempty"`
}

func patchBody(t *Twin) *twinWrite {
	w := &twinWrite{}
	if t == nil {
		return w
	}
	w.Tags = t.Tags
	if t.Properties.Desired != nil {
		w.Properties = &struct {
			Desired map[string]any `json:"desired"`
		}{Desired: t.Properties.Desired}
	}
	return w
}

// twinReplace is what a replacement sends: both parts, empty when nil.
type twinReplace struct {
	Tags       map[string]any `json:"tags"`
	Properties struct {
		Desired map[string]any `json:"desired"`
	} `json:"properties"`
}

func replaceBody(t *Twin) *twinReplace {
	w := &twinReplace{Tags: map[string]any{}}
	w.Properties.Desired = map[string]any{}
	if t != nil {
		if t.Tags != nil {
			w.Tags = t.Tags
		}
		if t.Properties.Desired != nil {
			w.Properties.Desired = t.Properties.Desired
		}
	}
	return w
}

func (c *Client) twin(ctx context.Context, op, method, path string, body any, etag string) (*Twin, error) {
	r := &request{op: op, method: method, path: path}
	if body != nil {
		r.body = body
	}
	if method != http.MethodGet {
		if etag == "" {
			etag = "*"
		}
		r.ifMatch = etag
	}
	var out Twin
	if _, err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
