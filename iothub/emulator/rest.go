package emulator

import (
	"net/http"
)

// serviceHandler returns the handler of the service REST API served on the
// HTTPS listener next to the WebSocket endpoint. It answers every request
// 404 in IoT Hub's error envelope until the REST API is built (rest*.go).
func (h *Hub) serviceHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("iothub-errorcode", "NotFound")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"Message":"ErrorCode:NotFound;The requested resource was not found.","ExceptionMessage":""}`))
	})
}
