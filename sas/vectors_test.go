package sas

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// vector is one entry of shared/testvectors/sas.json.
type vector struct {
	Name         string `json:"name"`
	Host         string `json:"host"`
	DeviceID     string `json:"device_id"`
	ModuleID     string `json:"module_id"`
	KeyName      string `json:"key_name"`
	KeyBase64    string `json:"key_base64"`
	ResourceURI  string `json:"resource_uri"`
	SR           string `json:"sr"`
	SE           string `json:"se"`
	StringToSign string `json:"string_to_sign"`
	SigBase64    string `json:"signature_base64"`
	Token        string `json:"token"`
}

// embeddedVectors is a copy of shared/testvectors/sas.json, so the vectors
// are asserted even where the shared folder is absent; TestVectorsFile checks
// the copy still matches the file when it is present.
var embeddedVectors = []vector{
	{
		Name: "V1", Host: "myhub.azure-devices.net", DeviceID: "device1",
		KeyBase64:    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		ResourceURI:  "myhub.azure-devices.net/devices/device1",
		SR:           "myhub.azure-devices.net%2Fdevices%2Fdevice1",
		SE:           "1700000000",
		StringToSign: "myhub.azure-devices.net%2Fdevices%2Fdevice1\n1700000000",
		SigBase64:    "gFSfLGMXDOvf906/iaX3KwzLLNFHgaFZyCbsGjxtd1Y=",
		Token:        "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D&se=1700000000",
	},
	{
		Name: "V2", Host: "myhub.azure-devices.net", DeviceID: "device1", ModuleID: "module-a",
		KeyBase64:    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		ResourceURI:  "myhub.azure-devices.net/devices/device1/modules/module-a",
		SR:           "myhub.azure-devices.net%2Fdevices%2Fdevice1%2Fmodules%2Fmodule-a",
		SE:           "1893456000",
		StringToSign: "myhub.azure-devices.net%2Fdevices%2Fdevice1%2Fmodules%2Fmodule-a\n1893456000",
		SigBase64:    "yyX/h42z+9oWmo+RubQOZc6lj2jej/6N+BySk6agHy8=",
		Token:        "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1%2Fmodules%2Fmodule-a&sig=yyX%2Fh42z%2B9oWmo%2BRubQOZc6lj2jej%2F6N%2BBySk6agHy8%3D&se=1893456000",
	},
	{
		Name: "V3", Host: "myhub.azure-devices.net", DeviceID: "device1", KeyName: "device",
		KeyBase64:    "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8=",
		ResourceURI:  "myhub.azure-devices.net/devices/device1",
		SR:           "myhub.azure-devices.net%2Fdevices%2Fdevice1",
		SE:           "1700000000",
		StringToSign: "myhub.azure-devices.net%2Fdevices%2Fdevice1\n1700000000",
		SigBase64:    "0Ni0W8D7ncwIm+40jHt+IRzSwuTKatdpjNVXj40b9nw=",
		Token:        "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1&sig=0Ni0W8D7ncwIm%2B40jHt%2BIRzSwuTKatdpjNVXj40b9nw%3D&se=1700000000&skn=device",
	},
	{
		Name: "V4", Host: "myhub.azure-devices.net", DeviceID: "device1",
		KeyBase64:    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		ResourceURI:  "myhub.azure-devices.net/devices/device1",
		SR:           "myhub.azure-devices.net%2fdevices%2fdevice1",
		SE:           "1700000000",
		StringToSign: "myhub.azure-devices.net%2fdevices%2fdevice1\n1700000000",
		SigBase64:    "iIyvul1z7xsjQDMXvGvUxZi+lqnXkFn5lOgyNrICYDM=",
		Token:        "SharedAccessSignature sr=myhub.azure-devices.net%2fdevices%2fdevice1&sig=iIyvul1z7xsjQDMXvGvUxZi%2BlqnXkFn5lOgyNrICYDM%3D&se=1700000000",
	},
	{
		Name: "V5", Host: "myhub.azure-devices.net", DeviceID: "dev#1",
		KeyBase64:    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
		ResourceURI:  "myhub.azure-devices.net/devices/dev%231",
		SR:           "myhub.azure-devices.net%2Fdevices%2Fdev%25231",
		SE:           "1700000000",
		StringToSign: "myhub.azure-devices.net%2Fdevices%2Fdev%25231\n1700000000",
		SigBase64:    "R6zguaLAF90bpqrnYQhZcYQwTYkv+aC+BKuh3OFHIrA=",
		Token:        "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev%25231&sig=R6zguaLAF90bpqrnYQhZcYQwTYkv%2BaC%2BBKuh3OFHIrA%3D&se=1700000000",
	},
}

