// Package percent is hubwire's one implementation of percent-encoding
// (RFC 3986 §2.1), shared by package sas (resource URIs and token fields)
// and package iothub (property bags, the MQTT user name).
//
// The callers differ in which bytes they keep and in how they treat a '%'
// that does not start an escape, so both are parameters: an encoder is
// given the Set of bytes it writes as they are (every other byte becomes
// %XX in upper-case hex, a space %20, never '+'), and a decoder is either
// strict (Decode, AppendUnescape: a broken escape is reported) or lenient
// (DecodeLenient: a broken escape is kept as a literal '%', as .NET's
// Uri.UnescapeDataString does). No decoder turns '+' into a space.
//
// Every function takes a string or a byte slice and none allocates beyond
// growing the caller's dst.
package percent
