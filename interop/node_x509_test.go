package interop

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/testcert"
	"github.com/hubwire/hubwire/iothub/emulator"
)

// TestNodeDeviceX509: the Node SDK authenticating with a client certificate
// (connection string x509=true, setOptions({cert, key})): a device
// registered by SHA-1 thumbprint over Mqtt, one whose certificate chains to
// a registered CA with CN = device id over MqttWs, and a certificate the hub
// does not know, refused.
func TestNodeDeviceX509(t *testing.T) {
	nodeBinary(t)
	h := startHub(t, true)
	ca := testcert.New(t, testcert.Options{CommonName: "interop device CA"})
	other := testcert.New(t, testcert.Options{CommonName: "unregistered CA"})
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	if _, err := h.AddCACertificate(ctx, "interop-ca", ca.CertPEM); err != nil {
		t.Fatalf("AddCACertificate: %v", err)
	}
	thumbCert := ca.MustClient(t, "node-x509-thumb")
	if _, err := h.CreateDevice(ctx, emulator.Device{DeviceID: "node-x509-thumb", Authentication: emulator.Authentication{
		Type: emulator.AuthSelfSigned, X509Thumbprint: emulator.X509Thumbprint{PrimaryThumbprint: thumbCert.SHA1Thumbprint()}}}); err != nil {
		t.Fatalf("CreateDevice (thumbprint): %v", err)
	}
	if _, err := h.CreateDevice(ctx, emulator.Device{DeviceID: "node-x509-ca", Authentication: emulator.Authentication{
		Type: emulator.AuthCertificateAuthority}}); err != nil {
		t.Fatalf("CreateDevice (CA): %v", err)
	}
	dir := t.TempDir()
	files := func(c *testcert.Cert, name string) map[string]string {
		certFile, keyFile, err := c.WritePEM(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"DEVICE_CERT": certFile, "DEVICE_CERT_KEY": keyFile}
	}

	for _, tc := range []struct{ id, transport string }{{"node-x509-thumb", "Mqtt"}, {"node-x509-ca", "MqttWs"}} {
		t.Run(tc.id, func(t *testing.T) {
			cert := thumbCert
			if tc.id == "node-x509-ca" {
				cert = ca.MustClient(t, tc.id)
			}
			cs := h.connString(t, tc.id)
			if !strings.Contains(cs, "x509=true") {
				t.Fatalf("connection string of an X.509 device: %s", cs)
			}
			from := h.telemetryNext(t)
			p := nodeDevice(t, h, cs, tc.transport, files(cert, tc.id))
			p.Expect("connected", 20*time.Second)
			p.Expect("ready", 10*time.Second)
			p.Send(map[string]any{"cmd": "telemetry", "messageId": "x509-" + tc.id, "body": map[string]any{"x": 1}, "props": map[string]string{"auth": "cert"}})
			p.Expect("sent", 10*time.Second)
			m := h.waitTelemetry(t, from, tc.id, "x509-"+tc.id, 10*time.Second)
			checkTelemetry(t, m, tc.id, map[string]string{"auth": "cert"})
			if am := m.SystemProperties["iothub-connection-auth-method"]; !strings.Contains(am, `"x509`) {
				t.Errorf("auth method of an X.509 connection: %s", am)
			}
			p.Send(map[string]string{"cmd": "close"})
			p.Expect("closed", 10*time.Second)
		})
	}

	t.Run("unregistered", func(t *testing.T) {
		stranger := other.MustClient(t, "node-x509-ca")
		p := nodeDevice(t, h, h.connString(t, "node-x509-ca"), "Mqtt", mergeEnv(files(stranger, "stranger"), map[string]string{"OPEN_ONLY": "1", "NO_RETRY": "1"}))
		ev := p.Expect("open_failed", 20*time.Second)
		if ev.Str("name") != "UnauthorizedError" {
			t.Errorf("unknown certificate: open failed with %s (%s), want UnauthorizedError", ev.Str("name"), ev.Str("message"))
		}
	})
}

// mergeEnv returns the union of environment maps (later ones win).
func mergeEnv(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
