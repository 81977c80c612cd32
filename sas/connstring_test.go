package sas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const (
	csKey   = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	csToken = v1Token
)

func TestParseConnectionString(t *testing.T) {
	cases := []struct {
		name, in string
		want     ConnectionString
		full     string // FullString, when it differs from in
	}{
		{
			name: "device-key",
			in:   "HostName=myhub.azure-devices.net;DeviceId=device1;SharedAccessKey=" + csKey,
			want: ConnectionString{HostName: "myhub.azure-devices.net", DeviceID: "device1"}.WithSharedAccessKey(csKey),
		},
		{
			name: "module-key",
			in:   "HostName=h;DeviceId=d;ModuleId=m;SharedAccessKey=" + csKey,
			want: ConnectionString{HostName: "h", DeviceID: "d", ModuleID: "m"}.WithSharedAccessKey(csKey),
		},
		{
			name: "policy",
			in:   "HostName=h;SharedAccessKeyName=iothubowner;SharedAccessKey=" + csKey,
			want: ConnectionString{HostName: "h", SharedAccessKeyName: "iothubowner"}.WithSharedAccessKey(csKey),
		},
		{
			name: "token",
			in:   "HostName=h;DeviceId=device1;SharedAccessSignature=" + csToken,
			want: ConnectionString{HostName: "h", DeviceID: "device1"}.WithSharedAccessSignature(csToken),
		},
		{
			name: "x509-gateway",
			in:   "HostName=h;DeviceId=d;x509=true;GatewayHostName=edge.local",
			want: ConnectionString{HostName: "h", DeviceID: "d", X509: true, GatewayHostName: "edge.local"},
			full: "HostName=h;DeviceId=d;GatewayHostName=edge.local;x509=true",
		},
		{
			name: "x509-upper-true",
			in:   "HostName=h;DeviceId=d;x509=TRUE",
			want: ConnectionString{HostName: "h", DeviceID: "d", X509: true},
			full: "HostName=h;DeviceId=d;x509=true",
		},
		{
			name: "any-order-trailing-semicolon-space",
			in:   "  SharedAccessKey=" + csKey + ";DeviceId=d;HostName=h;\n",
			want: ConnectionString{HostName: "h", DeviceID: "d"}.WithSharedAccessKey(csKey),
			full: "HostName=h;DeviceId=d;SharedAccessKey=" + csKey,
		},
		{
			name: "value-with-equals",
			in:   "HostName=h;DeviceId=a=b;SharedAccessKey=" + csKey,
			want: ConnectionString{HostName: "h", DeviceID: "a=b"}.WithSharedAccessKey(csKey),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseConnectionString(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(c.want) {
				t.Fatalf("got %s, want %s", got.FullString(), c.want.FullString())
			}
			full := c.full
			if full == "" {
				full = c.in
			}
			if got.FullString() != full {
				t.Errorf("FullString = %q, want %q", got.FullString(), full)
			}
			again, err := ParseConnectionString(got.FullString())
			if err != nil || !again.Equal(got) {
				t.Errorf("reparse = %v, %v", again, err)
			}
		})
	}
}

