package sas

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// redacted stands in for secrets in String, GoString and LogValue output.
// It is not base64, so a redacted string pasted back never parses as a key.
const redacted = "<redacted>"

// ConnectionString is an IoT Hub connection string such as
//
//	HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey=AAEC…=
//
// The secrets (SharedAccessKey, SharedAccessSignature) are kept in
// unexported pointer fields and read through methods. So %v, %+v, %#v and
// %s (String, Format, GoString) and log/slog (LogValue) show a redacted
// form; and even a ConnectionString nested in another struct's unexported
// field, which fmt prints by reflection without calling these methods,
// shows the secret pointers as addresses, never their contents. FullString
// is the one way to get the secrets back as text. Compare values with
// Equal, not ==.
type ConnectionString struct {
	HostName            string // IoT Hub host, used in the MQTT username and in sr
	DeviceID            string // DeviceId; "" in a hub-level (policy) string
	ModuleID            string // ModuleId; needs DeviceID
	SharedAccessKeyName string // policy name of a policy key; needs a key
	GatewayHostName     string // where to open the socket (an Edge gateway), if not HostName
	X509                bool   // x509=true: authenticate with a client certificate

	key *string // SharedAccessKey, base64; nil if absent
	sig *string // SharedAccessSignature, a full token; nil if absent
}

// SharedAccessKey returns the base64 key, or "" if there is none.
func (c ConnectionString) SharedAccessKey() string {
	if c.key == nil {
		return ""
	}
	return *c.key
}

// SharedAccessSignature returns the token text, or "" if there is none.
func (c ConnectionString) SharedAccessSignature() string {
	if c.sig == nil {
		return ""
	}
	return *c.sig
}

// WithSharedAccessKey returns a copy of c holding the base64 key k (or no key,
// if k is ""). It does not validate; ParseConnectionString(c.FullString())
// does.
func (c ConnectionString) WithSharedAccessKey(k string) ConnectionString {
	c.key = secret(k)
	return c
}

// WithSharedAccessSignature returns a copy of c holding the token text tok
// (or none, if tok is "").
func (c ConnectionString) WithSharedAccessSignature(tok string) ConnectionString {
	c.sig = secret(tok)
	return c
}

