package sas

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// v1 is vector V1 of shared/testvectors/sas.json.
const (
	v1Host  = "myhub.azure-devices.net"
	v1Key   = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	v1Token = "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D&se=1700000000"
	v1SR    = "sr=myhub.azure-devices.net%2Fdevices%2Fdevice1"
	v1Sig   = "sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D"
	v1SE    = "se=1700000000"
)

var v1Expiry = time.Unix(1700000000, 0)

func mustKey(t testing.TB, s string) []byte {
	t.Helper()
	k, err := DecodeKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseTokenFieldOrder(t *testing.T) {
	key := mustKey(t, v1Key)
	want, err := ParseToken(v1Token)
	if err != nil {
		t.Fatal(err)
	}
	orders := [][3]string{
		{v1SR, v1Sig, v1SE}, {v1SR, v1SE, v1Sig}, {v1Sig, v1SR, v1SE},
		{v1Sig, v1SE, v1SR}, {v1SE, v1SR, v1Sig}, {v1SE, v1Sig, v1SR},
	}
	for _, o := range orders {
		s := Prefix + " " + strings.Join(o[:], "&")
		tok, err := ParseToken(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if tok != want {
			t.Errorf("%s parsed to %+v, want %+v", s, tok, want)
		}
		if err := tok.Verify(key, v1Expiry); err != nil {
			t.Errorf("%s: Verify: %v", s, err)
		}
		if tok.String() != v1Token {
			t.Errorf("String = %q, want canonical order %q", tok.String(), v1Token)
		}
	}
}

func TestParseTokenErrors(t *testing.T) {
	cases := []struct{ name, in string }{
		{"empty", ""},
		{"no-prefix", "sr=a&sig=b&se=1"},
		{"lower-prefix", "sharedaccesssignature " + v1SR + "&" + v1Sig + "&" + v1SE},
		{"no-space", Prefix + v1SR + "&" + v1Sig + "&" + v1SE},
		{"two-spaces", Prefix + "  " + v1SR + "&" + v1Sig + "&" + v1SE},
		{"tab", Prefix + "\t" + v1SR + "&" + v1Sig + "&" + v1SE},
		{"prefix-only", Prefix + " "},
		{"missing-sr", Prefix + " " + v1Sig + "&" + v1SE},
		{"missing-sig", Prefix + " " + v1SR + "&" + v1SE},
		{"missing-se", Prefix + " " + v1SR + "&" + v1Sig},
		{"dup-sr", v1Token + "&" + v1SR},
		{"dup-se", v1Token + "&se=1700000001"},
		{"dup-skn", v1Token + "&skn=a&skn=a"},
		{"dup-empty-skn", v1Token + "&skn=&skn="},
		{"empty-sig", Prefix + " " + v1SR + "&sig=&" + v1SE},
		{"empty-se", Prefix + " " + v1SR + "&" + v1Sig + "&se="},
		{"unknown", v1Token + "&foo=bar"},
		{"upper-field", Prefix + " SR=x&" + v1Sig + "&" + v1SE},
		{"empty-sr", Prefix + " sr=&" + v1Sig + "&" + v1SE},
		{"no-equals", v1Token + "&skn"},
		{"trailing-amp", v1Token + "&"},
		{"double-amp", Prefix + " " + v1SR + "&&" + v1Sig + "&" + v1SE},
		{"trailing-space", v1Token + " "},
		{"inner-space", Prefix + " sr=a b&" + v1Sig + "&" + v1SE},
		{"non-ascii", Prefix + " sr=é&" + v1Sig + "&" + v1SE},
		{"bad-escape-sr", Prefix + " sr=a%2&" + v1Sig + "&" + v1SE},
		{"bad-escape-sr-hex", Prefix + " sr=a%zz&" + v1Sig + "&" + v1SE},
		{"bad-escape-skn", v1Token + "&skn=%g0"},
		{"sig-not-base64", Prefix + " " + v1SR + "&sig=!!!&" + v1SE},
		{"sig-short", Prefix + " " + v1SR + "&sig=AAAA&" + v1SE},
		{"sig-unescaped-only-plus", Prefix + " " + v1SR + "&sig=gFSfLGMXDOvf906/iaX3KwzLLNFHgaFZyCbsGjxtd1Y&" + v1SE},
		{"se-negative", Prefix + " " + v1SR + "&" + v1Sig + "&se=-1"},
		{"se-plus", Prefix + " " + v1SR + "&" + v1Sig + "&se=+1700000000"},
		{"se-leading-zero", Prefix + " " + v1SR + "&" + v1Sig + "&se=01700000000"},
		{"se-float", Prefix + " " + v1SR + "&" + v1Sig + "&se=1700000000.5"},
		{"se-hex", Prefix + " " + v1SR + "&" + v1Sig + "&se=0x10"},
		{"se-huge", Prefix + " " + v1SR + "&" + v1Sig + "&se=99999999999999999999"},
		{"se-after-9999", Prefix + " " + v1SR + "&" + v1Sig + "&se=253402300800"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := ParseToken(c.in)
			if err == nil {
				t.Fatalf("ParseToken accepted %q as %+v", c.in, tok)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not match ErrMalformed", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *ParseError", err)
			}
			if strings.Contains(err.Error(), "gFSf") {
				t.Errorf("error quotes the signature: %v", err)
			}
		})
	}
}