func TestParseConnectionStringErrors(t *testing.T) {
	key := ";SharedAccessKey=" + csKey
	cases := []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrMalformed},
		{"no-equals", "HostName=h;DeviceId" + key, ErrMalformed},
		{"empty-part", "HostName=h;;DeviceId=d" + key, ErrMalformed},
		{"two-trailing", "HostName=h;DeviceId=d" + key + ";;", ErrMalformed},
		{"empty-value", "HostName=h;DeviceId=" + key, ErrMalformed},
		{"unknown", "HostName=h;DeviceId=d;Foo=bar" + key, ErrUnknownKey},
		{"wrong-case", "hostname=h;DeviceId=d" + key, ErrUnknownKey},
		{"space-in-key", "HostName=h; DeviceId=d" + key, ErrUnknownKey},
		{"dup-host", "HostName=h;HostName=h;DeviceId=d" + key, ErrDuplicateKey},
		{"dup-key", "HostName=h;DeviceId=d" + key + key, ErrDuplicateKey},
		{"missing-host", "DeviceId=d" + key, ErrMissingField},
		{"module-without-device", "HostName=h;ModuleId=m" + key, ErrMissingField},
		{"x509-without-device", "HostName=h;x509=true", ErrMissingField},
		{"keyname-without-key", "HostName=h;SharedAccessKeyName=p;SharedAccessSignature=" + csToken, ErrMissingField},
		{"no-credentials", "HostName=h;DeviceId=d", ErrNoCredentials},
		{"key-and-token", "HostName=h;DeviceId=d" + key + ";SharedAccessSignature=" + csToken, ErrConflictingCredentials},
		{"key-and-x509", "HostName=h;DeviceId=d;x509=true" + key, ErrConflictingCredentials},
		{"token-and-x509", "HostName=h;DeviceId=d;x509=true;SharedAccessSignature=" + csToken, ErrConflictingCredentials},
		{"key-not-base64", "HostName=h;DeviceId=d;SharedAccessKey=not*base64", ErrMalformed},
		{"bad-token", "HostName=h;DeviceId=d;SharedAccessSignature=SharedAccessSignature sr=x", ErrMalformed},
		{"x509-false", "HostName=h;DeviceId=d;x509=false", ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs, err := ParseConnectionString(c.in)
			if err == nil {
				t.Fatalf("accepted as %s", cs.FullString())
			}
			if !errors.Is(err, c.want) || !errors.Is(err, ErrMalformed) {
				t.Errorf("error %q matches neither %v nor ErrMalformed", err, c.want)
			}
			if strings.Contains(err.Error(), "AAECAwQF") || strings.Contains(err.Error(), "gFSf") {
				t.Errorf("error quotes a secret: %v", err)
			}
		})
	}
}

// TestConnectionStringSpaceHint checks that a known key with white space
// around it, as in "HostName=h; DeviceId=d" pasted from a document, gets an
// error that names the key and the space, not a bare "unknown key".
func TestConnectionStringSpaceHint(t *testing.T) {
	for _, in := range []string{
		"HostName=h; DeviceId=d;SharedAccessKey=" + csKey,
		"HostName=h;DeviceId=d;\tSharedAccessKey=" + csKey,
		"HostName=h;DeviceId =d;SharedAccessKey=" + csKey,
	} {
		_, err := ParseConnectionString(in)
		if !errors.Is(err, ErrUnknownKey) {
			t.Errorf("%q: %v, want ErrUnknownKey", in, err)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) || (pe.Field != "DeviceId" && pe.Field != "SharedAccessKey") || !strings.Contains(err.Error(), "white space") {
			t.Errorf("%q: error %q does not name the key and the white space", in, err)
		}
	}
	_, err := ParseConnectionString("HostName=h; Foo=d;SharedAccessKey=" + csKey)
	if !errors.Is(err, ErrUnknownKey) || strings.Contains(err.Error(), "white space") {
		t.Errorf("unknown key with a space: %v, want a plain ErrUnknownKey", err)
	}
}

// TestConnectionStringRedaction checks that no fmt verb and no slog handler
// shows a key or signature, including when the ConnectionString sits in
// exported and unexported fields of another struct.
func TestConnectionStringRedaction(t *testing.T) {
	secrets := []string{"AAECAwQF", "gFSfLGMX"}
	withKey, err := ParseConnectionString("HostName=h;DeviceId=d;SharedAccessKey=" + csKey)
	if err != nil {
		t.Fatal(err)
	}
	withTok, err := ParseConnectionString("HostName=h;DeviceId=d;SharedAccessSignature=" + csToken)
	if err != nil {
		t.Fatal(err)
	}
	type wrapper struct {
		Public  ConnectionString
		private ConnectionString
		Ptr     *ConnectionString
	}
	for _, cs := range []ConnectionString{withKey, withTok} {
		w := wrapper{Public: cs, private: cs, Ptr: &cs}
		var out []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%10v", "%T"} {
			out = append(out, fmt.Sprintf(verb, cs), fmt.Sprintf(verb, &cs), fmt.Sprintf(verb, w), fmt.Sprintf(verb, &w))
		}
		out = append(out, fmt.Sprint(cs), fmt.Sprintln(cs, w), cs.String(), cs.GoString(),
			fmt.Sprintf("%v %+v %#v", []ConnectionString{cs}, map[string]ConnectionString{"k": cs}, []any{cs, &cs}),
			fmt.Sprintf("%+v", struct{ inner []ConnectionString }{[]ConnectionString{cs}}))
		var buf bytes.Buffer
		log.New(&buf, "", 0).Printf("%v %+v", cs, w)
		for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
			l := slog.New(h)
			l.Info("cs", "cs", cs, "ptr", &cs, "w", w, "any", any(cs))
			l.Info("attr", slog.Any("cs", cs), slog.Group("g", "cs", cs))
			l.With("cs", cs).Info("with")
		}
		j, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf.String(), string(j))
		for _, o := range out {
			for _, s := range secrets {
				if strings.Contains(o, s) {
					t.Errorf("output shows a secret: %s", o)
				}
			}
		}
	}
	// The redacted forms still say what is there.
	if got, want := withKey.String(), "HostName=h;DeviceId=d;SharedAccessKey=<redacted>"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got, want := fmt.Sprintf("%#v", withTok), `sas.ConnectionString{HostName:"h", DeviceID:"d", ModuleID:"", SharedAccessKeyName:"", SharedAccessKey:"", SharedAccessSignature:"<redacted>", GatewayHostName:"", X509:false}`; got != want {
		t.Errorf("%%#v = %s\nwant   %s", got, want)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "cs", withKey)
	if !strings.Contains(buf.String(), `"cs":{"HostName":"h","DeviceId":"d","SharedAccessKey":"<redacted>"}`) {
		t.Errorf("slog JSON = %s", buf.String())
	}
	// A redacted string does not parse back as a usable one.
	if _, err := ParseConnectionString(withKey.String()); err == nil {
		t.Error("the redacted form parsed")
	}
}

