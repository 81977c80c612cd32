package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// MaxBulkDevices is the most devices one BulkDevices call takes.
const MaxBulkDevices = 100

// ImportMode is what a bulk operation does with one device.
type ImportMode string

// Import modes of IoT Hub's bulk registry operation.
const (
	ImportCreate            ImportMode = "create"
	ImportCreateOrUpdate    ImportMode = "createOrUpdate"
	ImportUpdate            ImportMode = "update"
	ImportUpdateIfMatchETag ImportMode = "updateIfMatchETag"
	ImportDelete            ImportMode = "delete"
	ImportDeleteIfMatchETag ImportMode = "deleteIfMatchETag"
)

// BulkOp is one device of a bulk operation: the identity (its ETag for the
// IfMatchETag modes) and what to do with it.
type BulkOp struct {
	Mode   ImportMode
	Device Device
}

// BulkError is the failure of one device of a bulk operation.
type BulkError struct {
	DeviceID    string `json:"deviceId"`
	ErrorCode   string `json:"errorCode"`
	ErrorStatus string `json:"errorStatus"`
}

// BulkResult is the answer to BulkDevices: the operations are applied one
// by one, so some may succeed while others fail.
type BulkResult struct {
	IsSuccessful bool        `json:"isSuccessful"`
	Errors       []BulkError `json:"errors"`
	Warnings     []BulkError `json:"warnings"`
}

// BulkDevices creates, updates or deletes up to MaxBulkDevices identities
// in one request (POST /devices). Failures of single devices are in the
// result, not the error.
func (c *Client) BulkDevices(ctx context.Context, ops []BulkOp) (*BulkResult, error) {
	if len(ops) == 0 || len(ops) > MaxBulkDevices {
		return nil, fmt.Errorf("service: BulkDevices: %w: 1 to %d devices, not %d", ErrBadRequest, MaxBulkDevices, len(ops))
	}
	items := make([]map[string]any, len(ops))
	for i, op := range ops {
		b, err := json.Marshal(op.Device)
		if err != nil {
			return nil, fmt.Errorf("service: BulkDevices: %w", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("service: BulkDevices: %w", err)
		}
		// The bulk shape names the id "id" and the etag "eTag".
		delete(m, "deviceId")
		delete(m, "etag")
		m["id"] = op.Device.DeviceID
		m["importMode"] = string(op.Mode)
		if op.Device.ETag != "" {
			m["eTag"] = op.Device.ETag
		}
		items[i] = m
	}
	var out BulkResult
	if _, err := c.do(ctx, &request{op: "BulkDevices", method: http.MethodPost, path: "/devices", body: items}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
