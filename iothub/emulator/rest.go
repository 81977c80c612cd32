package emulator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// The service REST API (contract iothub-service-rest.md), served on the
// HTTPS listener beside WebSocketPath. One file per resource:
//
//	rest.go           routing, authentication, rights, error envelopes, body limits
//	rest_devices.go   /devices/{id}, /devices/{id}/modules/{mid}, /devices, /statistics/devices
//	rest_bulk.go      POST /devices: bulk create, update and delete
//	rest_twins.go     /twins/{id}, /twins/{id}/modules/{mid}
//	rest_query.go     POST /devices/query
//	rest_methods.go   POST /twins/{id}/methods, POST /twins/{id}/modules/{mid}/methods
//	rest_messages.go  C2D purge and feedback, and the emulator's own /emulator/… endpoints
//
// Every reply is application/json; charset=utf-8 (the streams of
// /emulator/ excepted), every error carries an iothub-errorcode header and
// an envelope, and any api-version is accepted.

// Body limits of the service API: a request body over its route's limit is
// answered 413 MessageTooLarge after reading at most limit+1 bytes.
const (
	// maxRESTBody bounds registry, twin and query bodies: a twin's tags
	// (8 KB) and desired properties (32 KB) with room for JSON escapes.
	maxRESTBody = 256 << 10
	// maxMethodBody bounds a direct method invocation: a 128 KB payload
	// with its envelope.
	maxMethodBody = 256 << 10
)

// restContentType is the Content-Type of every JSON reply (Node's SDK parses
// only replies whose type contains application/json).
const restContentType = "application/json; charset=utf-8"

// serviceHandler returns the service REST API handler.
func (h *Hub) serviceHandler() http.Handler {
	s := &restServer{h: h, mux: http.NewServeMux()}
	s.routeDevices()
	s.routeTwins()
	s.routeQuery()
	s.routeMethods()
	s.routeMessages()
	return s
}

// restServer authenticates each request, then dispatches it on mux.
type restServer struct {
	h   *Hub
	mux *http.ServeMux
}

// restCtxKey keys the request's verified policy in its context.
type restCtxKey struct{}

type restAuth struct {
	policy string
	rights Rights
}

// restHandler is a route's handler: it writes a success reply itself or
// returns an error that the route turns into the error reply.
type restHandler func(w http.ResponseWriter, r *http.Request) error

// handle registers pattern, which needs any one of the rights need.
func (s *restServer) handle(pattern string, need Rights, fn restHandler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		a, _ := r.Context().Value(restCtxKey{}).(restAuth)
		if a.rights&need == 0 {
			writeRESTError(w, &restError{status: http.StatusUnauthorized, code: "IotHubUnauthorizedAccess", number: 401002,
				msg: fmt.Sprintf("Unauthorized: authorization rule '%s' does not allow access for '%s'", a.policy, strings.ReplaceAll(need.String(), ", ", " or "))})
			return
		}
		if err := fn(w, r); err != nil {
			writeRESTError(w, toRESTError(err))
		}
	})
}

func (s *restServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Authenticate before looking at the route, as IoT Hub does: a bad
	// token is 401 whatever the path.
	policy, rights, err := s.h.verifyServiceAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		writeRESTError(w, &restError{status: http.StatusUnauthorized, code: "IotHubUnauthorizedAccess", number: 401002,
			msg: "Unauthorized: " + strings.TrimPrefix(err.Error(), "emulator: unauthorized: ")})
		return
	}
	// The mux would answer a path with empty, "." or ".." segments with a
	// redirect to its cleaned form; IoT Hub paths never have them.
	if !canonicalPath(r.URL.EscapedPath()) {
		writeRESTError(w, badRequest("the path %s has empty, '.' or '..' segments", r.URL.EscapedPath()))
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// No route: 404 for an unknown path, 405 for a known path with
		// another method, in the JSON envelope rather than the mux's text.
		if allowed := s.allowed(r); allowed != "" {
			w.Header().Set("Allow", allowed)
			writeRESTError(w, &restError{status: http.StatusMethodNotAllowed, code: "MethodNotAllowed",
				msg: fmt.Sprintf("The method %s is not allowed on %s", r.Method, r.URL.EscapedPath())})
			return
		}
		writeRESTError(w, &restError{status: http.StatusNotFound, code: "NotFound",
			msg: fmt.Sprintf("No service API at %s", r.URL.EscapedPath())})
		return
	}
	ctx := context.WithValue(r.Context(), restCtxKey{}, restAuth{policy: policy, rights: rights})
	s.mux.ServeHTTP(w, r.WithContext(ctx))
}

