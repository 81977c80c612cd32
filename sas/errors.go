package sas

import "errors"

// Sentinel errors. Verify and VerifyFor return these bare (no wrapping, no
// allocation), so an emulator rejecting a flood of bad tokens pays nothing
// for the error value. Parse functions return a *ParseError that matches
// ErrMalformed and, for connection strings, one of the more specific
// sentinels below.
var (
	// ErrMalformed means the input is not a well-formed token or connection
	// string, or a Token value is unusable (empty resource, bad signature
	// encoding, expiry out of range).
	ErrMalformed = errors.New("sas: malformed")

	// ErrExpired means the token's expiry, plus MaxClockSkew, is before the
	// verifying clock's now.
	ErrExpired = errors.New("sas: token expired")

	// ErrSignatureMismatch means the token's signature is not the HMAC of its
	// resource and expiry under the given key.
	ErrSignatureMismatch = errors.New("sas: signature mismatch")

	// ErrResourceMismatch means the token's decoded resource is not a
	// path-segment prefix of the identity's resource URI.
	ErrResourceMismatch = errors.New("sas: resource mismatch")

	// ErrInvalidKey means a key is not standard padded base64 or is empty.
	ErrInvalidKey = errors.New("sas: invalid key")

	// ErrUnknownKey means a connection string holds a key this package does
	// not know (keys are case-sensitive).
	ErrUnknownKey = errors.New("sas: unknown connection string key")

	// ErrDuplicateKey means a connection string names the same key twice.
	ErrDuplicateKey = errors.New("sas: duplicate connection string key")

	// ErrMissingField means a connection string lacks a key it needs:
	// HostName always; DeviceId when ModuleId or x509=true is present;
	// SharedAccessKey when SharedAccessKeyName is present.
	ErrMissingField = errors.New("sas: missing connection string field")

	// ErrNoCredentials means a connection string has none of
	// SharedAccessKey, SharedAccessSignature and x509=true.
	ErrNoCredentials = errors.New("sas: connection string has no credentials")

	// ErrConflictingCredentials means a connection string has more than one
	// of SharedAccessKey, SharedAccessSignature and x509=true.
	ErrConflictingCredentials = errors.New("sas: connection string has more than one kind of credentials")
)

// ParseError describes why ParseToken or ParseConnectionString rejected its
// input, or NewRenewingSource its configuration. It never quotes the
// input's values, which may be secrets; it names the field and the reason. errors.Is(err, ErrMalformed) holds for every
// ParseError, and errors.Is(err, e.Err) for its specific class.
type ParseError struct {
	What   string // "token", "connection string" or "renewing source"
	Field  string // the field or key involved ("se", "HostName"), or ""
	Reason string // what is wrong, in a few words
	Err    error  // ErrMalformed or a more specific sentinel
}

// Error formats the error as `sas: token field "se": not a decimal number`.
func (e *ParseError) Error() string {
	b := make([]byte, 0, 80)
	b = append(b, "sas: "...)
	b = append(b, e.What...)
	if e.Field != "" {
		b = append(b, " field "...)
		b = appendQuoted(b, e.Field)
	}
	b = append(b, ": "...)
	b = append(b, e.Reason...)
	return string(b)
}

// Unwrap returns the specific sentinel (ErrMalformed, ErrUnknownKey, ...).
func (e *ParseError) Unwrap() error { return e.Err }

// Is reports true for ErrMalformed, which every parse failure is.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

// appendQuoted appends s in double quotes, with bytes outside printable ASCII
// and the quote itself escaped as \xNN, so an error message stays one
// readable line whatever a fuzzer puts in a key name.
func appendQuoted(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return append(b, '"')
}

func tokenError(field, reason string) error {
	return &ParseError{What: "token", Field: field, Reason: reason, Err: ErrMalformed}
}

// configError describes a NewRenewingSource argument it cannot use.
func configError(field, reason string) error {
	return &ParseError{What: "renewing source", Field: field, Reason: reason, Err: ErrMalformed}
}

func connError(field, reason string, err error) error {
	return &ParseError{What: "connection string", Field: field, Reason: reason, Err: err}
}

// plainName reports whether an unrecognised field or key name may be quoted
// in an error: at most 32 ASCII letters, digits, '-' and '_'. Anything else
// (a key pasted without its name, "SharedAccessKey:AAEC…" with a colon for
// the '=') may carry a secret and is left out of the message.
func plainName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