func TestParseTokenAccepts(t *testing.T) {
	cases := []struct {
		name, in string
		want     Token
	}{
		{"skn-escaped", v1Token + "&skn=my%20policy%2B1", Token{
			EncodedResource: "myhub.azure-devices.net%2Fdevices%2Fdevice1",
			Signature:       "gFSfLGMXDOvf906/iaX3KwzLLNFHgaFZyCbsGjxtd1Y=",
			Expiry:          v1Expiry.UTC(), KeyName: "my policy+1",
		}},
		{"se-zero", Prefix + " sr=h&" + v1Sig + "&se=0", Token{
			EncodedResource: "h", Signature: "gFSfLGMXDOvf906/iaX3KwzLLNFHgaFZyCbsGjxtd1Y=",
			Expiry: time.Unix(0, 0).UTC(),
		}},
		{"se-9999", Prefix + " sr=h&" + v1Sig + "&se=253402300799", Token{
			EncodedResource: "h", Signature: "gFSfLGMXDOvf906/iaX3KwzLLNFHgaFZyCbsGjxtd1Y=",
			Expiry: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		}},
		{"sig-lower-escapes", Prefix + " sr=h&sig=gFSfLGMXDOvf906%2fiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3d&" + v1SE, Token{
			EncodedResource: "h", Signature: "gFSfLGMXDOvf906/iaX3KwzLLNFHgaFZyCbsGjxtd1Y=",
			Expiry: v1Expiry.UTC(),
		}},
		// The Azure IoT C SDK (c-utility sastoken.c) appends "&skn=" to
		// every token and passes an empty key name for device keys.
		{"empty-skn-as-c-sdk", v1Token + "&skn=", Token{
			EncodedResource: "myhub.azure-devices.net%2Fdevices%2Fdevice1",
			Signature:       "gFSfLGMXDOvf906/iaX3KwzLLNFHgaFZyCbsGjxtd1Y=",
			Expiry:          v1Expiry.UTC(),
		}},
		{"empty-skn-first", Prefix + " skn=&" + v1SE + "&" + v1Sig + "&" + v1SR, Token{
			EncodedResource: "myhub.azure-devices.net%2Fdevices%2Fdevice1",
			Signature:       "gFSfLGMXDOvf906/iaX3KwzLLNFHgaFZyCbsGjxtd1Y=",
			Expiry:          v1Expiry.UTC(),
		}},
		{"sr-kept-raw", Prefix + " sr=a%2fB%2Fc+d&" + v1Sig + "&" + v1SE, Token{
			EncodedResource: "a%2fB%2Fc+d", Signature: "gFSfLGMXDOvf906/iaX3KwzLLNFHgaFZyCbsGjxtd1Y=",
			Expiry: v1Expiry.UTC(),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := ParseToken(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if tok != c.want {
				t.Fatalf("got %+v\nwant %+v", tok, c.want)
			}
			again, err := ParseToken(tok.String())
			if err != nil || again != tok {
				t.Errorf("ParseToken(String()) = %+v, %v; want %+v", again, err, tok)
			}
		})
	}
}

// TestVerifyCSDKDeviceToken: a device-key token as the Azure IoT C SDK
// writes it, with a trailing empty "&skn=" and lower-case escapes in sig,
// verifies for its device.
func TestVerifyCSDKDeviceToken(t *testing.T) {
	key := mustKey(t, v1Key)
	tok := NewToken(DeviceResource(v1Host, "device1"), key, "", v1Expiry)
	sr, rest, _ := strings.Cut(tok.String(), "&sig=")
	text := sr + "&sig=" + strings.NewReplacer("%2F", "%2f", "%3D", "%3d", "%2B", "%2b").Replace(rest) + "&skn="
	got, err := ParseToken(text)
	if err != nil {
		t.Fatalf("ParseToken(%q): %v", text, err)
	}
	if got.KeyName != "" {
		t.Errorf("KeyName = %q, want none", got.KeyName)
	}
	if err := got.VerifyFor(DeviceResource(v1Host, "device1"), key, v1Expiry); err != nil {
		t.Errorf("VerifyFor: %v", err)
	}
}

func TestNewTokenTruncatesExpiry(t *testing.T) {
	key := mustKey(t, v1Key)
	tok := NewToken(DeviceResource(v1Host, "device1"), key, "", v1Expiry.Add(999*time.Millisecond))
	if tok.String() != v1Token {
		t.Errorf("got %q, want %q", tok.String(), v1Token)
	}
	if tok.Expiry != v1Expiry.UTC() {
		t.Errorf("Expiry = %v, want %v", tok.Expiry, v1Expiry.UTC())
	}
}

func TestAppendText(t *testing.T) {
	tok, err := ParseToken(v1Token)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tok.AppendText([]byte("pw:"))
	if err != nil || string(b) != "pw:"+v1Token {
		t.Errorf("AppendText = %q, %v", b, err)
	}
	for name, bad := range map[string]Token{
		"zero":       {},
		"no-sr":      {Signature: tok.Signature, Expiry: tok.Expiry},
		"space-sr":   {EncodedResource: "a b", Signature: tok.Signature, Expiry: tok.Expiry},
		"bad-sig":    {EncodedResource: "h", Signature: "nope", Expiry: tok.Expiry},
		"pre-1970":   {EncodedResource: "h", Signature: tok.Signature, Expiry: time.Unix(-1, 0)},
		"bad-escape": {EncodedResource: "h%", Signature: tok.Signature, Expiry: tok.Expiry},
	} {
		if b, err := bad.AppendText(nil); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: AppendText = %q, %v; want ErrMalformed", name, b, err)
		}
	}
}

