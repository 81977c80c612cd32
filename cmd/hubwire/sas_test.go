package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hubwire/hubwire/sas"
)

// The key of vector V1 in shared/testvectors/sas.json.
const testKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func parseToken(t *testing.T, out string) sas.Token {
	t.Helper()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("output is not one line: %q", out)
	}
	tok, err := sas.ParseToken(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	return tok
}

func TestSASTokenDevice(t *testing.T) {
	cs := "HostName=myhub.azure-devices.net;DeviceId=dev#1;SharedAccessKey=" + testKey
	before := time.Now()
	r := hubwire(t, "sas", "token", "--connection-string", cs, "--ttl", "2h")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	tok := parseToken(t, r.stdout)
	key, _ := sas.DecodeKey(testKey)
	id := sas.Identity{Host: "myhub.azure-devices.net", DeviceID: "dev#1"}
	if err := tok.VerifyIdentity(id, key, time.Now()); err != nil {
		t.Errorf("token does not verify for %v: %v", id, err)
	}
	if err := tok.VerifyIdentity(sas.Identity{Host: "myhub.azure-devices.net", DeviceID: "dev"}, key, time.Now()); !errors.Is(err, sas.ErrResourceMismatch) {
		t.Errorf("token covers another device: %v", err)
	}
	if tok.KeyName != "" {
		t.Errorf("device token has key name %q", tok.KeyName)
	}
	if lo, hi := before.Add(2*time.Hour-time.Second), time.Now().Add(2*time.Hour); tok.Expiry.Before(lo) || tok.Expiry.After(hi) {
		t.Errorf("expiry %v, want about 2h from now", tok.Expiry)
	}
}

func TestSASTokenModuleFromEnv(t *testing.T) {
	cs := "HostName=myhub.azure-devices.net;DeviceId=dev1;ModuleId=mod1;SharedAccessKey=" + testKey
	inv := invocation{env: map[string]string{envDeviceConnStr: cs, envServiceConnStr: "HostName=other;SharedAccessKeyName=p;SharedAccessKey=" + testKey}}
	r := inv.hubwire(t, "sas", "token", "--ttl", "7d", "--json")
	if r.code != 0 {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var out struct {
		Token, Resource, KeyName string
		Expiry                   time.Time
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("output %q: %v", r.stdout, err)
	}
	if want := "myhub.azure-devices.net/devices/dev1/modules/mod1"; out.Resource != want {
		t.Errorf("resource %q, want %q (the device string wins over the service one)", out.Resource, want)
	}
	tok, err := sas.ParseToken(out.Token)
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Expiry.Equal(out.Expiry) || time.Until(tok.Expiry) < 7*24*time.Hour-time.Minute {
		t.Errorf("expiry %v (json %v), want 7 days from now", tok.Expiry, out.Expiry)
	}
	key, _ := sas.DecodeKey(testKey)
	if err := tok.VerifyIdentity(sas.Identity{Host: "myhub.azure-devices.net", DeviceID: "dev1", ModuleID: "mod1"}, key, time.Now()); err != nil {
		t.Error(err)
	}
}

func TestSASTokenPolicy(t *testing.T) {
	cs := "HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=" + testKey
	key, _ := sas.DecodeKey(testKey)
	t.Run("hub", func(t *testing.T) {
		inv := invocation{stdin: cs + "\n"}
		r := inv.hubwire(t, "sas", "token", "--connection-string", "-")
		tok := parseToken(t, r.stdout)
		if tok.KeyName != "iothubowner" {
			t.Errorf("key name %q", tok.KeyName)
		}
		if res, _ := tok.Resource(); res != "myhub.azure-devices.net" {
			t.Errorf("resource %q", res)
		}
		if err := tok.Verify(key, time.Now()); err != nil {
			t.Error(err)
		}
	})
	t.Run("scoped-to-a-module", func(t *testing.T) {
		inv := invocation{env: map[string]string{envServiceConnStr: cs}}
		r := inv.hubwire(t, "sas", "token", "--device", "dev1", "--module", "m")
		tok := parseToken(t, r.stdout)
		if res, _ := tok.Resource(); res != "myhub.azure-devices.net/devices/dev1/modules/m" || tok.KeyName != "iothubowner" {
			t.Errorf("resource %q, key name %q", res, tok.KeyName)
		}
	})
}

func TestSASTokenErrors(t *testing.T) {
	device := "HostName=h;DeviceId=d;SharedAccessKey=" + testKey
	cases := []struct {
		name string
		inv  invocation
		args []string
		code int
		want string
	}{
		{"no-connection-string", invocation{}, nil, 2, "no connection string: give --connection-string or set $IOTHUB_DEVICE_CONNECTION_STRING or $IOTHUB_CONNECTION_STRING"},
		{"malformed", invocation{}, []string{"--connection-string", "HostName=h;DeviceId=d;SharedAccessKey=" + testKey + ";Bogus=x"}, 1, `--connection-string: sas: connection string field "Bogus": unknown key`},
		{"malformed-env", invocation{env: map[string]string{envDeviceConnStr: "DeviceId=d;SharedAccessKey=" + testKey}}, nil, 1, "$IOTHUB_DEVICE_CONNECTION_STRING: sas: connection string"},
		{"x509", invocation{}, []string{"--connection-string", "HostName=h;DeviceId=d;x509=true"}, 1, "uses X.509"},
		{"token-not-key", invocation{}, []string{"--connection-string", "HostName=h;DeviceId=d;SharedAccessSignature=SharedAccessSignature sr=h%2Fdevices%2Fd&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D&se=1700000000"}, 1, "holds a SharedAccessSignature, not a key"},
		{"device-with-device-string", invocation{}, []string{"--connection-string", device, "--device", "x"}, 2, "--device needs a policy connection string"},
		{"module-without-device", invocation{}, []string{"--connection-string", device, "--module", "x"}, 2, "--module needs --device"},
		{"zero-ttl", invocation{}, []string{"--connection-string", device, "--ttl", "0s"}, 2, "--ttl must be positive"},
		{"empty-stdin", invocation{}, []string{"--connection-string", "-"}, 2, "the standard input holds no secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.inv.hubwire(t, append([]string{"sas", "token"}, c.args...)...)
			wantOneLineError(t, r, c.code, c.want)
			if strings.Contains(r.stderr, testKey) || strings.Contains(r.stderr, "gFSfLGMX") {
				t.Errorf("the error echoes a secret: %q", r.stderr)
			}
		})
	}
}
