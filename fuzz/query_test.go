package fuzz

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/emulator/emulatortest"
	"github.com/hubwire/hubwire/sas"
)

// querySeeds are queries of the subset the emulator serves, then IoT Hub
// syntax it rejects and near misses. The parser itself is fuzzed by
// FuzzQuery in iothub/emulator/internal/query (which this package cannot
// import); this target drives the same parser through POST /devices/query.
var querySeeds = []string{
	"SELECT * FROM devices",
	"SELECT * FROM devices.modules WHERE moduleId = 'm1'",
	"SELECT COUNT() AS n FROM devices WHERE tags.region = 'US'",
	"SELECT * FROM devices WHERE NOT (properties.reported.fw <> '1.0' AND IS_DEFINED(properties.desired.x)) OR tags.n >= 2.5e0",
	"SELECT * FROM devices WHERE deviceId = 'it\\'s' OR connectionState = \"Connected\"",
	"SELECT * FROM devices WHERE deviceId IN ['a','b']",
	"SELECT deviceId FROM devices GROUP BY tags.region",
	"SELECT * FROM devices WHERE ((((tags.n = 1",
	"SELECT * FROM devices WHERE tags.s = '\\u00e9'",
}

// FuzzQuery posts each input as a query to a running emulator and checks
// the reply: 200 with a JSON array (and an x-ms-item-type), or 400
// ArgumentInvalid in IoT Hub's error envelope; never a 5xx, never a
// reply without its Content-Type.
func FuzzQuery(f *testing.F) {
	for _, s := range querySeeds {
		f.Add(s)
	}
	h := emulatortest.Start(f, emulator.Config{Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	for _, id := range []string{"d1", "d2"} {
		if _, err := h.CreateDevice(ctx, emulator.Device{DeviceID: id}); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := h.CreateModule(ctx, emulator.Module{DeviceID: "d1", ModuleID: "m1"}); err != nil {
		f.Fatal(err)
	}
	if _, err := h.UpdateTwin(ctx, "d1", "", emulator.TwinPatch{Tags: map[string]any{"region": "US", "n": 2}}, ""); err != nil {
		f.Fatal(err)
	}
	p, err := h.Policy("service")
	if err != nil {
		f.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: h.CertPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 8}
	f.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	url := "https://" + h.HTTPSAddr().String() + "/devices/query?api-version=2021-04-12"

	f.Fuzz(func(t *testing.T, q string) {
		body, err := json.Marshal(map[string]string{"query": q})
		if err != nil {
			return // not valid UTF-8 for encoding/json: it would send U+FFFD, no new case
		}
		tok, err := sas.NewTokenBase64(h.HostName(), p.PrimaryKey, "service", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest("POST", url, strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", tok.String())
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("reading the reply: %v", err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			var items []json.RawMessage
			if err := json.Unmarshal(b, &items); err != nil {
				t.Fatalf("200 with %q: %v", b, err)
			}
			if it := resp.Header.Get("x-ms-item-type"); it != "Twin" && it != "Raw" {
				t.Fatalf("x-ms-item-type %q", it)
			}
		case http.StatusBadRequest:
			var env struct{ Message, ExceptionMessage string }
			if json.Unmarshal(b, &env) != nil || !strings.HasPrefix(env.Message, "ErrorCode:ArgumentInvalid;") ||
				resp.Header.Get("iothub-errorcode") != "ArgumentInvalid" {
				t.Fatalf("400 %v %q", resp.Header, b)
			}
		default:
			t.Fatalf("status %d for %q: %s", resp.StatusCode, q, b)
		}
	})
}