func TestTokenLogValueHidesSignature(t *testing.T) {
	tok, err := ParseToken(v1Token + "&skn=device")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("connect", "token", tok)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("connect", "token", tok)
	out := buf.String()
	if strings.Contains(out, "gFSf") {
		t.Errorf("slog output holds the signature: %s", out)
	}
	for _, want := range []string{"myhub.azure-devices.net%2Fdevices%2Fdevice1", "1700000000", "device", redacted} {
		if !strings.Contains(out, want) {
			t.Errorf("slog output lacks %q: %s", want, out)
		}
	}
}

// TestMACMatchesCryptoHMAC holds the hand-rolled HMAC equal to crypto/hmac,
// for keys around the 64-byte block size and messages around the copy
// buffer's size.
func TestMACMatchesCryptoHMAC(t *testing.T) {
	for _, klen := range []int{0, 1, 32, 63, 64, 65, 128, 200} {
		for _, mlen := range []int{0, 1, 63, 64, 65, 130, 1000} {
			key := bytes.Repeat([]byte{byte(klen + 1)}, klen)
			sr := strings.Repeat("x", mlen)
			se := []byte("1700000000")
			var got [macLen]byte
			macInto(&got, key, sr, se)
			m := hmac.New(sha256.New, key)
			m.Write([]byte(sr + "\n" + string(se)))
			if want := m.Sum(nil); !bytes.Equal(got[:], want) {
				t.Errorf("key %d bytes, sr %d bytes: got %x, want %x", klen, mlen, got, want)
			}
		}
	}
}

