package fuzz

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/hubwire/hubwire/sas"
)

// sasTokenSeeds are the tokens of shared/testvectors/sas.json (V1–V5), then
// variants a parser must get right: fields reordered, skn escaped, escapes
// in lower case, and near misses.
var sasTokenSeeds = []string{
	"SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D&se=1700000000",
	"SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1%2Fmodules%2Fmodule-a&sig=yyX%2Fh42z%2B9oWmo%2BRubQOZc6lj2jej%2F6N%2BBySk6agHy8%3D&se=1893456000",
	"SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1&sig=0Ni0W8D7ncwIm%2B40jHt%2BIRzSwuTKatdpjNVXj40b9nw%3D&se=1700000000&skn=device",
	"SharedAccessSignature sr=myhub.azure-devices.net%2fdevices%2fdevice1&sig=iIyvul1z7xsjQDMXvGvUxZi%2BlqnXkFn5lOgyNrICYDM%3D&se=1700000000",
	"SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev%25231&sig=R6zguaLAF90bpqrnYQhZcYQwTYkv%2BaC%2BBKuh3OFHIrA%3D&se=1700000000",
	"SharedAccessSignature se=1700000000&skn=my%20policy&sig=gFSfLGMXDOvf906%2fiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3d&sr=h",
	"SharedAccessSignature sr=h&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D&se=0",
	// As the Azure IoT C SDK writes a device-key token: empty skn, lower-case escapes.
	"SharedAccessSignature sr=myhub.azure-devices.net%2fdevices%2fdevice1&sig=gFSfLGMXDOvf906%2fiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3d&se=1700000000&skn=",
	"SharedAccessSignature sr=h&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D&se=01",
	"SharedAccessSignature  sr=h&sig=x&se=1",
	"SharedAccessSignature sr=h&sr=h&sig=x&se=1",
	"SharedAccessSignature sr=%zz&sig=x&se=1&",
}

// v1Key is the key of vectors V1, V2, V4 and V5.
var v1Key = []byte{
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
}

// FuzzParseToken checks that ParseToken never panics, that whatever it
// accepts prints and parses back to the same Token with the same text, and
// that Verify agrees with crypto/hmac on whether the signature matches key.
func FuzzParseToken(f *testing.F) {
	for _, s := range sasTokenSeeds {
		f.Add(s, v1Key)
	}
	f.Fuzz(func(t *testing.T, s string, key []byte) {
		tok, err := sas.ParseToken(s)
		if err != nil {
			if !errors.Is(err, sas.ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			return
		}
		text := tok.String()
		again, err := sas.ParseToken(text)
		if err != nil {
			t.Fatalf("String() = %q does not parse: %v", text, err)
		}
		if again != tok {
			t.Fatalf("round trip changed the token:\n%+v\n%+v", tok, again)
		}
		if again.String() != text {
			t.Fatalf("String() not stable: %q then %q", text, again.String())
		}
		if b, err := tok.AppendText(nil); err != nil || string(b) != text {
			t.Fatalf("AppendText = %q, %v; String = %q", b, err, text)
		}
		if _, err := tok.Resource(); err != nil {
			t.Fatalf("accepted sr does not decode: %v", err)
		}

		m := hmac.New(sha256.New, key)
		m.Write([]byte(tok.EncodedResource + "\n" + strconv.FormatInt(tok.Expiry.Unix(), 10)))
		match := base64.StdEncoding.EncodeToString(m.Sum(nil)) == tok.Signature
		err = tok.Verify(key, tok.Expiry)
		switch {
		case match && err != nil:
			t.Fatalf("crypto/hmac matches but Verify = %v", err)
		case !match && !errors.Is(err, sas.ErrSignatureMismatch):
			t.Fatalf("crypto/hmac differs but Verify = %v", err)
		}

		// A token minted over the same resource always verifies for it.
		res, _ := tok.Resource()
		if len(key) > 0 {
			minted := sas.NewToken(res, key, tok.KeyName, tok.Expiry)
			if minted.Verify(key, tok.Expiry) != nil {
				t.Fatalf("NewToken(%q) does not verify", res)
			}
		}
	})
}

// sasConnSeeds are connection strings of every shape, valid and not.
var sasConnSeeds = []string{
	"HostName=myhub.azure-devices.net;DeviceId=device1;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	"HostName=myhub.azure-devices.net;DeviceId=device1;ModuleId=module-a;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	"HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8=",
	"HostName=myhub.azure-devices.net;DeviceId=device1;SharedAccessSignature=SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D&se=1700000000",
	"HostName=myhub.azure-devices.net;DeviceId=dev#1;x509=true;GatewayHostName=edge.local",
	" SharedAccessKey=AAAA;DeviceId=a=b;HostName=h; ",
	"HostName=h;HostName=h;DeviceId=d;x509=true",
	"HostName=h;DeviceId=d",
	"HostName=h;;DeviceId=d;x509=true",
	"hostname=h;DeviceId=d;x509=true",
}

// FuzzParseConnectionString checks that ParseConnectionString never panics,
// that FullString of whatever it accepts parses back to an equal value with
// the same text, and that the redacted forms never show the secrets.
func FuzzParseConnectionString(f *testing.F) {
	for _, s := range sasConnSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := sas.ParseConnectionString(s)
		if err != nil {
			if !errors.Is(err, sas.ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			return
		}
		full := cs.FullString()
		again, err := sas.ParseConnectionString(full)
		if err != nil {
			t.Fatalf("FullString() = %q does not parse: %v", full, err)
		}
		if !again.Equal(cs) {
			t.Fatalf("round trip changed the value: %q then %q", full, again.FullString())
		}
		if again.FullString() != full {
			t.Fatalf("FullString() not stable: %q then %q", full, again.FullString())
		}
		red := cs.String()
		var secrets []string
		if k := cs.SharedAccessKey(); k != "" {
			secrets = append(secrets, "SharedAccessKey="+k, "SharedAccessKey:"+strconv.Quote(k))
		}
		if tok := cs.SharedAccessSignature(); tok != "" {
			secrets = append(secrets, "SharedAccessSignature="+tok, "SharedAccessSignature:"+strconv.Quote(tok))
		}
		for _, secret := range secrets {
			for _, out := range []string{red, fmt.Sprintf("%v", cs), fmt.Sprintf("%+v", cs), fmt.Sprintf("%#v", cs)} {
				if strings.Contains(out, secret) {
					t.Fatalf("redacted form shows %q: %s", secret, out)
				}
			}
		}
	})
}
