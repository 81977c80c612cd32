// Package sas builds, parses and verifies Azure IoT Hub shared access
// signature (SAS) tokens, builds the resource URIs they are signed for, and
// parses IoT Hub connection strings. It does no I/O.
//
// # Tokens
//
// A token is the MQTT CONNECT password of a SAS-authenticated device:
//
//	SharedAccessSignature sr={pct(resourceURI)}&sig={pct(base64 sig)}&se={unixSeconds}[&skn={policy}]
//
// with sig = base64(HMAC-SHA256(base64decode(key), sr + "\n" + se)), where
// sr is taken exactly as it appears in the token. NewToken signs one,
// ParseToken reads one strictly (fields in any order; unknown, repeated,
// missing or empty fields are errors, except the empty "skn=" the Azure IoT
// C SDK appends to device-key tokens), and Token.Verify / Token.VerifyFor
// check one the way IoT Hub and edgeHub do: expiry with MaxClockSkew (5
// minutes) of grace, the HMAC compared in constant time over the raw sr (so
// %2F and %2f escapes both verify), and the decoded sr matched as a
// path-segment prefix of the identity's resource URI. Token.VerifyIdentity
// makes that check from an Identity (host, device id, module id) directly.
// Verification does not allocate, so an emulator can afford it on every
// CONNECT.
//
// SDKs write the scope in two forms: C# and edgeHub escape the ids inside
// the resource URI and then the URI ("dev#1" → sr "…%2Fdev%25231", decoded
// "{host}/devices/dev%231"), the Node SDK escapes the URI once with the ids
// raw inside (decoded "{host}/devices/dev#1"). The scope check accepts both
// for the same identity and nothing broader; tokens made here use the C#
// form.
//
// # Resource URIs and escaping
//
// A device's resource URI is "{host}/devices/{Escape(id)}" (DeviceResource),
// a module's "{host}/devices/{Escape(d)}/modules/{Escape(m)}"
// (ModuleResource); NewToken escapes the whole URI once more for sr, so the
// id "dev#1" appears as "dev%25231". Escape copies .NET's
// WebUtility.UrlEncode, which the C# SDK and edgeHub use: letters, digits
// and - _ . ! * ( ) are kept, every other byte becomes %XX in upper-case hex
// (a space becomes %20, not '+'). Of the characters IoT Hub allows in ids,
// - . _ * ! ( ) are kept and : + % # ? , = @ ; $ ' are escaped.
//
// # Connection strings
//
// ParseConnectionString reads HostName, DeviceId, ModuleId,
// SharedAccessKey, SharedAccessKeyName, SharedAccessSignature,
// GatewayHostName and x509=true, splitting each pair on its first '='. A
// ConnectionString keeps its secrets out of fmt and log/slog output; only
// FullString reveals them.
//
// # Token sources
//
// A TokenSource hands an MQTT client the password for each (re)connect.
// RenewingSource caches a minted token and signs a fresh one once a fraction
// (by default 80%) of its TTL (by default 60 minutes) has passed, on an
// injectable clock. ConnectionString.TokenSource picks the right source.
//
// # Errors
//
// Parse errors are *ParseError values matching ErrMalformed (and, for
// connection strings, a specific sentinel such as ErrDuplicateKey); they
// name fields, never values. Verify returns the bare sentinels ErrMalformed,
// ErrExpired, ErrSignatureMismatch and ErrResourceMismatch.
//
// # Concurrency
//
// Token and ConnectionString are values, safe to share once built.
// RenewingSource is safe for concurrent use.
package sas
