package emulator_test

// The service REST API over real HTTPS on loopback, request by request:
// authentication and rights, error envelopes and headers, bad input of
// every kind. The Go client's view is tested in iothub/service.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/emulator/emulatortest"
	"github.com/hubwire/hubwire/sas"
)

type restHub struct {
	t    *testing.T
	h    *emulator.Hub
	base string
	http *http.Client
}

func newRESTHub(t *testing.T) *restHub {
	t.Helper()
	h := emulatortest.New(t)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: h.CertPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &restHub{t: t, h: h, base: "https://" + h.HTTPSAddr().String(), http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// token signs a service token of policy valid for ttl.
func (r *restHub) token(policy string, ttl time.Duration) string {
	r.t.Helper()
	p, err := r.h.Policy(policy)
	if err != nil {
		r.t.Fatal(err)
	}
	tok, err := sas.NewTokenBase64(r.h.HostName(), p.PrimaryKey, policy, time.Now().Add(ttl))
	if err != nil {
		r.t.Fatal(err)
	}
	return tok.String()
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// envelope decodes an error reply's envelope A, or B inside A's Message.
func (rp reply) envelope() (msg, exc string, inner map[string]any) {
	var env struct{ Message, ExceptionMessage string }
	json.Unmarshal(rp.body, &env)
	if strings.HasPrefix(env.Message, "{") {
		json.Unmarshal([]byte(env.Message), &inner)
	}
	return env.Message, env.ExceptionMessage, inner
}

// do sends one request with auth as the Authorization header ("" for
// none) and checks what every reply must have.
func (r *restHub) do(method, path, auth, body string, hdr map[string]string) reply {
	r.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("%s %s: reading the reply: %v", method, path, err)
	}
	rp := reply{status: resp.StatusCode, header: resp.Header, body: b}
	if rp.status >= 500 && rp.status != http.StatusGatewayTimeout && rp.status != http.StatusServiceUnavailable {
		r.t.Errorf("%s %s: %d %s", method, path, rp.status, b)
	}
	ct := resp.Header.Get("Content-Type")
	if !strings.HasPrefix(path, "/emulator/telemetry") && !strings.HasPrefix(path, "/emulator/events") && ct != "application/json; charset=utf-8" {
		r.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if rp.status >= 400 {
		if resp.Header.Get("iothub-errorcode") == "" {
			r.t.Errorf("%s %s: %d without iothub-errorcode", method, path, rp.status)
		}
		var env struct{ Message, ExceptionMessage *string }
		if err := json.Unmarshal(b, &env); err != nil || env.Message == nil || env.ExceptionMessage == nil {
			r.t.Errorf("%s %s: %d body %q is not an error envelope", method, path, rp.status, b)
		}
	}
	return rp
}

// want checks status and error code.
func want(t *testing.T, what string, rp reply, status int, code string) {
	t.Helper()
	if rp.status != status {
		t.Errorf("%s: status %d, want %d (%s)", what, rp.status, status, rp.body)
		return
	}
	if got := rp.header.Get("iothub-errorcode"); got != code {
		t.Errorf("%s: iothub-errorcode %q, want %q", what, got, code)
	}
	if code != "" {
		msg, _, inner := rp.envelope()
		if inner == nil && !strings.HasPrefix(msg, "ErrorCode:"+code+";") {
			t.Errorf("%s: Message %q does not start with ErrorCode:%s;", what, msg, code)
		}
	}
}

func TestRESTAuthentication(t *testing.T) {
	r := newRESTHub(t)
	emulatortest.Device(t, r.h, "d1")
	owner, _ := r.h.Policy("iothubowner")
	key, _ := sas.DecodeKey(owner.PrimaryKey)
	now := time.Now()
	sign := func(sr string, se time.Time, skn string) string {
		return sas.NewToken(sr, key, skn, se).String()
	}
	raw := func(sr string) string { // sr raw, as Node sends it
		tok := sas.NewToken(sr, key, "iothubowner", now.Add(time.Hour))
		return strings.Replace(tok.String(), "sr="+tok.EncodedResource, "sr="+sr, 1)
	}
	devKey := emulatortest.Device(t, r.h, "d2")
	dcs, _ := sas.ParseConnectionString(devKey)
	dk, _ := dcs.Key()
	tests := []struct {
		name, auth string
		status     int
	}{
		{"owner", r.token("iothubowner", time.Hour), 200},
		{"raw sr", raw("localhost"), 200},
		{"sr with port", sign("localhost:443", now.Add(time.Hour), "iothubowner"), 200},
		{"sr host in upper case", sign("LOCALHOST", now.Add(time.Hour), "iothubowner"), 200},
		{"within the skew", sign("localhost", now.Add(-2*time.Minute), "iothubowner"), 200},
		{"secondary key", func() string {
			k2, _ := sas.DecodeKey(owner.SecondaryKey)
			return sas.NewToken("localhost", k2, "iothubowner", now.Add(time.Hour)).String()
		}(), 200},
		{"no header", "", 401},
		{"bearer", "Bearer eyJhbGciOi.x.y", 401},
		{"garbage", "SharedAccessSignature nonsense", 401},
		{"expired", sign("localhost", now.Add(-10*time.Minute), "iothubowner"), 401},
		{"other hub", sign("otherhub.azure-devices.net", now.Add(time.Hour), "iothubowner"), 401},
		{"unknown policy", sign("localhost", now.Add(time.Hour), "nobody"), 401},
		{"device key", sas.NewToken(sas.DeviceResource("localhost", "d2"), dk, "", now.Add(time.Hour)).String(), 401},
		{"wrong signature", strings.Replace(r.token("iothubowner", time.Hour), "sig=", "sig=A", 1), 401},
	}
	for _, tt := range tests {
		rp := r.do("GET", "/devices/d1?api-version=2021-04-12", tt.auth, "", nil)
		if rp.status != tt.status {
			t.Errorf("%s: status %d, want %d (%s)", tt.name, rp.status, tt.status, rp.body)
		}
		if tt.status == 401 {
			want(t, tt.name, rp, 401, "IotHubUnauthorizedAccess")
		}
	}
	// Unauthenticated requests are refused before routing.
	want(t, "unknown path without a token", r.do("GET", "/nothing", "", "", nil), 401, "IotHubUnauthorizedAccess")
}

func TestRESTRights(t *testing.T) {
	r := newRESTHub(t)
	emulatortest.Device(t, r.h, "d1")
	emulatortest.Module(t, r.h, "d1", "m1")
	type route struct {
		method, path, body string
		need               []string // policies allowed
	}
	read := []string{"iothubowner", "registryRead", "registryReadWrite"}
	write := []string{"iothubowner", "registryReadWrite"}
	svc := []string{"iothubowner", "service"}
	routes := []route{
		{"GET", "/devices/d1", "", read},
		{"GET", "/devices/", "", read},
		{"GET", "/devices", "", read},
		{"GET", "/devices/d1/modules", "", read},
		{"GET", "/devices/d1/modules/m1", "", read},
		{"GET", "/statistics/devices", "", read},
		{"PUT", "/devices/new1", `{"deviceId":"new1"}`, write},
		{"PUT", "/devices/d1/modules/new1", `{"moduleId":"new1","deviceId":"d1"}`, write},
		{"GET", "/twins/d1", "", svc},
		{"GET", "/twins/d1/modules/m1", "", svc},
		{"PATCH", "/twins/d1", `{"tags":{"a":1}}`, svc},
		{"POST", "/devices/query", `{"query":"SELECT * FROM devices"}`, []string{"iothubowner", "service", "registryRead", "registryReadWrite"}},
		{"DELETE", "/devices/d1/commands", "", svc},
		{"GET", "/messages/serviceBound/feedback", "", svc},
		{"POST", "/emulator/devices/d1/messages/devicebound", "x", svc},
	}
	for _, rt := range routes {
		for _, p := range []string{"iothubowner", "service", "device", "registryRead", "registryReadWrite"} {
			allowed := false
			for _, n := range rt.need {
				allowed = allowed || n == p
			}
			rp := r.do(rt.method, rt.path, r.token(p, time.Hour), rt.body, nil)
			switch {
			case allowed && rp.status >= 400:
				t.Errorf("%s %s as %s: %d %s", rt.method, rt.path, p, rp.status, rp.body)
			case !allowed:
				want(t, fmt.Sprintf("%s %s as %s", rt.method, rt.path, p), rp, 401, "IotHubUnauthorizedAccess")
				if msg, _, _ := rp.envelope(); !strings.Contains(msg, "'"+p+"'") {
					t.Errorf("%s %s as %s: message %q does not name the policy", rt.method, rt.path, p, msg)
				}
			}
			if rt.method == "PUT" && allowed && rp.status == 200 {
				// Remove it again so the next policy creates it afresh.
				r.do("DELETE", rt.path, r.token("iothubowner", time.Hour), "", nil)
			}
		}
	}
	// Deletes need RegistryWrite.
	want(t, "delete as registryRead", r.do("DELETE", "/devices/d1", r.token("registryRead", time.Hour), "", nil), 401, "IotHubUnauthorizedAccess")
}

func TestRESTDevices(t *testing.T) {
	r := newRESTHub(t)
	tok := r.token("iothubowner", time.Hour)

	// Keys generated for "", null and absent; any api-version, or none.
	for i, body := range []string{
		`{"deviceId":"k0","authentication":{"type":"sas","symmetricKey":{"primaryKey":"","secondaryKey":""}}}`,
		`{"deviceId":"k1","authentication":{"symmetricKey":{"primaryKey":null,"secondaryKey":null},"x509Thumbprint":{"primaryThumbprint":null,"secondaryThumbprint":null},"type":"sas"}}`,
		`{"deviceId":"k2"}`,
		`{}`,
		// As Node sends it: read-only fields in its own formats, unknown members.
		`{"deviceId":"k4","generationId":"x","etag":null,"connectionState":"Disconnected","status":"enabled","statusReason":null,
		  "connectionStateUpdatedTime":"0001-01-01T00:00:00","statusUpdatedTime":"0001-01-01T00:00:00","lastActivityTime":"0001-01-01T00:00:00",
		  "cloudToDeviceMessageCount":"0","authentication":{"symmetricKey":{"primaryKey":"","secondaryKey":""},"type":"sas"},
		  "capabilities":{"iotEdge":false},"someFutureField":{"a":[1,2]}}`,
	} {
		id := fmt.Sprintf("k%d", i)
		q := []string{"?api-version=2021-04-12", "?api-version=2016-02-03", "", "?api-version=nonsense", "?api-version=2020-09-30"}[i]
		rp := r.do("PUT", "/devices/"+id+q, tok, body, nil)
		if rp.status != 200 {
			t.Fatalf("create %s: %d %s", id, rp.status, rp.body)
		}
		var d emulator.Device
		if err := json.Unmarshal(rp.body, &d); err != nil {
			t.Fatal(err)
		}
		pk, _ := sas.DecodeKey(d.Authentication.SymmetricKey.PrimaryKey)
		sk, _ := sas.DecodeKey(d.Authentication.SymmetricKey.SecondaryKey)
		if d.DeviceID != id || len(pk) != 32 || len(sk) != 32 || d.Authentication.Type != "sas" || d.GenerationID == "" {
			t.Errorf("create %s: %s", id, rp.body)
		}
		if rp.header.Get("ETag") != `"`+d.ETag+`"` {
			t.Errorf("create %s: ETag header %q, body etag %q", id, rp.header.Get("ETag"), d.ETag)
		}
	}

	// 409 on create of an existing id.
	rp := r.do("PUT", "/devices/k0", tok, `{"deviceId":"k0"}`, nil)
	want(t, "create existing", rp, 409, "DeviceAlreadyExists")
	if msg, _, _ := rp.envelope(); !strings.Contains(msg, "A device with ID 'k0' is already registered.") {
		t.Errorf("409 message %q", msg)
	}

	// If-Match in every form.
	get := func(id string) emulator.Device {
		var d emulator.Device
		json.Unmarshal(r.do("GET", "/devices/"+id, tok, "", nil).body, &d)
		return d
	}
	for _, form := range []func(string) string{
		func(string) string { return "*" },
		func(string) string { return `"*"` },
		func(e string) string { return `"` + e + `"` },
		func(e string) string { return e },
	} {
		d := get("k0")
		m := form(d.ETag)
		rp := r.do("PUT", "/devices/k0", tok, `{"deviceId":"k0","status":"disabled"}`, map[string]string{"If-Match": m})
		if rp.status != 200 {
			t.Errorf("If-Match %s: %d %s", m, rp.status, rp.body)
		}
		rp = r.do("PUT", "/devices/k0", tok, `{"deviceId":"k0"}`, map[string]string{"If-Match": `"` + d.ETag + `"`})
		want(t, "stale If-Match "+m, rp, 412, "PreconditionFailed")
	}
	want(t, "update unknown", r.do("PUT", "/devices/zz", tok, `{}`, map[string]string{"If-Match": "*"}), 404, "DeviceNotFound")

	// Bad input.
	big := `{"deviceId":"k9","statusReason":"` + strings.Repeat("x", 300<<10) + `"}`
	for _, tt := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"malformed", "/devices/b1", `{"deviceId":`, 400, "ArgumentInvalid"},
		{"not an object", "/devices/b1", `[1,2]`, 400, "ArgumentInvalid"},
		{"wrong type", "/devices/b1", `{"status":5}`, 400, "ArgumentInvalid"},
		{"bad status", "/devices/b1", `{"status":"sleeping"}`, 400, "ArgumentInvalid"},
		{"trailing data", "/devices/b1", `{} {}`, 400, "ArgumentInvalid"},
		{"empty body", "/devices/b1", ``, 400, "ArgumentInvalid"},
		{"id mismatch", "/devices/b1", `{"deviceId":"b2"}`, 400, "ArgumentInvalid"},
		{"bad key", "/devices/b1", `{"authentication":{"type":"sas","symmetricKey":{"primaryKey":"%%%"}}}`, 400, "ArgumentInvalid"},
		{"short key", "/devices/b1", `{"authentication":{"type":"sas","symmetricKey":{"primaryKey":"AAAA"}}}`, 400, "ArgumentInvalid"},
		{"bad thumbprint", "/devices/b1", `{"authentication":{"type":"selfSigned","x509Thumbprint":{"primaryThumbprint":"xyz"}}}`, 400, "ArgumentInvalid"},
		{"bad auth type", "/devices/b1", `{"authentication":{"type":"magic"}}`, 400, "ArgumentInvalid"},
		{"id with a slash", "/devices/a%2Fb", `{}`, 400, "ArgumentInvalid"},
		{"id too long", "/devices/" + strings.Repeat("a", 129), `{}`, 400, "ArgumentInvalid"},
		{"id with a space", "/devices/a%20b", `{}`, 400, "ArgumentInvalid"},
		{"oversized body", "/devices/b1", big, 413, "MessageTooLarge"},
	} {
		want(t, tt.name, r.do("PUT", tt.path, tok, tt.body, nil), tt.status, tt.code)
	}
	// Ids with the allowed punctuation, percent-encoded as Node does.
	for _, id := range []string{"a-b.c+d%e_f#g*h?i!j(k)l,m=n@o$p'q", "colon:semi;"} {
		rp := r.do("PUT", "/devices/"+encodeURIComponent(id), tok, `{}`, nil)
		var d emulator.Device
		json.Unmarshal(rp.body, &d)
		if rp.status != 200 || d.DeviceID != id {
			t.Errorf("id %q: %d %s", id, rp.status, rp.body)
		}
		if rp := r.do("GET", "/devices/"+encodeURIComponent(id), tok, "", nil); rp.status != 200 {
			t.Errorf("get %q: %d", id, rp.status)
		}
	}

	// List, statistics, delete (204, no body), 404 after.
	var list []emulator.Device
	if rp := r.do("GET", "/devices/?top=2", tok, "", nil); rp.status != 200 || json.Unmarshal(rp.body, &list) != nil || len(list) != 2 {
		t.Errorf("top=2: %d %s", rp.status, rp.body)
	}
	want(t, "bad top", r.do("GET", "/devices?top=x", tok, "", nil), 400, "ArgumentInvalid")
	var st map[string]int
	if rp := r.do("GET", "/statistics/devices", tok, "", nil); json.Unmarshal(rp.body, &st) != nil || st["totalDeviceCount"] != 7 || st["disabledDeviceCount"] != 1 {
		t.Errorf("statistics %s", rp.body)
	}
	rp = r.do("DELETE", "/devices/k1", tok, "", map[string]string{"If-Match": `"bm9wZQ=="`})
	want(t, "stale delete", rp, 412, "PreconditionFailed")
	rp = r.do("DELETE", "/devices/k1", tok, "", map[string]string{"If-Match": "*"})
	if rp.status != 204 || len(rp.body) != 0 {
		t.Errorf("delete: %d %q", rp.status, rp.body)
	}
	want(t, "get deleted", r.do("GET", "/devices/k1", tok, "", nil), 404, "DeviceNotFound")
	want(t, "twin of deleted", r.do("GET", "/twins/k1", tok, "", nil), 404, "DeviceNotFound")

	// Modules.
	want(t, "module of unknown device", r.do("PUT", "/devices/zz/modules/m1", tok, `{}`, nil), 404, "DeviceNotFound")
	if rp := r.do("PUT", "/devices/k0/modules/m1", tok, `{"moduleId":"m1","deviceId":"k0","authentication":{"symmetricKey":{"primaryKey":null}}}`, nil); rp.status != 200 {
		t.Fatalf("create module: %d %s", rp.status, rp.body)
	}
	want(t, "duplicate module", r.do("PUT", "/devices/k0/modules/m1", tok, `{}`, nil), 409, "ModuleAlreadyExistsOnDevice")
	want(t, "unknown module", r.do("GET", "/devices/k0/modules/m2", tok, "", nil), 404, "ModuleNotFound")
	want(t, "module id mismatch", r.do("PUT", "/devices/k0/modules/m3", tok, `{"moduleId":"m4"}`, nil), 400, "ArgumentInvalid")
	if rp := r.do("DELETE", "/devices/k0/modules/m1", tok, "", nil); rp.status != 204 {
		t.Errorf("delete module: %d", rp.status)
	}

	// Paths the mux would redirect are refused instead.
	for _, p := range []string{"//devices/k0", "/devices/.", "/devices/..", "/devices//k0", "/devices/k0/./modules"} {
		want(t, "path "+p, r.do("GET", p, tok, "", nil), 400, "ArgumentInvalid")
	}
	// A '+' in a path stays a '+'.
	if rp := r.do("PUT", "/devices/a+b", tok, `{}`, nil); rp.status != 200 || !strings.Contains(string(rp.body), `"deviceId":"a+b"`) {
		t.Errorf("id with '+': %d %s", rp.status, rp.body)
	}

	// Unknown path, wrong method.
	want(t, "unknown path", r.do("GET", "/nothing/here", tok, "", nil), 404, "NotFound")
	rp = r.do("POST", "/devices/k0", tok, `{}`, nil)
	want(t, "wrong method", rp, 405, "MethodNotAllowed")
	if a := rp.header.Get("Allow"); !strings.Contains(a, "GET") || !strings.Contains(a, "PUT") || !strings.Contains(a, "DELETE") {
		t.Errorf("Allow %q", a)
	}
}

// encodeURIComponent escapes as JavaScript's encodeURIComponent does.
func encodeURIComponent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func TestRESTBulk(t *testing.T) {
	r := newRESTHub(t)
	tok := r.token("registryReadWrite", time.Hour)
	emulatortest.Device(t, r.h, "old")
	type result struct {
		IsSuccessful bool
		Errors       []struct{ DeviceID, ErrorCode, ErrorStatus string }
		Warnings     []any
	}
	bulk := func(body string) result {
		t.Helper()
		rp := r.do("POST", "/devices?api-version=2021-04-12", tok, body, nil)
		var res result
		if rp.status != 200 || json.Unmarshal(rp.body, &res) != nil || res.Warnings == nil {
			t.Fatalf("bulk %s: %d %s", body, rp.status, rp.body)
		}
		return res
	}
	// As Node's addDevices sends it: deviceId moved to id, empty keys.
	res := bulk(`[{"id":"b1","importMode":"create","authentication":{"symmetricKey":{"primaryKey":"","secondaryKey":""},"type":"sas"}},{"id":"b2","importMode":"create"},{"id":"old","importMode":"create"}]`)
	if res.IsSuccessful || len(res.Errors) != 1 || res.Errors[0].DeviceID != "old" || res.Errors[0].ErrorCode != "DeviceAlreadyExists" {
		t.Errorf("create: %+v", res)
	}
	if d, err := r.h.GetDevice("b1"); err != nil || d.Authentication.SymmetricKey.PrimaryKey == "" {
		t.Errorf("b1 = %+v, %v", d, err)
	}
	d, _ := r.h.GetDevice("b2")
	res = bulk(`[{"id":"b1","importMode":"Update","status":"disabled"},{"id":"b2","importMode":"UpdateIfMatchETag","eTag":"` + d.ETag + `","status":"disabled"},{"id":"old","importMode":"UpdateIfMatchETag","eTag":"bm9wZQ=="}]`)
	if res.IsSuccessful || len(res.Errors) != 1 || res.Errors[0].ErrorCode != "PreconditionFailed" {
		t.Errorf("update: %+v", res)
	}
	if d, _ := r.h.GetDevice("b2"); d.Status != emulator.StatusDisabled {
		t.Errorf("b2 status %s", d.Status)
	}
	res = bulk(`[{"id":"b1","importMode":"Delete"},{"id":"b2","importMode":"DeleteIfMatchETag"},{"id":"nope","importMode":"delete"},{"id":"x","importMode":"explode"}]`)
	if res.IsSuccessful || len(res.Errors) != 3 {
		t.Errorf("delete: %+v", res)
	}
	if _, err := r.h.GetDevice("b1"); err == nil {
		t.Error("b1 not deleted")
	}
	want(t, "empty bulk", r.do("POST", "/devices", tok, `[]`, nil), 400, "ArgumentInvalid")
	want(t, "bulk of 101", r.do("POST", "/devices", tok, "["+strings.Repeat(`{"id":"x","importMode":"create"},`, 100)+`{"id":"y","importMode":"create"}]`, nil), 400, "ArgumentInvalid")
	want(t, "bulk not an array", r.do("POST", "/devices", tok, `{"id":"x"}`, nil), 400, "ArgumentInvalid")
	want(t, "bulk as registryRead", r.do("POST", "/devices", r.token("registryRead", time.Hour), `[{"id":"z","importMode":"create"}]`, nil), 401, "IotHubUnauthorizedAccess")
}

func TestRESTTwins(t *testing.T) {
	r := newRESTHub(t)
	tok := r.token("iothubowner", time.Hour)
	emulatortest.Device(t, r.h, "d1")

	rp := r.do("GET", "/twins/d1", tok, "", nil)
	var tw map[string]any
	if rp.status != 200 || json.Unmarshal(rp.body, &tw) != nil {
		t.Fatalf("GET twin: %d %s", rp.status, rp.body)
	}
	for _, k := range []string{"deviceId", "etag", "deviceEtag", "version", "status", "statusUpdateTime", "connectionState", "tags", "properties", "authenticationType"} {
		if _, ok := tw[k]; !ok {
			t.Errorf("twin has no %s: %s", k, rp.body)
		}
	}
	for _, k := range []string{"generationId", "connectionStateUpdatedTime"} {
		if _, ok := tw[k]; ok {
			t.Errorf("twin has %s: %s", k, rp.body)
		}
	}
	if rp.header.Get("ETag") != `"`+tw["etag"].(string)+`"` {
		t.Errorf("twin ETag header %q", rp.header.Get("ETag"))
	}
	props := tw["properties"].(map[string]any)
	for _, side := range []string{"desired", "reported"} {
		s := props[side].(map[string]any)
		m, _ := s["$metadata"].(map[string]any)
		if s["$version"] != 1.0 || m["$lastUpdated"] == nil {
			t.Errorf("%s of a new twin: %v", side, s)
		}
	}

	// A twin read back and sent whole (as C# does) is accepted: its
	// reported section holds only $metadata and $version.
	whole := strings.Replace(string(rp.body), `"tags":{}`, `"tags":{"a":1}`, 1)
	if rp := r.do("PATCH", "/twins/d1", tok, whole, nil); rp.status != 200 {
		t.Errorf("PATCH of a whole twin: %d %s", rp.status, rp.body)
	}
	deep := `{"tags":` + strings.Repeat(`{"a":`, 12) + "1" + strings.Repeat("}", 12) + "}"
	for _, tt := range []struct{ name, method, body string }{
		{"reported", "PATCH", `{"properties":{"reported":{"x":1}}}`},
		{"reported in PUT", "PUT", `{"properties":{"desired":{},"reported":{"x":1}}}`},
		{"tags not an object", "PATCH", `{"tags":[1]}`},
		{"desired not an object", "PATCH", `{"properties":{"desired":"x"}}`},
		{"deviceId mismatch", "PATCH", `{"deviceId":"d2","tags":{}}`},
		{"too deep", "PATCH", deep},
		{"key with $", "PATCH", `{"tags":{"$x":1}}`},
		{"key with a space", "PATCH", `{"properties":{"desired":{"a b":1}}}`},
		{"desired over 32 KB", "PATCH", `{"properties":{"desired":{"a":"` + strings.Repeat("x", 3000) + `","b":"` + strings.Repeat("x", 3000) + `","c":"` + strings.Repeat("x", 3000) + `","d":"` + strings.Repeat("x", 3000) + `","e":"` + strings.Repeat("x", 3000) + `","f":"` + strings.Repeat("x", 3000) + `","g":"` + strings.Repeat("x", 3000) + `","h":"` + strings.Repeat("x", 3000) + `","i":"` + strings.Repeat("x", 3000) + `","j":"` + strings.Repeat("x", 3000) + `","k":"` + strings.Repeat("x", 3000) + `"}}}`},
		{"string over 4 KB", "PATCH", `{"tags":{"s":"` + strings.Repeat("x", 5000) + `"}}`},
		{"malformed", "PATCH", `{"tags":`},
	} {
		want(t, tt.name, r.do(tt.method, "/twins/d1", tok, tt.body, nil), 400, "ArgumentInvalid")
	}
	want(t, "stale etag", r.do("PATCH", "/twins/d1", tok, `{"tags":{"b":1}}`, map[string]string{"If-Match": `"AAAAAAAAAAE="`}), 412, "PreconditionFailed")
	want(t, "unknown twin", r.do("PATCH", "/twins/nope", tok, `{"tags":{}}`, nil), 404, "DeviceNotFound")
	want(t, "unknown module twin", r.do("GET", "/twins/d1/modules/nope", tok, "", nil), 404, "ModuleNotFound")
}

func TestRESTQuery(t *testing.T) {
	r := newRESTHub(t)
	tok := r.token("service", time.Hour)
	for i := range 3 {
		emulatortest.Device(t, r.h, fmt.Sprint("d", i))
	}
	q := `{"query":"SELECT * FROM devices"}`
	rp := r.do("POST", "/devices/query", tok, q, map[string]string{"x-ms-max-item-count": "2"})
	c := rp.header.Get("x-ms-continuation")
	if rp.status != 200 || c == "" || rp.header.Get("x-ms-item-type") != "Twin" {
		t.Fatalf("page 1: %d %v %s", rp.status, rp.header, rp.body)
	}
	rp = r.do("POST", "/devices/query", tok, q, map[string]string{"x-ms-max-item-count": "2", "x-ms-continuation": c})
	var items []map[string]any
	if json.Unmarshal(rp.body, &items) != nil || len(items) != 1 || items[0]["deviceId"] != "d2" {
		t.Errorf("page 2: %s", rp.body)
	}
	if _, ok := rp.header["X-Ms-Continuation"]; ok {
		t.Errorf("last page has x-ms-continuation %q", rp.header.Get("x-ms-continuation"))
	}
	rp = r.do("POST", "/devices/query", tok, `{"query":"SELECT COUNT() AS total FROM devices"}`, nil)
	if string(rp.body) != `[{"total":3}]` || rp.header.Get("x-ms-item-type") != "Raw" {
		t.Errorf("count: %s", rp.body)
	}
	for _, tt := range []struct{ name, body string }{
		{"no query", `{}`},
		{"empty query", `{"query":""}`},
		{"query not a string", `{"query":5}`},
		{"syntax", `{"query":"SELECT FROM"}`},
		{"unsupported", `{"query":"SELECT * FROM devices WHERE STARTSWITH(deviceId, 'd')"}`},
		{"too long", `{"query":"SELECT * FROM devices WHERE deviceId = '` + strings.Repeat("x", 9000) + `'"}`},
	} {
		rp := r.do("POST", "/devices/query", tok, tt.body, nil)
		want(t, tt.name, rp, 400, "ArgumentInvalid")
		if tt.name == "unsupported" {
			if msg, _, _ := rp.envelope(); !strings.Contains(msg, "STARTSWITH is not supported") {
				t.Errorf("unsupported: %q", msg)
			}
		}
	}
	want(t, "bad page size", r.do("POST", "/devices/query", tok, q, map[string]string{"x-ms-max-item-count": "0"}), 400, "ArgumentInvalid")
	want(t, "bad continuation", r.do("POST", "/devices/query", tok, q, map[string]string{"x-ms-continuation": "!!"}), 400, "ArgumentInvalid")
}

func TestRESTMethods(t *testing.T) {
	r := newRESTHub(t)
	tok := r.token("service", time.Hour)
	emulatortest.Device(t, r.h, "d1")

	// Offline: 404103 in envelope B, at once with connect timeout 0, after
	// it otherwise.
	for _, ct := range []int{0, 1} {
		start := time.Now()
		rp := r.do("POST", "/twins/d1/methods?api-version=2021-04-12", tok,
			fmt.Sprintf(`{"methodName":"reboot","payload":null,"responseTimeoutInSeconds":30,"connectTimeoutInSeconds":%d}`, ct), nil)
		if rp.status != 404 || rp.header.Get("iothub-errorcode") != "DeviceNotOnline" {
			t.Fatalf("offline: %d %v %s", rp.status, rp.header, rp.body)
		}
		_, _, inner := rp.envelope()
		info, _ := inner["info"].(map[string]any)
		if inner["errorCode"] != 404103.0 || inner["message"] != "Timed out waiting for device to connect." ||
			info["timeout"] != fmt.Sprintf("00:00:%02d", ct) || inner["trackingId"] == nil || inner["timestampUtc"] == nil {
			t.Errorf("envelope B: %s", rp.body)
		}
		if ct == 1 && time.Since(start) < time.Second {
			t.Errorf("connect timeout of 1 s answered after %v", time.Since(start))
		}
	}
	want(t, "unknown device", r.do("POST", "/twins/nope/methods", tok, `{"methodName":"x"}`, nil), 404, "DeviceNotFound")
	for _, tt := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"no name", `{"payload":1}`, 400, "ArgumentInvalid"},
		{"response timeout too long", `{"methodName":"x","responseTimeoutInSeconds":301}`, 400, "ArgumentInvalid"},
		{"response timeout too short", `{"methodName":"x","responseTimeoutInSeconds":2}`, 400, "ArgumentInvalid"},
		{"negative connect timeout", `{"methodName":"x","connectTimeoutInSeconds":-1}`, 400, "ArgumentInvalid"},
		{"fractional timeout", `{"methodName":"x","connectTimeoutInSeconds":1.5}`, 400, "ArgumentInvalid"},
		{"timeout not a number", `{"methodName":"x","connectTimeoutInSeconds":"5"}`, 400, "ArgumentInvalid"},
		{"payload over 128 KB", `{"methodName":"x","payload":"` + strings.Repeat("x", 130<<10) + `"}`, 413, "MessageTooLarge"},
		{"malformed", `{"methodName":`, 400, "ArgumentInvalid"},
	} {
		want(t, tt.name, r.do("POST", "/twins/d1/methods", tok, tt.body, nil), tt.status, tt.code)
	}
}

