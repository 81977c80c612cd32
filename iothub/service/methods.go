package service

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"
)

// Direct method timeouts: IoT Hub's defaults and ranges.
const (
	DefaultMethodResponseTimeout = 30 * time.Second
	MinMethodResponseTimeout     = 5 * time.Second
	MaxMethodTimeout             = 300 * time.Second
)

// methodSlack is how much longer than the method's own timeouts the client
// waits for the hub's answer when ctx has no deadline (the C# SDK's 15 s).
const methodSlack = 15 * time.Second

// MethodCall is a direct method invocation.
type MethodCall struct {
	// Name is the method name.
	Name string
	// Payload is the request payload, JSON-encoded (a json.RawMessage is sent
	// as is); nil sends null. IoT Hub allows up to 128 KB.
	Payload any
	// ResponseTimeout is how long the hub waits for the device's answer:
	// 0 means DefaultMethodResponseTimeout; 5 s to 300 s, whole seconds.
	ResponseTimeout time.Duration
	// ConnectTimeout is how long the hub waits for an offline device to
	// connect and subscribe: 0 (fail at once) to 300 s.
	ConnectTimeout time.Duration
}

// MethodResult is the device's answer to a direct method.
type MethodResult struct {
	// Status is the status the device answered with.
	Status int `json:"status"`
	// Payload is the device's JSON payload ("null" when it sent none).
	Payload json.RawMessage `json:"payload"`
}

type methodBody struct {
	MethodName               string `json:"methodName"`
	Payload                  any    `json:"payload"`
	ResponseTimeoutInSeconds int    `json:"responseTimeoutInSeconds"`
	ConnectTimeoutInSeconds  int    `json:"connectTimeoutInSeconds"`
}

// InvokeMethod calls method m on device id and returns the device's answer
// (whatever status the device chose). A device that is not connected and
// subscribed within ConnectTimeout gives ErrDeviceNotOnline; no answer
// within ResponseTimeout gives ErrTimeout; an unknown device
// ErrDeviceNotFound. Without a deadline on ctx the call waits the two
// timeouts plus 15 s.
func (c *Client) InvokeMethod(ctx context.Context, id string, m MethodCall) (*MethodResult, error) {
	return c.invoke(ctx, "InvokeMethod", twinPath(id)+"/methods", m)
}

// InvokeModuleMethod is InvokeMethod for a module.
func (c *Client) InvokeModuleMethod(ctx context.Context, deviceID, moduleID string, m MethodCall) (*MethodResult, error) {
	return c.invoke(ctx, "InvokeModuleMethod", moduleTwinPath(deviceID, moduleID)+"/methods", m)
}

func (c *Client) invoke(ctx context.Context, op, path string, m MethodCall) (*MethodResult, error) {
	if m.Name == "" {
		return nil, fmt.Errorf("service: %s: %w: empty method name", op, ErrBadRequest)
	}
	rt := m.ResponseTimeout
	if rt == 0 {
		rt = DefaultMethodResponseTimeout
	}
	if rt < 0 || m.ConnectTimeout < 0 {
		return nil, fmt.Errorf("service: %s: %w: negative timeout", op, ErrBadRequest)
	}
	body := methodBody{
		MethodName:               m.Name,
		Payload:                  m.Payload,
		ResponseTimeoutInSeconds: seconds(rt),
		ConnectTimeoutInSeconds:  seconds(m.ConnectTimeout),
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rt+m.ConnectTimeout+methodSlack)
		defer cancel()
	}
	var out MethodResult
	if _, err := c.do(ctx, &request{op: op, method: http.MethodPost, path: path, body: body}, &out); err != nil {
		return nil, err
	}
	if out.Payload == nil {
		out.Payload = json.RawMessage("null")
	}
	return &out, nil
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int {
	s := math.Ceil(d.Seconds())
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(s)
}