// vectorsPath is shared/testvectors/sas.json seen from this package: the
// shared folder sits beside the clone (../shared in CI, /work/shared here).
var vectorsPath = filepath.Join("..", "..", "shared", "testvectors", "sas.json")

func TestVectorsEmbedded(t *testing.T) {
	for _, v := range embeddedVectors {
		t.Run(v.Name, func(t *testing.T) { checkVector(t, v) })
	}
}

// TestVectorsFile reproduces every vector in the shared file, read at test
// time, and checks that embeddedVectors is a faithful copy of it.
func TestVectorsFile(t *testing.T) {
	data, err := os.ReadFile(vectorsPath)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s absent; TestVectorsEmbedded covers the same vectors", vectorsPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) != len(embeddedVectors) {
		t.Errorf("file has %d vectors, embedded copy %d", len(file.Vectors), len(embeddedVectors))
	}
	for i, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			checkVector(t, v)
			if i < len(embeddedVectors) {
				e := embeddedVectors[i]
				e.Name = v.Name
				if e != v {
					t.Errorf("embedded copy differs from the file:\n got %+v\nwant %+v", e, v)
				}
			}
		})
	}
}

func checkVector(t *testing.T, v vector) {
	t.Helper()
	key, err := DecodeKey(v.KeyBase64)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := strconv.ParseInt(v.SE, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	expiry := time.Unix(sec, 0)

	// The resource URI builders.
	res := DeviceResource(v.Host, v.DeviceID)
	if v.ModuleID != "" {
		res = ModuleResource(v.Host, v.DeviceID, v.ModuleID)
	}
	if res != v.ResourceURI {
		t.Errorf("resource URI = %q, want %q", res, v.ResourceURI)
	}

	// The MAC over the string to sign, for the sr exactly as given.
	if got := v.SR + "\n" + v.SE; got != v.StringToSign {
		t.Errorf("string to sign = %q, want %q", got, v.StringToSign)
	}
	var mac [macLen]byte
	macInto(&mac, key, v.SR, []byte(v.SE))
	if got := base64.StdEncoding.EncodeToString(mac[:]); got != v.SigBase64 {
		t.Errorf("signature = %q, want %q", got, v.SigBase64)
	}

	// Building: NewToken writes upper-case escapes, so it reproduces every
	// vector but V4, whose lower-case sr is checked through parsing below.
	built := NewToken(v.ResourceURI, key, v.KeyName, expiry)
	if v.SR == Escape(v.ResourceURI) {
		if built.String() != v.Token {
			t.Errorf("NewToken = %q\nwant       %q", built.String(), v.Token)
		}
		b64, err := NewTokenBase64(v.ResourceURI, v.KeyBase64, v.KeyName, expiry)
		if err != nil || b64 != built {
			t.Errorf("NewTokenBase64 = %+v, %v; want %+v", b64, err, built)
		}
	} else if built.EncodedResource == v.SR {
		t.Errorf("sr %q was expected to differ from NewToken's upper-case escapes", v.SR)
	}

	// Parsing keeps sr raw and decodes sig.
	tok, err := ParseToken(v.Token)
	if err != nil {
		t.Fatal(err)
	}
	want := Token{EncodedResource: v.SR, Signature: v.SigBase64, Expiry: time.Unix(sec, 0).UTC(), KeyName: v.KeyName}
	if tok != want {
		t.Errorf("ParseToken = %+v\nwant %+v", tok, want)
	}
	if tok.String() != v.Token {
		t.Errorf("String = %q, want %q", tok.String(), v.Token)
	}
	if r, err := tok.Resource(); err != nil || r != v.ResourceURI {
		t.Errorf("Resource() = %q, %v; want %q", r, err, v.ResourceURI)
	}

	// Verification at the edges of the skew window, with wrong keys and
	// foreign resources.
	if err := tok.VerifyFor(v.ResourceURI, key, expiry); err != nil {
		t.Errorf("VerifyFor at se: %v", err)
	}
	if err := tok.VerifyFor(v.ResourceURI, key, expiry.Add(MaxClockSkew)); err != nil {
		t.Errorf("VerifyFor at se+5m: %v", err)
	}
	if err := tok.Verify(key, expiry.Add(MaxClockSkew+time.Second)); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify at se+5m+1s = %v, want ErrExpired", err)
	}
	bad := append([]byte(nil), key...)
	bad[0] ^= 1
	if err := tok.Verify(bad, expiry); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("Verify with a flipped key bit = %v, want ErrSignatureMismatch", err)
	}
	other := DeviceResource(v.Host, v.DeviceID+"x")
	if err := tok.VerifyFor(other, key, expiry); !errors.Is(err, ErrResourceMismatch) {
		t.Errorf("VerifyFor(%q) = %v, want ErrResourceMismatch", other, err)
	}
}