func secret(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Equal reports whether c and d hold the same fields and secrets.
func (c ConnectionString) Equal(d ConnectionString) bool {
	return c.HostName == d.HostName && c.DeviceID == d.DeviceID && c.ModuleID == d.ModuleID &&
		c.SharedAccessKeyName == d.SharedAccessKeyName && c.GatewayHostName == d.GatewayHostName &&
		c.X509 == d.X509 && c.SharedAccessKey() == d.SharedAccessKey() &&
		c.SharedAccessSignature() == d.SharedAccessSignature()
}

// Key returns the decoded SharedAccessKey, or ErrInvalidKey. Allocates.
func (c ConnectionString) Key() ([]byte, error) {
	return DecodeKey(c.SharedAccessKey())
}

// Resource returns the resource URI tokens for this identity are signed for:
// ModuleResource or DeviceResource on HostName (never GatewayHostName), or
// just HostName for a hub-level string without DeviceId. Allocates.
func (c ConnectionString) Resource() string {
	switch {
	case c.DeviceID == "":
		return c.HostName
	case c.ModuleID != "":
		return ModuleResource(c.HostName, c.DeviceID, c.ModuleID)
	default:
		return DeviceResource(c.HostName, c.DeviceID)
	}
}

// NewToken signs a token for c.Resource() with c's key and key name,
// expiring at expiry. It returns ErrInvalidKey if c has no usable key.
func (c ConnectionString) NewToken(expiry time.Time) (Token, error) {
	return NewTokenBase64(c.Resource(), c.SharedAccessKey(), c.SharedAccessKeyName, expiry)
}

// The keys of a connection string, in the order String and FullString
// write them (the Azure portal's order).
const (
	keyHostName              = "HostName"
	keyDeviceID              = "DeviceId"
	keyModuleID              = "ModuleId"
	keySharedAccessKeyName   = "SharedAccessKeyName"
	keySharedAccessKey       = "SharedAccessKey"
	keySharedAccessSignature = "SharedAccessSignature"
	keyGatewayHostName       = "GatewayHostName"
	keyX509                  = "x509"
)

// ParseConnectionString parses ';'-separated Key=Value pairs, each split on
// its first '=' (base64 values end in '='). Surrounding white space of the
// whole string and one trailing ';' are ignored; nothing else is (a known
// key with white space around it is an ErrUnknownKey that says so). Keys are
// case-sensitive: HostName, DeviceId, ModuleId, SharedAccessKey,
// SharedAccessKeyName, SharedAccessSignature, GatewayHostName and x509
// (whose value must be "true", any case). Every error is a *ParseError
// that matches ErrMalformed and one of: ErrMalformed itself (a pair without
// '=', an empty value, a key that is not base64, a SharedAccessSignature
// that ParseToken rejects, x509 not "true"), ErrUnknownKey,
// ErrDuplicateKey, ErrMissingField (no HostName; ModuleId or x509 without
// DeviceId; SharedAccessKeyName without SharedAccessKey), ErrNoCredentials
// or ErrConflictingCredentials (not exactly one of key, token, x509). The
// errors name keys, never values. Allocates.
func ParseConnectionString(s string) (ConnectionString, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, ";")
	var c ConnectionString
	var seen [8]bool
	for more := true; more; {
		var pair string
		pair, s, more = strings.Cut(s, ";")
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			return ConnectionString{}, connError("", "a part has no '='", ErrMalformed)
		}
		idx := connKeyIndex(name)
		if idx < 0 {
			if trimmed := strings.TrimSpace(name); trimmed != name && connKeyIndex(trimmed) >= 0 {
				return ConnectionString{}, connError(trimmed, "unknown key: white space around the key name (a space after ';'?)", ErrUnknownKey)
			}
			if !plainName(name) {
				return ConnectionString{}, connError("", "unknown key (not shown: it may hold a secret)", ErrUnknownKey)
			}
			return ConnectionString{}, connError(name, "unknown key", ErrUnknownKey)
		}
		if seen[idx] {
			return ConnectionString{}, connError(name, "repeated", ErrDuplicateKey)
		}
		seen[idx] = true
		if value == "" {
			return ConnectionString{}, connError(name, "empty value", ErrMalformed)
		}
		switch name {
		case keyHostName:
			c.HostName = value
		case keyDeviceID:
			c.DeviceID = value
		case keyModuleID:
			c.ModuleID = value
		case keySharedAccessKeyName:
			c.SharedAccessKeyName = value
		case keySharedAccessKey:
			if _, err := DecodeKey(value); err != nil {
				return ConnectionString{}, connError(name, "not base64", ErrMalformed)
			}
			c.key = secret(value)
		case keySharedAccessSignature:
			if _, err := ParseToken(value); err != nil {
				return ConnectionString{}, connError(name, "not a valid token", ErrMalformed)
			}
			c.sig = secret(value)
		case keyGatewayHostName:
			c.GatewayHostName = value
		case keyX509:
			if !strings.EqualFold(value, "true") {
				return ConnectionString{}, connError(name, "value is not \"true\"", ErrMalformed)
			}
			c.X509 = true
		}
	}
	if err := c.validate(); err != nil {
		return ConnectionString{}, err
	}
	return c, nil
}

var connKeys = [8]string{
	keyHostName, keyDeviceID, keyModuleID, keySharedAccessKeyName,
	keySharedAccessKey, keySharedAccessSignature, keyGatewayHostName, keyX509,
}

func connKeyIndex(name string) int {
	for i, k := range connKeys {
		if name == k {
			return i
		}
	}
	return -1
}