// TestMACMatchesCryptoHMACRandom compares macInto with crypto/hmac on
// random keys (up to four SHA-256 blocks, so longer keys are hashed first)
// and random resource and expiry bytes.
func TestMACMatchesCryptoHMACRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for range 2000 {
		key := fill(rng.IntN(257))
		sr := string(fill(rng.IntN(300)))
		se := fill(rng.IntN(21))
		var got [macLen]byte
		macInto(&got, key, sr, se)
		m := hmac.New(sha256.New, key)
		m.Write([]byte(sr))
		m.Write([]byte{'\n'})
		m.Write(se)
		if want := m.Sum(nil); !bytes.Equal(got[:], want) {
			t.Fatalf("key %x, sr %q, se %q: got %x, want %x", key, sr, se, got, want)
		}
	}
}

func TestVerifyMalformedToken(t *testing.T) {
	key := mustKey(t, v1Key)
	good, err := ParseToken(v1Token)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]Token{
		"zero":     {},
		"no-sr":    {Signature: good.Signature, Expiry: good.Expiry},
		"bad-sig":  {EncodedResource: good.EncodedResource, Signature: "x", Expiry: good.Expiry},
		"pre-1970": {EncodedResource: good.EncodedResource, Signature: good.Signature, Expiry: time.Unix(-5, 0)},
	}
	for name, tok := range cases {
		if err := tok.Verify(key, v1Expiry); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Verify = %v, want ErrMalformed", name, err)
		}
	}
	// Changing sr after signing breaks the signature, even by one escape's case.
	altered := good
	altered.EncodedResource = strings.Replace(good.EncodedResource, "%2F", "%2f", 1)
	if err := altered.VerifyFor(DeviceResource(v1Host, "device1"), key, v1Expiry); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("VerifyFor with altered sr = %v, want ErrSignatureMismatch", err)
	}
}

// TestVerifyForBrokenEscape signs a token over a sr whose escape is broken
// (as a peer could send) and checks VerifyFor calls it malformed rather than
// matching anything.
func TestVerifyForBrokenEscape(t *testing.T) {
	key := mustKey(t, v1Key)
	sr := "myhub.azure-devices.net%2Fdevices%2Fdev%2"
	var mac [macLen]byte
	macInto(&mac, key, sr, []byte("1700000000"))
	tok := Token{EncodedResource: sr, Expiry: v1Expiry, Signature: b64(mac[:])}
	if err := tok.Verify(key, v1Expiry); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := tok.VerifyFor(DeviceResource(v1Host, "dev"), key, v1Expiry); !errors.Is(err, ErrMalformed) {
		t.Errorf("VerifyFor = %v, want ErrMalformed", err)
	}
}