func TestRESTMessages(t *testing.T) {
	r := newRESTHub(t)
	tok := r.token("service", time.Hour)
	emulatortest.Device(t, r.h, "d1")

	rp := r.do("POST", "/emulator/devices/d1/messages/devicebound", tok, "hello", map[string]string{
		"Content-Type": "text/plain", "iothub-messageid": "m1", "iothub-correlationid": "c1", "iothub-ack": "full",
		"iothub-ttl": "60", "iothub-app-Alert": "high", "iothub-contenttype": "text/plain",
	})
	if rp.status != 200 || !bytes.Contains(rp.body, []byte(`"messageId":"m1"`)) {
		t.Fatalf("send: %d %s", rp.status, rp.body)
	}
	q := r.h.PendingC2D("d1")
	if len(q) != 1 || string(q[0].Message.Body) != "hello" || q[0].Message.CorrelationID != "c1" || q[0].Message.Ack != "full" ||
		q[0].Message.Properties["alert"] != "high" || q[0].Message.ContentType != "text/plain" || q[0].Expiry.Sub(q[0].Enqueued) != time.Minute {
		t.Fatalf("queued %+v", q)
	}
	for _, tt := range []struct {
		name string
		hdr  map[string]string
		body string
		st   int
		code string
	}{
		{"bad ttl", map[string]string{"iothub-ttl": "soon"}, "x", 400, "ArgumentInvalid"},
		{"ttl over 48 h", map[string]string{"iothub-ttl": "200000"}, "x", 400, "ArgumentInvalid"},
		{"bad expiry", map[string]string{"iothub-expiry": "tomorrow"}, "x", 400, "ArgumentInvalid"},
		{"bad ack", map[string]string{"iothub-ack": "sometimes"}, "x", 400, "ArgumentInvalid"},
		{"too large", nil, strings.Repeat("x", emulator.MaxC2DSize+1), 413, "MessageTooLarge"},
	} {
		want(t, tt.name, r.do("POST", "/emulator/devices/d1/messages/devicebound", tok, tt.body, tt.hdr), tt.st, tt.code)
	}
	want(t, "unknown device", r.do("POST", "/emulator/devices/zz/messages/devicebound", tok, "x", nil), 404, "DeviceNotFound")

	rp = r.do("DELETE", "/devices/d1/commands", tok, "", nil)
	if rp.status != 200 || string(rp.body) != `{"totalMessagesPurged":1,"deviceId":"d1","moduleId":null}` {
		t.Errorf("purge: %d %s", rp.status, rp.body)
	}
	if rp := r.do("GET", "/messages/serviceBound/feedback", tok, "", nil); rp.status != 204 {
		t.Errorf("empty feedback: %d %s", rp.status, rp.body)
	}
	want(t, "complete unknown lock", r.do("DELETE", "/messages/serviceBound/feedback/nope", tok, "", nil), 400, "ArgumentInvalid")

	// Streams: an empty log, NDJSON and SSE; bad parameters.
	rp = r.do("GET", "/emulator/telemetry?follow=false", tok, "", nil)
	if rp.status != 200 || len(rp.body) != 0 || rp.header.Get("Content-Type") != "application/x-ndjson; charset=utf-8" {
		t.Errorf("empty NDJSON: %d %v %q", rp.status, rp.header, rp.body)
	}
	rp = r.do("GET", "/emulator/telemetry?follow=false", tok, "", map[string]string{"Accept": "text/event-stream"})
	if rp.status != 200 || rp.header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Errorf("empty SSE: %d %v", rp.status, rp.header)
	}
	for _, q := range []string{"from=yesterday", "from=-1", "follow=maybe", "format=xml"} {
		want(t, q, r.do("GET", "/emulator/telemetry?"+q, tok, "", nil), 400, "ArgumentInvalid")
	}
	want(t, "events from earliest", r.do("GET", "/emulator/events?from=earliest", tok, "", nil), 400, "ArgumentInvalid")
	if rp := r.do("GET", "/emulator/events?follow=false", tok, "", nil); rp.status != 200 {
		t.Errorf("events: %d", rp.status)
	}
}

