package sas

import (
	"crypto/hmac"
	"crypto/sha256"
	"strconv"
	"time"
)

const macLen = sha256.Size

// macInto computes HMAC-SHA256(key, sr + "\n" + se) into dst (RFC 2104).
//
// It does by hand what hmac.New(sha256.New, key) does, because hmac.New
// costs six heap allocations per call and the emulator verifies a token on
// every CONNECT. Here the two digests come from sha256.New inside this one
// function, where the compiler devirtualizes and inlines them so they stay
// on the stack; the strings are copied through a stack buffer because
// passing the digest to io.WriteString would make it escape. alloc_test.go
// holds the zero, and a test and a fuzz target hold it equal to crypto/hmac.
func macInto(dst *[macLen]byte, key []byte, sr string, se []byte) {
	const block = 64 // SHA-256 block size
	var k [block]byte
	if len(key) > block {
		sum := sha256.Sum256(key)
		copy(k[:], sum[:])
	} else {
		copy(k[:], key)
	}
	var buf [block]byte
	for i := range k {
		buf[i] = k[i] ^ 0x36
	}
	h := sha256.New()
	h.Write(buf[:])
	for s := sr; len(s) > 0; {
		n := copy(buf[:], s)
		h.Write(buf[:n])
		s = s[n:]
	}
	buf[0] = '\n'
	h.Write(buf[:1])
	h.Write(se)
	var inner [macLen]byte
	h.Sum(inner[:0])

	for i := range k {
		buf[i] = k[i] ^ 0x5c
	}
	h.Reset()
	h.Write(buf[:])
	h.Write(inner[:])
	h.Sum(dst[:0])
	clear(k[:])
	clear(buf[:])
}

// Verify checks the token against a raw key at the instant now, in this
// order: the token is well formed (else ErrMalformed), now is not after
// Expiry+MaxClockSkew (else ErrExpired), and Signature is the HMAC-SHA256 of
// EncodedResource+"\n"+se under key, compared with hmac.Equal (else
// ErrSignatureMismatch). It does not look at the resource; see VerifyFor.
// Pick the key by KeyName: a device's or module's key when it is "", else
// that policy's. The errors are the bare sentinels. Verify does not
// allocate.
func (t Token) Verify(key []byte, now time.Time) error {
	if t.EncodedResource == "" {
		return ErrMalformed
	}
	se := t.Expiry.Unix()
	if se < 0 || se > maxExpiry {
		return ErrMalformed
	}
	var got [macLen + 2]byte
	if !decodeSig(&got, t.Signature) {
		return ErrMalformed
	}
	if now.After(t.Expiry.Add(MaxClockSkew)) {
		return ErrExpired
	}
	var want [macLen]byte
	var digits [20]byte
	macInto(&want, key, t.EncodedResource, strconv.AppendInt(digits[:0], se, 10))
	if !hmac.Equal(got[:macLen], want[:]) {
		return ErrSignatureMismatch
	}
	return nil
}

// VerifyFor is Verify followed by the scope check an emulator makes: the
// token's decoded resource must cover resource, the identity's resource URI
// (DeviceResource or ModuleResource), by whole path segments, host
// case-insensitive, ids case-sensitive, with the ids inside the token
// either escaped (C#, edgeHub) or raw (Node); see ResourceCovers. It
// returns ErrResourceMismatch when it does not, and ErrMalformed if sr holds
// a broken escape. VerifyFor does not allocate for a sr of up to 512 bytes.
// VerifyIdentity makes the same check from the ids themselves.
func (t Token) VerifyFor(resource string, key []byte, now time.Time) error {
	if err := t.Verify(key, now); err != nil {
		return err
	}
	return scopeCovers(&t, resource)
}

// VerifyIdentity is VerifyFor(id.Resource(), key, now) without building
// the resource URI on the heap: it accepts the token if it is valid and its
// scope covers the device or module id, in the form any SDK signs it
// (C#/edgeHub: "{host}/devices/dev%231"; Node: "{host}/devices/dev#1"; a
// policy token scoped "{host}" or "{host}/devices" covers every identity),
// and nothing broader: a token for "dev" does not cover "dev#1" or
// "dev/x". An Identity with an empty Host or DeviceID is covered by no
// token (ErrResourceMismatch). VerifyIdentity does not allocate for ids of
// up to 128 characters and a sr of up to 512 bytes.
func (t Token) VerifyIdentity(id Identity, key []byte, now time.Time) error {
	if err := t.Verify(key, now); err != nil {
		return err
	}
	if id.Host == "" || id.DeviceID == "" {
		return ErrResourceMismatch
	}
	var stack [1024]byte
	var buf []byte
	if n := id.resourceLen(); n <= len(stack) {
		buf = stack[:0]
	} else {
		buf = make([]byte, 0, n)
	}
	return scopeCovers(&t, id.appendResource(buf))
}

// scopeCovers is the scope check of VerifyFor, for a resource held in a
// string or a byte slice: nil, ErrResourceMismatch or ErrMalformed.
func scopeCovers[R text](t *Token, resource R) error {
	var stack [512]byte
	var buf []byte
	if len(t.EncodedResource) <= len(stack) {
		buf = stack[:0]
	} else {
		buf = make([]byte, 0, len(t.EncodedResource))
	}
	scope, ok := appendUnescaped(buf, t.EncodedResource)
	if !ok {
		return ErrMalformed
	}
	if !covers(scope, resource) {
		return ErrResourceMismatch
	}
	return nil
}
