//go:build !race

package sas

import (
	"strings"
	"testing"
	"time"
)

// TestVerifyAllocs holds Verify, VerifyFor and VerifyIdentity, success and
// failure, at zero allocations: the emulator runs them on every CONNECT.
func TestVerifyAllocs(t *testing.T) {
	key := mustKey(t, v1Key)
	tok, err := ParseToken(v1Token)
	if err != nil {
		t.Fatal(err)
	}
	identity := DeviceResource(v1Host, "device1")
	other := DeviceResource(v1Host, "device2")
	bad := append([]byte(nil), key...)
	bad[0] ^= 1
	now := v1Expiry
	late := v1Expiry.Add(time.Hour)
	// 128-character device and module ids (the maximum), a few escaped.
	id := strings.Repeat("device-0123#", 10) + "abcdefgh"
	longID := ModuleResource(v1Host, id, id)
	long := NewToken(longID, key, "", now)
	v5, err := ParseToken(v5Token)
	if err != nil {
		t.Fatal(err)
	}
	node, err := ParseToken(nodeDevToken)
	if err != nil {
		t.Fatal(err)
	}
	v5ID := Identity{Host: v1Host, DeviceID: "dev#1"}
	cases := map[string]func(){
		"Verify":                   func() { _ = tok.Verify(key, now) },
		"Verify/mismatch":          func() { _ = tok.Verify(bad, now) },
		"Verify/expired":           func() { _ = tok.Verify(key, late) },
		"VerifyFor":                func() { _ = tok.VerifyFor(identity, key, now) },
		"VerifyFor/wrong-resource": func() { _ = tok.VerifyFor(other, key, now) },
		"VerifyFor/long":           func() { _ = long.VerifyFor(longID, key, now) },
		"ResourceCovers":           func() { _ = ResourceCovers(v1Host+"/devices", identity) },
		"VerifyIdentity":           func() { _ = v5.VerifyIdentity(v5ID, key, now) },
		"VerifyIdentity/node":      func() { _ = node.VerifyIdentity(v5ID, key, now) },
		"VerifyIdentity/wrong":     func() { _ = node.VerifyIdentity(Identity{Host: v1Host, DeviceID: "dev"}, key, now) },
		"VerifyIdentity/long":      func() { _ = long.VerifyIdentity(Identity{Host: v1Host, DeviceID: id, ModuleID: id}, key, now) },
		"macInto": func() {
			var m [macLen]byte
			macInto(&m, key, tok.EncodedResource, []byte("1700000000"))
		},
	}
	if err := long.VerifyFor(longID, key, now); err != nil {
		t.Fatalf("long token: %v", err)
	}
	if err := long.VerifyIdentity(Identity{Host: v1Host, DeviceID: id, ModuleID: id}, key, now); err != nil {
		t.Fatalf("long token: VerifyIdentity: %v", err)
	}
	if len(long.EncodedResource) > 512 {
		t.Fatalf("long sr is %d bytes, over the stack buffer", len(long.EncodedResource))
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs, want 0", name, n)
		}
	}
}

// TestTokenAllocs holds Token.String at one allocation (the string),
// AppendText into a large enough buffer at zero, ParseToken at one (the
// decoded sig) and NewToken at two (sr and sig).
func TestTokenAllocs(t *testing.T) {
	tok, err := ParseToken(v1Token)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseToken(v1Token) }); n != 1 {
		t.Errorf("ParseToken: %v allocs, want 1", n)
	}
	key := mustKey(t, v1Key)
	res := DeviceResource(v1Host, "device1")
	if n := testing.AllocsPerRun(100, func() { _ = NewToken(res, key, "", v1Expiry) }); n != 2 {
		t.Errorf("NewToken: %v allocs, want 2", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = tok.String() }); n != 1 {
		t.Errorf("String: %v allocs, want 1", n)
	}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { _, _ = tok.AppendText(buf[:0]) }); n != 0 {
		t.Errorf("AppendText: %v allocs, want 0", n)
	}
}
