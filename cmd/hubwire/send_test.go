package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hubwire/hubwire/iothub/emulator"
)

func TestSendOneMessage(t *testing.T) {
	h := newTestHub(t)
	for _, tr := range []string{"mqtt", "mqtt-ws"} {
		t.Run(tr, func(t *testing.T) {
			_, next := h.TelemetryRange()
			inv := invocation{env: h.env(t, "dev1")}
			r := inv.hubwire(t, "send", "--transport", tr, `{"temperature":21.5}`, "--property", "alert=false", "--property", "site=lab 1", "--message-id", "m-{seq}")
			if r.code != 0 {
				t.Fatalf("code %d, stderr %q", r.code, r.stderr)
			}
			if !regexp.MustCompile(`^sent 1 message \(20 bytes\) as dev1, acknowledged in \d+\.\d\d ms\n$`).MatchString(r.stdout) {
				t.Errorf("stdout %q", r.stdout)
			}
			msgs, err := h.ReadTelemetry(emulator.FromSequence(next), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 1 {
				t.Fatalf("%d messages in the log, want 1", len(msgs))
			}
			m := msgs[0]
			if string(m.Body) != `{"temperature":21.5}` || m.Properties["alert"] != "false" || m.Properties["site"] != "lab 1" ||
				m.SystemProperties["message-id"] != "m-1" || m.SystemProperties["content-type"] != "application/json" || m.DeviceID != "dev1" {
				t.Errorf("logged %+v", m)
			}
		})
	}
}

func TestSendCountAndRate(t *testing.T) {
	h := newTestHub(t)
	inv := invocation{env: h.env(t, "dev2")}
	for _, args := range [][]string{
		{"send", "--count", "5", "seq {seq}"},
		{"send", "--count", "5", "--rate", "200", "seq {seq}"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, next := h.TelemetryRange()
			r := inv.hubwire(t, args...)
			if r.code != 0 {
				t.Fatalf("code %d, stderr %q", r.code, r.stderr)
			}
			if !regexp.MustCompile(`^sent 5 messages \(25 bytes\) as dev2 in \d+\.\d\d s: 5 acknowledged \([\d.]+ msg/s\), 0 errors\nlatency: p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms\n$`).MatchString(r.stdout) {
				t.Errorf("stdout %q", r.stdout)
			}
			msgs, err := h.ReadTelemetry(emulator.FromSequence(next), 10)
			if err != nil {
				t.Fatal(err)
			}
			var bodies []string
			for _, m := range msgs {
				bodies = append(bodies, string(m.Body))
				if ct := m.SystemProperties["content-type"]; ct != "" {
					t.Errorf("a text payload was sent with content type %q", ct)
				}
			}
			if got := strings.Join(bodies, ","); got != "seq 1,seq 2,seq 3,seq 4,seq 5" {
				t.Errorf("logged bodies %s", got)
			}
		})
	}
}

func TestSendDefaultPayloadFromStdinAndModule(t *testing.T) {
	h := newTestHub(t)
	env := h.env(t, "")
	cs, err := moduleCS(h, "dev3", "mod")
	if err != nil {
		t.Fatal(err)
	}
	_, next := h.TelemetryRange()
	r := invocation{env: env, stdin: cs + "\n"}.hubwire(t, "send", "--connection-string", "-")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "sent 1 message (9 bytes) as dev3/mod,") {
		t.Fatalf("code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	msgs, _ := h.ReadTelemetry(emulator.FromSequence(next), 10)
	if len(msgs) != 1 || string(msgs[0].Body) != `{"seq":1}` || msgs[0].ModuleID != "mod" {
		t.Errorf("logged %+v", msgs)
	}
}

// The connection string and the payload both from the standard input:
// the first line, then the rest.
func TestSendSecretAndPayloadFromStdin(t *testing.T) {
	h := newTestHub(t)
	env := h.env(t, "dev5")
	cs := env[envDeviceConnStr]
	delete(env, envDeviceConnStr)
	_, next := h.TelemetryRange()
	r := invocation{env: env, stdin: cs + "\n{\"a\":\n1}"}.hubwire(t, "send", "--connection-string", "-", "-")
	if r.code != 0 {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	msgs, _ := h.ReadTelemetry(emulator.FromSequence(next), 10)
	if len(msgs) != 1 || string(msgs[0].Body) != "{\"a\":\n1}" || msgs[0].DeviceID != "dev5" {
		t.Errorf("logged %+v", msgs)
	}
}

func TestSendErrors(t *testing.T) {
	h := newTestHub(t)
	env := h.env(t, "dev4")
	wrongKey := strings.Replace(env[envDeviceConnStr], "SharedAccessKey=", "SharedAccessKey=AAAA", 1)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no-connection-string", map[string]string{}, nil, 2, "no connection string: give --connection-string or set $IOTHUB_DEVICE_CONNECTION_STRING"},
		{"bad-transport", env, []string{"--transport", "amqp"}, 2, `--transport "amqp": want mqtt or mqtt-ws`},
		{"bad-qos", env, []string{"--qos", "2"}, 2, "--qos 2: IoT Hub takes 0 or 1"},
		{"two-payloads", env, []string{"a", "b"}, 2, `unexpected argument "b"`},
		{"service-string", map[string]string{envDeviceConnStr: h.ServiceConnectionString()}, nil, 1, "$IOTHUB_DEVICE_CONNECTION_STRING: device: connection string has no DeviceId"},
		{"wrong-key", map[string]string{envDeviceConnStr: wrongKey, envCAFile: h.caFile, envMQTTAddress: h.MQTTAddr().String()}, nil, 1, "connecting: device: hub refused CONNECT"},
		{"untrusted", map[string]string{envDeviceConnStr: env[envDeviceConnStr], envMQTTAddress: h.MQTTAddr().String()}, []string{"--timeout", "5s"}, 1, "connecting: "},
		{"missing-ca", map[string]string{envDeviceConnStr: env[envDeviceConnStr], envCAFile: h.caFile + ".missing"}, nil, 1, "CA file: open "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := invocation{env: c.env}.hubwire(t, append([]string{"send"}, c.args...)...)
			wantOneLineError(t, r, c.code, c.want)
			if key := env[envDeviceConnStr][strings.Index(env[envDeviceConnStr], "SharedAccessKey=")+16:]; strings.Contains(r.stderr, key) {
				t.Errorf("the error echoes the key: %q", r.stderr)
			}
		})
	}
}

// moduleCS registers a device and a module and returns the module's
// connection string.
func moduleCS(h *testHub, deviceID, moduleID string) (string, error) {
	if _, err := h.GetDevice(deviceID); err != nil {
		if _, err := h.CreateDevice(t0ctx(), emulator.Device{DeviceID: deviceID}); err != nil {
			return "", err
		}
	}
	if _, err := h.CreateModule(t0ctx(), emulator.Module{DeviceID: deviceID, ModuleID: moduleID}); err != nil {
		return "", err
	}
	return h.ModuleConnectionString(deviceID, moduleID)
}
