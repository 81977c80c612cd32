package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/emulator/emulatortest"
)

// testHub is an in-process emulator with the environment the commands
// need to reach it.
type testHub struct {
	*emulator.Hub
	caFile string
}

func newTestHub(t *testing.T) *testHub {
	t.Helper()
	h := emulatortest.New(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, h.CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testHub{Hub: h, caFile: ca}
}

// env returns the environment of a shell set up as "hubwire emulator"
// says, with the connection string of device id (registered when
// missing) or, for "", none.
func (h *testHub) env(t *testing.T, id string) map[string]string {
	t.Helper()
	env := map[string]string{
		envServiceConnStr:  h.ServiceConnectionString(),
		envCAFile:          h.caFile,
		envServiceEndpoint: "https://" + h.HTTPSAddr().String(),
		envMQTTAddress:     h.MQTTAddr().String(),
		envWSSAddress:      h.HTTPSAddr().String(),
	}
	if id != "" {
		if _, err := h.GetDevice(id); err != nil {
			emulatortest.Device(t, h.Hub, id)
		}
		cs, err := h.DeviceConnectionString(id)
		if err != nil {
			t.Fatal(err)
		}
		env[envDeviceConnStr] = cs
	}
	return env
}

// t0ctx is the context of registry calls in tests.
func t0ctx() context.Context { return context.Background() }