func (c ConnectionString) validate() error {
	if c.HostName == "" {
		return connError(keyHostName, "missing", ErrMissingField)
	}
	if c.ModuleID != "" && c.DeviceID == "" {
		return connError(keyDeviceID, "missing (ModuleId needs it)", ErrMissingField)
	}
	if c.X509 && c.DeviceID == "" {
		return connError(keyDeviceID, "missing (x509 needs it)", ErrMissingField)
	}
	if c.SharedAccessKeyName != "" && c.key == nil {
		return connError(keySharedAccessKey, "missing (SharedAccessKeyName needs it)", ErrMissingField)
	}
	n := 0
	for _, has := range [3]bool{c.key != nil, c.sig != nil, c.X509} {
		if has {
			n++
		}
	}
	switch {
	case n == 0:
		return connError("", "needs one of SharedAccessKey, SharedAccessSignature, x509=true", ErrNoCredentials)
	case n > 1:
		return connError("", "has more than one of SharedAccessKey, SharedAccessSignature, x509=true", ErrConflictingCredentials)
	}
	return nil
}

// FullString returns the connection string with its secrets, keys in the
// portal's order (HostName, DeviceId, ModuleId, SharedAccessKeyName,
// SharedAccessKey, SharedAccessSignature, GatewayHostName, x509). It is
// the only method that reveals secrets; never log its result.
func (c ConnectionString) FullString() string {
	return c.format(false)
}

// String returns the connection string with the values of SharedAccessKey
// and SharedAccessSignature replaced by "<redacted>". Safe to log.
func (c ConnectionString) String() string {
	return c.format(true)
}

func (c ConnectionString) format(redact bool) string {
	var b strings.Builder
	add := func(k, v string) {
		if v == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	hide := func(v string) string {
		if redact && v != "" {
			return redacted
		}
		return v
	}
	add(keyHostName, c.HostName)
	add(keyDeviceID, c.DeviceID)
	add(keyModuleID, c.ModuleID)
	add(keySharedAccessKeyName, c.SharedAccessKeyName)
	add(keySharedAccessKey, hide(c.SharedAccessKey()))
	add(keySharedAccessSignature, hide(c.SharedAccessSignature()))
	add(keyGatewayHostName, c.GatewayHostName)
	if c.X509 {
		add(keyX509, "true")
	}
	return b.String()
}

// GoString returns Go syntax for c with the secrets redacted (for %#v).
func (c ConnectionString) GoString() string {
	hide := func(v string) string {
		if v == "" {
			return `""`
		}
		return strconv.Quote(redacted)
	}
	return fmt.Sprintf("sas.ConnectionString{HostName:%q, DeviceID:%q, ModuleID:%q, SharedAccessKeyName:%q, SharedAccessKey:%s, SharedAccessSignature:%s, GatewayHostName:%q, X509:%t}",
		c.HostName, c.DeviceID, c.ModuleID, c.SharedAccessKeyName,
		hide(c.SharedAccessKey()), hide(c.SharedAccessSignature()), c.GatewayHostName, c.X509)
}

// Format implements fmt.Formatter so that every verb shows the redacted
// form: %v, %+v and %s print String, %#v prints GoString, %q quotes String;
// other verbs print %!verb(sas.ConnectionString=String).
func (c ConnectionString) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, c.GoString())
			return
		}
		fmt.Fprint(f, c.String())
	case 's':
		fmt.Fprint(f, c.String())
	case 'q':
		fmt.Fprint(f, strconv.Quote(c.String()))
	default:
		fmt.Fprintf(f, "%%!%c(sas.ConnectionString=%s)", verb, c.String())
	}
}

// LogValue implements slog.LogValuer: a group of the non-empty fields with
// the secrets redacted.
func (c ConnectionString) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 8)
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add(keyHostName, c.HostName)
	add(keyDeviceID, c.DeviceID)
	add(keyModuleID, c.ModuleID)
	add(keySharedAccessKeyName, c.SharedAccessKeyName)
	if c.key != nil {
		add(keySharedAccessKey, redacted)
	}
	if c.sig != nil {
		add(keySharedAccessSignature, redacted)
	}
	add(keyGatewayHostName, c.GatewayHostName)
	if c.X509 {
		attrs = append(attrs, slog.Bool(keyX509, true))
	}
	return slog.GroupValue(attrs...)
}