// canonicalPath reports whether p (escaped) starts with '/' and has no
// empty, "." or ".." segment (a single trailing '/' is allowed).
func canonicalPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	segs := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
	for _, seg := range segs {
		if seg == "" && len(segs) > 1 || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// allowed lists the methods the path has routes for, or "".
func (s *restServer) allowed(r *http.Request) string {
	var ms []string
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" {
			ms = append(ms, m)
		}
	}
	return strings.Join(ms, ", ")
}

// verifyServiceAuthorization checks an Authorization header: only
// "SharedAccessSignature …" tokens of a policy are accepted.
func (h *Hub) verifyServiceAuthorization(v string) (string, Rights, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return "", 0, unauthorized("no Authorization header")
	case len(v) >= 7 && strings.EqualFold(v[:7], "Bearer "):
		return "", 0, unauthorized("Bearer (Microsoft Entra ID) tokens are not supported; use a SharedAccessSignature")
	}
	return h.VerifyServiceToken(v)
}

// restError is an error reply.
type restError struct {
	status int
	code   string // iothub-errorcode name
	number int    // six-digit code, 0 for none
	msg    string
	// envelopeB selects the method-style envelope: Message holds a JSON
	// string with errorCode, trackingId, message, info and timestampUtc.
	envelopeB bool
	info      map[string]string
}

func (e *restError) Error() string { return e.code + ": " + e.msg }

// badRequest is a 400 ArgumentInvalid.
func badRequest(format string, args ...any) *restError {
	return &restError{status: http.StatusBadRequest, code: "ArgumentInvalid", number: 400004, msg: fmt.Sprintf(format, args...)}
}

// toRESTError maps an error of the Hub's Go API (or of a handler) to its
// reply.
func toRESTError(err error) *restError {
	var re *restError
	if errors.As(err, &re) {
		return re
	}
	msg := strings.TrimPrefix(err.Error(), "emulator: ")
	switch {
	case errors.Is(err, ErrDeviceNotFound):
		return &restError{status: 404, code: "DeviceNotFound", number: 404001, msg: msg}
	case errors.Is(err, ErrModuleNotFound):
		return &restError{status: 404, code: "ModuleNotFound", number: 404010, msg: msg}
	case errors.Is(err, ErrDeviceAlreadyExists):
		return &restError{status: 409, code: "DeviceAlreadyExists", number: 409001, msg: msg}
	case errors.Is(err, ErrModuleAlreadyExists):
		return &restError{status: 409, code: "ModuleAlreadyExistsOnDevice", number: 409301, msg: msg}
	case errors.Is(err, ErrPreconditionFailed):
		return &restError{status: 412, code: "PreconditionFailed", number: 412001, msg: "Precondition failed: " + msg}
	case errors.Is(err, ErrInvalidArgument):
		return &restError{status: 400, code: "ArgumentInvalid", number: 400004, msg: msg}
	case errors.Is(err, ErrQueueFull):
		return &restError{status: 403, code: "DeviceMaximumQueueDepthExceeded", number: 403004, msg: msg}
	case errors.Is(err, ErrMessageTooLarge):
		return &restError{status: 413, code: "MessageTooLarge", number: 413001, msg: msg}
	case errors.Is(err, ErrDeviceNotOnline):
		return &restError{status: 404, code: "DeviceNotOnline", number: 404103, msg: msg, envelopeB: true}
	case errors.Is(err, ErrTimeout):
		return &restError{status: 504, code: "GatewayTimeout", number: 504101, msg: "Timed out waiting for the response from device.", envelopeB: true}
	case errors.Is(err, ErrUnauthorized):
		return &restError{status: 401, code: "IotHubUnauthorizedAccess", number: 401002, msg: "Unauthorized: " + msg}
	case errors.Is(err, ErrClosed):
		return &restError{status: 503, code: "ServiceUnavailable", number: 503001, msg: msg}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &restError{status: 503, code: "ServiceUnavailable", number: 503001, msg: "the request was cancelled"}
	}
	return &restError{status: 500, code: "ServerError", number: 500001, msg: msg}
}

