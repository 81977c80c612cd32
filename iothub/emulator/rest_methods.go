package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// maxMethodPayload is IoT Hub's limit on a direct method's request payload.
const maxMethodPayload = 128 << 10

func (s *restServer) routeMethods() {
	s.handle("POST /twins/{id}/methods", ServiceConnect, s.invokeMethod)
	s.handle("POST /twins/{id}/methods/{$}", ServiceConnect, s.invokeMethod)
	s.handle("POST /twins/{id}/modules/{mid}/methods", ServiceConnect, s.invokeMethod)
	s.handle("POST /twins/{id}/modules/{mid}/methods/{$}", ServiceConnect, s.invokeMethod)
}

// methodRequest is the invocation body. Node always sends both timeouts and
// payload (null by default); C# omits zero timeouts.
type methodRequest struct {
	MethodName               *string         `json:"methodName"`
	Payload                  json.RawMessage `json:"payload"`
	ResponseTimeoutInSeconds *float64        `json:"responseTimeoutInSeconds"`
	ConnectTimeoutInSeconds  *float64        `json:"connectTimeoutInSeconds"`
}

// timeoutSeconds converts a timeout member to a duration: whole seconds
// from 0 to 300, absent meaning 0 (the hub's default).
func timeoutSeconds(name string, v *float64) (time.Duration, error) {
	if v == nil {
		return 0, nil
	}
	if *v < 0 || *v > 300 || *v != float64(int64(*v)) {
		return 0, badRequest("%s must be a whole number of seconds from 0 to 300", name)
	}
	return time.Duration(*v) * time.Second, nil
}

// hms formats d as IoT Hub's info.timeout: hh:mm:ss.
func hms(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
}

func (s *restServer) invokeMethod(w http.ResponseWriter, r *http.Request) error {
	d, m, err := twinTarget(r)
	if err != nil {
		return err
	}
	var req methodRequest
	if err := decodeJSON(r, maxMethodBody, &req); err != nil {
		return err
	}
	if req.MethodName == nil || *req.MethodName == "" {
		return badRequest("methodName is required")
	}
	payload := bytes.TrimSpace(req.Payload)
	if len(payload) > maxMethodPayload {
		return &restError{status: http.StatusRequestEntityTooLarge, code: "MessageTooLarge", number: 413001,
			msg: fmt.Sprintf("the method payload is over %d bytes", maxMethodPayload)}
	}
	rt, err := timeoutSeconds("responseTimeoutInSeconds", req.ResponseTimeoutInSeconds)
	if err != nil {
		return err
	}
	if rt != 0 && rt < 5*time.Second {
		return badRequest("responseTimeoutInSeconds must be from 5 to 300")
	}
	ct, err := timeoutSeconds("connectTimeoutInSeconds", req.ConnectTimeoutInSeconds)
	if err != nil {
		return err
	}
	res, err := s.h.InvokeMethod(r.Context(), MethodCall{DeviceID: d, ModuleID: m, Name: *req.MethodName,
		Payload: payload, ResponseTimeout: rt, ConnectTimeout: ct})
	if errors.Is(err, ErrDeviceNotOnline) {
		state := ""
		if m == "" {
			dev, _ := s.h.GetDevice(d)
			state = dev.ConnectionState
		} else {
			mod, _ := s.h.GetModule(d, m)
			state = mod.ConnectionState
		}
		msg := "Timed out waiting for device to connect."
		if state == Connected {
			msg = "Timed out waiting for device to subscribe."
		}
		return &restError{status: http.StatusNotFound, code: "DeviceNotOnline", number: 404103, msg: msg,
			envelopeB: true, info: map[string]string{"timeout": hms(ct)}}
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", restContentType)
	w.WriteHeader(http.StatusOK)
	w.Write(res.AppendJSON(nil))
	return nil
}
