// Package emulatortest starts IoT Hub emulators for Go tests, in the spirit
// of net/http/httptest: one call gives a running hub on loopback ports
// chosen at run time, with in-memory state, closed when the test ends.
//
//	func TestTelemetry(t *testing.T) {
//		hub := emulatortest.New(t)
//		cs := emulatortest.Device(t, hub, "dev1") // connection string
//		// dial hub.MQTTAddr() (or hub.WebSocketURL()) trusting hub.CertPool(),
//		// with SNI hub.HostName(); read what arrives with hub.ReadTelemetry.
//	}
package emulatortest

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator"
)

// New starts a hub with NewConfig's defaults and closes it when the test
// ends. It fails the test if the hub cannot start.
func New(t testing.TB) *emulator.Hub {
	t.Helper()
	return Start(t, emulator.Config{})
}

// Start starts a hub with cfg, replacing empty addresses with loopback
// ":0" ports and a nil Logger with one writing to the test log, and
// closes it when the test ends. DataDir stays as given (empty: in memory).
func Start(t testing.TB, cfg emulator.Config) *emulator.Hub {
	t.Helper()
	if cfg.MQTTAddr == "" {
		cfg.MQTTAddr = "127.0.0.1:0"
	}
	if cfg.HTTPSAddr == "" {
		cfg.HTTPSAddr = "127.0.0.1:0"
	}
	var w *testWriter
	if cfg.Logger == nil {
		w = &testWriter{t: t}
		cfg.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := emulator.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("emulatortest: start hub: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("emulatortest: close hub: %v", err)
		}
		if w != nil {
			w.stop()
		}
	})
	return h
}

// Device registers a device with generated SAS keys and returns its
// connection string. It fails the test on error.
func Device(t testing.TB, h *emulator.Hub, id string) string {
	t.Helper()
	if _, err := h.CreateDevice(context.Background(), emulator.Device{DeviceID: id}); err != nil {
		t.Fatalf("emulatortest: create device %q: %v", id, err)
	}
	cs, err := h.DeviceConnectionString(id)
	if err != nil {
		t.Fatalf("emulatortest: connection string of %q: %v", id, err)
	}
	return cs
}

// Module registers a module (and its device when missing) and returns its
// connection string.
func Module(t testing.TB, h *emulator.Hub, deviceID, moduleID string) string {
	t.Helper()
	if _, err := h.GetDevice(deviceID); err != nil {
		Device(t, h, deviceID)
	}
	if _, err := h.CreateModule(context.Background(), emulator.Module{DeviceID: deviceID, ModuleID: moduleID}); err != nil {
		t.Fatalf("emulatortest: create module %q/%q: %v", deviceID, moduleID, err)
	}
	cs, err := h.ModuleConnectionString(deviceID, moduleID)
	if err != nil {
		t.Fatalf("emulatortest: connection string of %q/%q: %v", deviceID, moduleID, err)
	}
	return cs
}

// testWriter sends log lines to t.Log until the test's cleanup stops it
// (logging after a test has ended would panic).
type testWriter struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
