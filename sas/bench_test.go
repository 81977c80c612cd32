package sas

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
	"time"
)

func BenchmarkNewToken(b *testing.B) {
	key := mustKey(b, v1Key)
	res := DeviceResource(v1Host, "device1")
	b.ReportAllocs()
	for b.Loop() {
		_ = NewToken(res, key, "", v1Expiry)
	}
}

func BenchmarkTokenString(b *testing.B) {
	tok, _ := ParseToken(v1Token)
	b.ReportAllocs()
	b.SetBytes(int64(len(v1Token)))
	for b.Loop() {
		_ = tok.String()
	}
}

func BenchmarkTokenAppendText(b *testing.B) {
	tok, _ := ParseToken(v1Token)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(v1Token)))
	for b.Loop() {
		buf, _ = tok.AppendText(buf[:0])
	}
}

func BenchmarkParseToken(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(v1Token)))
	for b.Loop() {
		if _, err := ParseToken(v1Token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	key := mustKey(b, v1Key)
	tok, _ := ParseToken(v1Token)
	b.ReportAllocs()
	for b.Loop() {
		if err := tok.Verify(key, v1Expiry); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyFor(b *testing.B) {
	key := mustKey(b, v1Key)
	tok, _ := ParseToken(v1Token)
	identity := DeviceResource(v1Host, "device1")
	b.ReportAllocs()
	for b.Loop() {
		if err := tok.VerifyFor(identity, key, v1Expiry); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyIdentity checks the identity "dev#1" against its token in
// each SDK's form, without a precomputed resource URI.
func BenchmarkVerifyIdentity(b *testing.B) {
	key := mustKey(b, v1Key)
	id := Identity{Host: v1Host, DeviceID: "dev#1"}
	for _, c := range []struct{ name, token string }{{"form=csharp", v5Token}, {"form=node", nodeDevToken}} {
		tok, err := ParseToken(c.token)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := tok.VerifyIdentity(id, key, v1Expiry); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseAndVerifyFor is the emulator's whole per-CONNECT cost.
func BenchmarkParseAndVerifyFor(b *testing.B) {
	key := mustKey(b, v1Key)
	identity := DeviceResource(v1Host, "device1")
	now := time.Unix(1700000000, 0)
	b.ReportAllocs()
	for b.Loop() {
		tok, err := ParseToken(v1Token)
		if err == nil {
			err = tok.VerifyFor(identity, key, now)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMAC compares the stack-only HMAC with crypto/hmac (the peer) on
// the same string to sign.
func BenchmarkMAC(b *testing.B) {
	key := mustKey(b, v1Key)
	const sr, se = "myhub.azure-devices.net%2Fdevices%2Fdevice1", "1700000000"
	b.Run("impl=sas", func(b *testing.B) {
		b.ReportAllocs()
		var m [macLen]byte
		for b.Loop() {
			macInto(&m, key, sr, []byte(se))
		}
	})
	b.Run("impl=crypto-hmac", func(b *testing.B) {
		b.ReportAllocs()
		var m [macLen]byte
		for b.Loop() {
			h := hmac.New(sha256.New, key)
			h.Write([]byte(sr))
			h.Write([]byte("\n"))
			h.Write([]byte(se))
			h.Sum(m[:0])
		}
	})
}

func BenchmarkParseConnectionString(b *testing.B) {
	const s = "HostName=myhub.azure-devices.net;DeviceId=device1;SharedAccessKey=" + v1Key
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseConnectionString(s); err != nil {
			b.Fatal(err)
		}
	}
}
