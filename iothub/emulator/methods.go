package emulator

import (
	"context"
	"errors"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/packet"
)

// MethodCall is a direct-method invocation: target, name, JSON payload,
// response timeout (0 means 30 s; 5–300 s) and connect timeout (0–300 s;
// 0 means the device must already be online).
type MethodCall = iothub.MethodCall

// MethodResult is a device's answer: its status and JSON payload.
type MethodResult = iothub.MethodResult

// InvokeMethod calls a direct method on a device (call.ModuleID "") or
// module and returns its answer (contract §6). It waits up to
// call.ConnectTimeout for the identity to be connected and subscribed to
// $iothub/methods/POST/#, publishes the request at QoS 0, and waits up to
// the response timeout for the reply. Errors: ErrDeviceNotFound,
// ErrModuleNotFound, ErrInvalidArgument (a bad name, timeout or payload),
// ErrDeviceNotOnline (404103), ErrTimeout (504101), ctx.Err().
func (h *Hub) InvokeMethod(ctx context.Context, call MethodCall) (MethodResult, error) {
	if call.ModuleID == "" {
		if _, err := h.GetDevice(call.DeviceID); err != nil {
			return MethodResult{}, err
		}
	} else if _, err := h.GetModule(call.DeviceID, call.ModuleID); err != nil {
		return MethodResult{}, err
	}
	_, connect, err := call.Timeouts()
	if err != nil {
		return MethodResult{}, invalid(err.Error())
	}
	key := identityKey(call.DeviceID, call.ModuleID)
	s := h.waitMethodSubscriber(ctx, key, connect)
	if err := ctx.Err(); err != nil {
		return MethodResult{}, err
	}
	act, w, err := h.methods.Invoke(call, s != nil)
	switch {
	case errors.Is(err, iothub.ErrDeviceNotOnline):
		return MethodResult{}, ErrDeviceNotOnline
	case err != nil:
		return MethodResult{}, invalid(err.Error())
	}
	if err := s.publish(act.Topic, act.Payload, packet.QoS0, 0); err != nil {
		w.Cancel(ErrDeviceNotOnline)
		return MethodResult{}, ErrDeviceNotOnline
	}
	res, err := w.Wait(ctx)
	switch {
	case err == nil:
		return res, nil
	case errors.Is(err, iothub.ErrTimeout):
		return MethodResult{}, ErrTimeout
	case ctx.Err() != nil:
		w.Cancel(ctx.Err())
		return MethodResult{}, ctx.Err()
	}
	return MethodResult{}, err
}

// waitMethodSubscriber returns the identity's connection once it is live
// and subscribed to methods, waiting up to d; nil when it is not by then.
func (h *Hub) waitMethodSubscriber(ctx context.Context, key string, d time.Duration) *session {
	deadline := time.Now().Add(d)
	for {
		changed := h.waitChange()
		if s := h.liveSession(key); s != nil && s.subscribed(iothub.FilterMethods) {
			return s
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		t := time.NewTimer(left)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
		case <-h.stop:
		}
		t.Stop()
		if ctx.Err() != nil {
			return nil
		}
	}
}
