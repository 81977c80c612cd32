package iothub

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUsernameAppend(t *testing.T) {
	tests := []struct {
		name string
		u    Username
		want string
	}{
		{"device-default-version", Username{Host: "hub.azure-devices.net", DeviceID: "dev1"},
			"hub.azure-devices.net/dev1/?api-version=2021-04-12"},
		{"module", Username{Host: "h", DeviceID: "d", ModuleID: "m", APIVersion: "2020-09-30"},
			"h/d/m/?api-version=2020-09-30"},
		{"client-type-and-model", Username{Host: "h", DeviceID: "d", ClientType: "hubwire/0.1 (go; linux)",
			ModelID: "dtmi:com:example:Thermostat;1"},
			"h/d/?api-version=2021-04-12&DeviceClientType=hubwire%2F0.1%20%28go%3B%20linux%29&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.u.String(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestParseUsername(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Username
	}{
		{"device", "hub.azure-devices.net/dev1/?api-version=2021-04-12",
			Username{Host: "hub.azure-devices.net", DeviceID: "dev1", APIVersion: "2021-04-12"}},
		{"module", "h/d/m/?api-version=2020-09-30&DeviceClientType=x%2F1",
			Username{Host: "h", DeviceID: "d", ModuleID: "m", APIVersion: "2020-09-30", ClientType: "x/1"}},
		{"model-id", "h/d/?api-version=2021-04-12&model-id=dtmi%3Acom%3Aexample%3AThermostat%3B1",
			Username{Host: "h", DeviceID: "d", APIVersion: "2021-04-12", ModelID: "dtmi:com:example:Thermostat;1"}},
		{"edge-auth-chain-ignored", "h/d/m/?api-version=2018-06-30&auth-chain=a;b",
			Username{Host: "h", DeviceID: "d", ModuleID: "m", APIVersion: "2018-06-30"}},
		{"legacy-device", "h/dev1/api-version=2016-11-14",
			Username{Host: "h", DeviceID: "dev1", APIVersion: "2016-11-14", Legacy: true}},
		{"legacy-module", "h/d/m/api-version=2016-11-14&DeviceClientType=c",
			Username{Host: "h", DeviceID: "d", ModuleID: "m", APIVersion: "2016-11-14", ClientType: "c", Legacy: true}},
		{"no-api-version", "h/d/?", Username{Host: "h", DeviceID: "d"}},
		// edgeHub keeps the first of duplicate parameters.
		{"duplicates-first-wins", "h/d/?api-version=2021-04-12&DeviceClientType=a&api-version=2016-11-14&DeviceClientType=b&model-id=x&model-id=y",
			Username{Host: "h", DeviceID: "d", APIVersion: "2021-04-12", ClientType: "a", ModelID: "x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseUsername([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
	bad := []string{
		"", "h", "h/d", "h/d/x", "h/d/m/x", "h/d/m/n/?api-version=1", "/d/?api-version=1",
		"h//?api-version=1", "h/d//?api-version=1", "h/d e/?api-version=1", "h/d/?=x",
	}
	for _, in := range bad {
		t.Run("bad/"+in, func(t *testing.T) {
			if _, err := ParseUsername([]byte(in)); !errors.Is(err, ErrMalformedUsername) {
				t.Errorf("ParseUsername(%q) = %v, want ErrMalformedUsername", in, err)
			}
		})
	}
}

func TestUsernameRoundTripAndClientID(t *testing.T) {
	u := Username{Host: "h", DeviceID: "d", ModuleID: "m", APIVersion: "2021-04-12", ClientType: "a b&c", ModelID: "dtmi:x;1"}
	got, err := ParseUsername(u.Append(nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if u.ClientID() != "d/m" || !u.MatchesClientID([]byte("d/m")) || u.MatchesClientID([]byte("d")) || u.MatchesClientID([]byte("d/n")) {
		t.Error("module client id")
	}
	dev := Username{Host: "h", DeviceID: "d"}
	if dev.ClientID() != "d" || !dev.MatchesClientID([]byte("d")) || dev.MatchesClientID([]byte("d/m")) {
		t.Error("device client id")
	}
}