func TestConnectionStringAccessors(t *testing.T) {
	cs, err := ParseConnectionString("HostName=myhub.azure-devices.net;DeviceId=dev#1;SharedAccessKey=" + csKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cs.Resource(), "myhub.azure-devices.net/devices/dev%231"; got != want {
		t.Errorf("Resource = %q, want %q", got, want)
	}
	tok, err := cs.NewToken(v1Expiry)
	if err != nil {
		t.Fatal(err)
	}
	// Vector V5.
	if want := "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev%25231&sig=R6zguaLAF90bpqrnYQhZcYQwTYkv%2BaC%2BBKuh3OFHIrA%3D&se=1700000000"; tok.String() != want {
		t.Errorf("NewToken = %q\nwant %q", tok, want)
	}
	mod := ConnectionString{HostName: "h", DeviceID: "d", ModuleID: "m"}
	if got := mod.Resource(); got != "h/devices/d/modules/m" {
		t.Errorf("module Resource = %q", got)
	}
	hub := ConnectionString{HostName: "h", SharedAccessKeyName: "p"}
	if got := hub.Resource(); got != "h" {
		t.Errorf("hub Resource = %q", got)
	}
	if _, err := (ConnectionString{HostName: "h"}).NewToken(time.Now()); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("NewToken without a key = %v, want ErrInvalidKey", err)
	}
	if cs.WithSharedAccessKey("").SharedAccessKey() != "" || cs.SharedAccessKey() != csKey {
		t.Error("WithSharedAccessKey changed the original or did not clear")
	}
}

// TestParseErrorsHideMangledSecrets: a secret that ends up in the key or
// field name position (its name lost, or joined with ':' instead of '=') is
// not quoted by the error, while a plain unknown name still is.
func TestParseErrorsHideMangledSecrets(t *testing.T) {
	const secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	for _, in := range []string{
		"HostName=h;DeviceId=d;" + secret + "=",
		"HostName=h;DeviceId=d;SharedAccessKey:" + secret + "=",
		"HostName=h;DeviceId=d;Key=" + secret + "=;" + secret[:20] + "=x",
	} {
		_, err := ParseConnectionString(in)
		if !errors.Is(err, ErrUnknownKey) {
			t.Errorf("%q: err = %v, want ErrUnknownKey", in, err)
		}
		if err != nil && strings.Contains(err.Error(), secret[:16]) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	for _, in := range []string{
		"SharedAccessSignature sr=h&sig:" + secret + "=&se=1",
		"SharedAccessSignature sr=h&" + secret + "=&se=1",
	} {
		_, err := ParseToken(in)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v, want ErrMalformed", in, err)
		}
		if err != nil && strings.Contains(err.Error(), secret[:16]) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	_, err := ParseConnectionString("HostName=h;DeviceId=d;Hostname=x;SharedAccessKey=" + secret + "=")
	if err == nil || !strings.Contains(err.Error(), `"Hostname"`) {
		t.Errorf("a plain unknown key is not named: %v", err)
	}
}