func TestVerifyForScopes(t *testing.T) {
	key := mustKey(t, v1Key)
	dev := DeviceResource(v1Host, "device1")
	mod := ModuleResource(v1Host, "device1", "m1")
	cases := []struct {
		scope, identity string
		ok              bool
	}{
		{v1Host, dev, true},               // hub-wide policy token (C# SDK)
		{v1Host + "/devices", dev, true},  // all devices
		{v1Host + "/devices/", dev, true}, // trailing slash
		{dev, dev, true},                  // exact
		{dev, mod, true},                  // device token scope covers its modules
		{mod, dev, false},                 // module token is narrower than the device
		{"MYHUB.Azure-Devices.NET/devices/device1", dev, true},     // host case-insensitive
		{v1Host + "/devices/Device1", dev, false},                  // ids case-sensitive
		{v1Host + "/devices/device", dev, false},                   // not a segment prefix
		{v1Host + "/devices/device1x", dev, false},                 // longer id
		{v1Host + "/Devices/device1", dev, false},                  // path case-sensitive
		{"otherhub.azure-devices.net/devices/device1", dev, false}, // other hub
		{v1Host + "x", dev, false},
	}
	for _, c := range cases {
		tok := NewToken(c.scope, key, "", v1Expiry)
		err := tok.VerifyFor(c.identity, key, v1Expiry)
		if c.ok && err != nil {
			t.Errorf("scope %q, identity %q: %v", c.scope, c.identity, err)
		}
		if !c.ok && !errors.Is(err, ErrResourceMismatch) {
			t.Errorf("scope %q, identity %q: %v, want ErrResourceMismatch", c.scope, c.identity, err)
		}
	}
}

// Tokens for the identity "dev#1" of V1's hub, key and se, in the two forms
// SDKs sign: v5Token is vector V5 (C#, edgeHub: the id escaped inside the
// resource URI, then the URI escaped), nodeDevToken what the Node SDK's
// azure-iot-common makes (the URI with the raw id escaped once), and
// nodeModToken the Node form for device "dev%1", module "m(1)".
const (
	v5Token      = "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev%25231&sig=R6zguaLAF90bpqrnYQhZcYQwTYkv%2BaC%2BBKuh3OFHIrA%3D&se=1700000000"
	nodeDevToken = "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev%231&sig=%2FskLagM5NyskwmDjPdaU4NyOrLLIdqysg9U43%2FVysKI%3D&se=1700000000"
	nodeModToken = "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev%251%2Fmodules%2Fm%281%29&sig=PlpoC0H%2FQf8Fk%2F2L5Jk2bMGmXyS7ywp%2FJNQKzg62DvM%3D&se=1700000000"
)

