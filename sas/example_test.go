package sas_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hubwire/hubwire/sas"
)

// Vector V1 of shared/testvectors/sas.json: a device token signed with a
// device key.
func ExampleNewToken() {
	key, err := sas.DecodeKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		panic(err)
	}
	resource := sas.DeviceResource("myhub.azure-devices.net", "device1")
	tok := sas.NewToken(resource, key, "", time.Unix(1700000000, 0))
	fmt.Println(tok)
	// Output:
	// SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D&se=1700000000
}

// Ids are escaped inside the resource URI, and the URI again in sr.
func ExampleDeviceResource() {
	res := sas.DeviceResource("myhub.azure-devices.net", "dev#1")
	fmt.Println(res)
	fmt.Println(sas.Escape(res))
	// Output:
	// myhub.azure-devices.net/devices/dev%231
	// myhub.azure-devices.net%2Fdevices%2Fdev%25231
}

// The emulator's check of a CONNECT password.
func ExampleToken_VerifyFor() {
	key, _ := sas.DecodeKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	identity := sas.DeviceResource("myhub.azure-devices.net", "device1")
	tok, err := sas.ParseToken("SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D&se=1700000000")
	if err != nil {
		fmt.Println("CONNACK 5:", err)
		return
	}
	now := time.Unix(1700000000, 0)
	fmt.Println(tok.VerifyFor(identity, key, now))
	fmt.Println(tok.VerifyFor(identity, key, now.Add(6*time.Minute)))
	fmt.Println(tok.VerifyFor(sas.DeviceResource("myhub.azure-devices.net", "device2"), key, now))
	// Output:
	// <nil>
	// sas: token expired
	// sas: resource mismatch
}

// The emulator's check of a CONNECT password against the identity in the
// MQTT client id: a token the C# SDK signed (the id escaped inside sr,
// vector V5) and one the Node SDK signed (the id raw inside sr) both cover
// the device "dev#1", and neither covers the device "dev".
func ExampleToken_VerifyIdentity() {
	key, _ := sas.DecodeKey("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	id := sas.Identity{Host: "myhub.azure-devices.net", DeviceID: "dev#1"}
	now := time.Unix(1700000000, 0)
	for _, password := range []string{
		"SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev%25231&sig=R6zguaLAF90bpqrnYQhZcYQwTYkv%2BaC%2BBKuh3OFHIrA%3D&se=1700000000",
		"SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev%231&sig=%2FskLagM5NyskwmDjPdaU4NyOrLLIdqysg9U43%2FVysKI%3D&se=1700000000",
	} {
		tok, err := sas.ParseToken(password)
		if err != nil {
			fmt.Println("CONNACK 5:", err)
			return
		}
		fmt.Println(tok.VerifyIdentity(id, key, now), tok.VerifyIdentity(sas.Identity{Host: id.Host, DeviceID: "dev"}, key, now))
	}
	// Output:
	// <nil> sas: resource mismatch
	// <nil> sas: resource mismatch
}

func ExampleParseConnectionString() {
	cs, err := sas.ParseConnectionString("HostName=myhub.azure-devices.net;DeviceId=device1;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		panic(err)
	}
	fmt.Println(cs)              // redacted
	fmt.Printf("%+v\n", cs)      // redacted too
	fmt.Println(cs.Resource())   // what tokens are signed for
	fmt.Println(cs.FullString()) // the only way to see the key

	_, err = sas.ParseConnectionString("HostName=h;DeviceId=d;DeviceId=e;x509=true")
	fmt.Println(err, errors.Is(err, sas.ErrDuplicateKey))
	// Output:
	// HostName=myhub.azure-devices.net;DeviceId=device1;SharedAccessKey=<redacted>
	// HostName=myhub.azure-devices.net;DeviceId=device1;SharedAccessKey=<redacted>
	// myhub.azure-devices.net/devices/device1
	// HostName=myhub.azure-devices.net;DeviceId=device1;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
	// sas: connection string field "DeviceId": repeated true
}

// An MQTT client asks its source for a password on every (re)connect.
func ExampleConnectionString_TokenSource() {
	cs, _ := sas.ParseConnectionString("HostName=myhub.azure-devices.net;DeviceId=device1;SharedAccessKey=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	clock := func() time.Time { return time.Unix(1700000000-3600, 0) } // a fixed clock for the example
	src, err := cs.TokenSource(sas.RenewConfig{TTL: time.Hour, Now: clock})
	if err != nil {
		panic(err)
	}
	tok, err := src.Token(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println(tok.Expiry.Format(time.RFC3339))
	fmt.Println(tok)
	// Output:
	// 2023-11-14T22:13:20Z
	// SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdevice1&sig=gFSfLGMXDOvf906%2FiaX3KwzLLNFHgaFZyCbsGjxtd1Y%3D&se=1700000000
}