// newTrackingID returns 32 hex digits, as IoT Hub's tracking ids.
func newTrackingID() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand does not fail
	return hex.EncodeToString(b[:])
}

// errorEnvelope is the JSON of every error reply.
type errorEnvelope struct {
	Message          string `json:"Message"`
	ExceptionMessage string `json:"ExceptionMessage"`
}

// writeRESTError writes e in its envelope with the iothub-errorcode header.
func writeRESTError(w http.ResponseWriter, e *restError) {
	now := time.Now().UTC()
	tid := newTrackingID()
	hdr := w.Header()
	hdr.Set("Content-Type", restContentType)
	hdr.Set("iothub-errorcode", e.code)
	hdr.Del("ETag")
	var env errorEnvelope
	if e.envelopeB {
		info := e.info
		if info == nil {
			info = map[string]string{}
		}
		inner, _ := json.Marshal(struct {
			ErrorCode    int               `json:"errorCode"`
			TrackingID   string            `json:"trackingId"`
			Message      string            `json:"message"`
			Info         map[string]string `json:"info"`
			TimestampUTC string            `json:"timestampUtc"`
		}{e.number, tid, e.msg, info, now.Format("2006-01-02T15:04:05.0000000Z")})
		env.Message = string(inner)
	} else {
		// Node splits Message on ';' and ':' to find the code name, so the
		// text after the name carries no ';'.
		env.Message = "ErrorCode:" + e.code + ";" + strings.ReplaceAll(e.msg, ";", ",")
		env.ExceptionMessage = "Tracking ID:" + tid + "-G:0-TimeStamp:" + now.Format("01/02/2006 15:04:05")
	}
	b, _ := json.Marshal(env)
	w.WriteHeader(e.status)
	w.Write(b)
}

// writeJSON writes a reply of status with v as JSON, and etag, if any, in
// the ETag header (quoted).
func writeJSON(w http.ResponseWriter, status int, v any, etag string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	hdr := w.Header()
	hdr.Set("Content-Type", restContentType)
	if etag != "" {
		hdr.Set("ETag", `"`+etag+`"`)
	}
	w.WriteHeader(status)
	w.Write(b)
	return nil
}

// writeNoContent writes a 204 reply.
func writeNoContent(w http.ResponseWriter) {
	w.Header().Set("Content-Type", restContentType)
	w.WriteHeader(http.StatusNoContent)
}

// readBody reads r's body, at most limit bytes: a longer body is 413
// MessageTooLarge (only limit+1 bytes are read).
func readBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, badRequest("reading the request body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, &restError{status: http.StatusRequestEntityTooLarge, code: "MessageTooLarge", number: 413001,
			msg: fmt.Sprintf("the request body is over %d bytes", limit)}
	}
	return b, nil
}

// decodeJSON reads a bounded JSON body into v. Unknown members are ignored
// (IoT Hub ignores the read-only fields clients send back); malformed JSON,
// a type mismatch or trailing data is 400 ArgumentInvalid.
func decodeJSON(r *http.Request, limit int64, v any) error {
	b, err := readBody(r, limit)
	if err != nil {
		return err
	}
	return unmarshalBody(b, v)
}

func unmarshalBody(b []byte, v any) error {
	if len(strings.TrimSpace(string(b))) == 0 {
		return badRequest("the request body is empty")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(v); err != nil {
		return badRequest("malformed JSON body: %s", jsonErrorText(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("malformed JSON body: data after the JSON value")
	}
	return nil
}

// jsonErrorText describes a decoding error without echoing request data
// beyond field names and offsets.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("must be %s, not %s", te.Type, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	return "invalid JSON"
}

// ifMatch returns the request's If-Match value and whether it has one.
func ifMatch(r *http.Request) (string, bool) {
	v, ok := r.Header["If-Match"]
	if !ok || len(v) == 0 {
		return "", false
	}
	return strings.TrimSpace(v[0]), true
}