// TestVerifyIdentitySDKForms checks that VerifyIdentity and VerifyFor accept
// a token for one identity in both SDK forms and reject every other
// identity. Before the scope check read raw ids, the Node module token
// (an id holding '%') failed with ErrResourceMismatch.
func TestVerifyIdentitySDKForms(t *testing.T) {
	key := mustKey(t, v1Key)
	dev := Identity{Host: v1Host, DeviceID: "dev#1"}
	mod := Identity{Host: v1Host, DeviceID: "dev%1", ModuleID: "m(1)"}
	cases := []struct {
		token string
		id    Identity
		want  error
	}{
		{v5Token, dev, nil},
		{nodeDevToken, dev, nil},
		{nodeModToken, mod, nil},
		{v5Token, Identity{Host: "MyHub.Azure-Devices.Net", DeviceID: "dev#1"}, nil},
		{nodeDevToken, Identity{Host: v1Host, DeviceID: "dev#1", ModuleID: "m"}, nil}, // a device scope covers its modules
		{v5Token, Identity{Host: v1Host, DeviceID: "dev"}, ErrResourceMismatch},
		// The Node SDK's token for the id "dev%231" is V5 byte for byte:
		// one token, two identities, whichever form reads it.
		{v5Token, Identity{Host: v1Host, DeviceID: "dev%231"}, nil},
		{v5Token, Identity{Host: v1Host, DeviceID: "dev%25231"}, ErrResourceMismatch},
		{nodeDevToken, Identity{Host: v1Host, DeviceID: "dev"}, ErrResourceMismatch},
		{nodeDevToken, Identity{Host: v1Host, DeviceID: "dev#"}, ErrResourceMismatch},
		{nodeDevToken, Identity{Host: v1Host, DeviceID: "dev#12"}, ErrResourceMismatch},
		{nodeModToken, Identity{Host: v1Host, DeviceID: "dev%1"}, ErrResourceMismatch},
		{nodeModToken, Identity{Host: v1Host, DeviceID: "dev%1", ModuleID: "m(1)x"}, ErrResourceMismatch},
		{nodeModToken, Identity{Host: v1Host, DeviceID: "dev%1", ModuleID: "m"}, ErrResourceMismatch},
		{nodeModToken, Identity{Host: "other.azure-devices.net", DeviceID: "dev%1", ModuleID: "m(1)"}, ErrResourceMismatch},
		{v5Token, Identity{Host: v1Host}, ErrResourceMismatch},
		{v5Token, Identity{DeviceID: "dev#1"}, ErrResourceMismatch},
	}
	for _, c := range cases {
		tok, err := ParseToken(c.token)
		if err != nil {
			t.Fatal(err)
		}
		if err := tok.VerifyIdentity(c.id, key, v1Expiry); err != c.want {
			t.Errorf("%s\nVerifyIdentity(%+v) = %v, want %v", c.token, c.id, err, c.want)
		}
		if c.id.Host == "" || c.id.DeviceID == "" {
			continue
		}
		if err := tok.VerifyFor(c.id.Resource(), key, v1Expiry); err != c.want {
			t.Errorf("%s\nVerifyFor(%q) = %v, want %v", c.token, c.id.Resource(), err, c.want)
		}
	}
	// Verify's errors come first.
	tok, _ := ParseToken(v5Token)
	if err := tok.VerifyIdentity(dev, key, v1Expiry.Add(time.Hour)); err != ErrExpired {
		t.Errorf("expired: %v", err)
	}
	if err := tok.VerifyIdentity(Identity{}, []byte("other key"), v1Expiry); err != ErrSignatureMismatch {
		t.Errorf("wrong key: %v", err)
	}
}

// TestVerifyIdentityScopes runs the scopes of TestVerifyForScopes, as both
// SDK forms, through VerifyIdentity: policy tokens scoped to the hub or to
// all devices cover every identity, a device token nothing but that device
// and its modules.
func TestVerifyIdentityScopes(t *testing.T) {
	key := mustKey(t, v1Key)
	ids := []Identity{
		{Host: v1Host, DeviceID: "d#1"},
		{Host: v1Host, DeviceID: "d#1", ModuleID: "m;2"},
		{Host: v1Host, DeviceID: "a%41"},
	}
	for _, id := range ids {
		for _, scope := range []string{v1Host, v1Host + "/", v1Host + "/devices", v1Host + "/devices/", id.Resource()} {
			tok := NewToken(scope, key, "policy", v1Expiry)
			if err := tok.VerifyIdentity(id, key, v1Expiry); err != nil {
				t.Errorf("scope %q, identity %+v: %v", scope, id, err)
			}
		}
		// The Node form of the identity's own scope.
		raw := v1Host + "/devices/" + id.DeviceID
		if id.ModuleID != "" {
			raw += "/modules/" + id.ModuleID
		}
		tok := NewToken(raw, key, "", v1Expiry)
		if err := tok.VerifyIdentity(id, key, v1Expiry); err != nil {
			t.Errorf("raw scope %q, identity %+v: %v", raw, id, err)
		}
		for _, narrower := range []string{v1Host + "x", v1Host + "/devicesx", v1Host + "/Devices", raw + "x", raw + "/x", raw + "%2Fx"} {
			tok := NewToken(narrower, key, "policy", v1Expiry)
			if err := tok.VerifyIdentity(id, key, v1Expiry); err != ErrResourceMismatch {
				t.Errorf("scope %q, identity %+v: %v, want ErrResourceMismatch", narrower, id, err)
			}
		}
	}
}