// TestRESTBadInputNever500 sends malformed bodies to every route.
func TestRESTBadInputNever500(t *testing.T) {
	r := newRESTHub(t)
	tok := r.token("iothubowner", time.Hour)
	emulatortest.Module(t, r.h, "d1", "m1")
	bodies := []string{"", "{", "null", "[]", `"x"`, "0", `{"a":`, strings.Repeat("[", 100000), `{"properties":null}`,
		`{"properties":{"desired":null,"reported":null}}`, `{"tags":null}`, "\x00\xff", `{"methodName":null}`, `{"query":null}`,
		`{"authentication":null}`, `{"authentication":{"symmetricKey":null,"x509Thumbprint":null,"type":null}}`,
		`{"capabilities":null,"parentScopes":null}`, `{"deviceId":null,"moduleId":null}`, `{"payload":{"a":[1,{"b":null}]},"methodName":"m"}`}
	routes := [][2]string{
		{"PUT", "/devices/x1"}, {"PUT", "/devices/d1"}, {"PUT", "/devices/d1/modules/x1"}, {"PATCH", "/twins/d1"},
		{"PUT", "/twins/d1"}, {"PATCH", "/twins/d1/modules/m1"}, {"POST", "/devices/query"}, {"POST", "/twins/d1/methods"},
		{"POST", "/twins/d1/modules/m1/methods"}, {"POST", "/emulator/devices/d1/messages/devicebound"},
	}
	for _, rt := range routes {
		for _, b := range bodies {
			r.do(rt[0], rt[1], tok, b, nil) // do fails the test on a 5xx or a reply without its headers
			r.do("DELETE", "/devices/x1", tok, "", nil)
		}
	}
}

func TestRESTReplyWhileHubCloses(t *testing.T) {
	r := newRESTHub(t)
	tok := r.token("iothubowner", time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.base+"/emulator/telemetry?follow=true", nil)
	req.Header.Set("Authorization", tok)
	resp, err := r.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("follow: %d", resp.StatusCode)
	}
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); done <- err }()
	r.h.Close()
	select {
	case <-done: // the stream ended with the hub
	case <-ctx.Done():
		t.Fatal("a following stream outlived the hub")
	}
}
