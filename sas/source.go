package sas

import (
	"context"
	"errors"
	"sync"
	"time"
)

// TokenSource supplies the token for the next CONNECT. An MQTT client calls
// Token each time it (re)connects and sends the result as the password.
// Implementations are safe for concurrent use.
type TokenSource interface {
	Token(ctx context.Context) (Token, error)
}

// TokenSourceFunc adapts a function to TokenSource.
type TokenSourceFunc func(ctx context.Context) (Token, error)

// Token calls f(ctx).
func (f TokenSourceFunc) Token(ctx context.Context) (Token, error) { return f(ctx) }

// Defaults of RenewConfig.
const (
	// DefaultTTL is the life of a minted token: 60 minutes, as the C SDK.
	DefaultTTL = time.Hour
	// DefaultRenewFraction renews a token after 80% of its TTL, as the C
	// SDK, leaving 12 minutes of a 60-minute token to reconnect with it.
	DefaultRenewFraction = 0.8
)

// RenewConfig configures NewRenewingSource. The zero value means the
// defaults.
type RenewConfig struct {
	// TTL is how long each minted token is valid; 0 means DefaultTTL.
	// Values under one second are raised to one second.
	TTL time.Duration
	// RenewFraction is the share of TTL after which Token mints a new
	// token instead of returning the cached one; 0 means
	// DefaultRenewFraction. It must be in (0, 1].
	RenewFraction float64
	// Now is the clock; nil means time.Now. Tests inject a fake.
	Now func() time.Time
}

// RenewingSource mints tokens from a key and caches them: Token returns the
// cached token until RenewFraction of its TTL has passed (or the clock has
// gone backwards past its issue time), then signs a new one. It is safe for
// concurrent use; concurrent callers share one token. The key is held behind
// a pointer so that printing a RenewingSource with fmt shows an address, not
// the key.
type RenewingSource struct {
	resource string
	keyName  string
	key      *[]byte
	ttl      time.Duration
	renew    time.Duration // ttl * fraction
	now      func() time.Time

	mu     sync.Mutex
	cur    Token
	issued time.Time // when cur was minted; zero before the first
}

// NewRenewingSource returns a source of tokens for resource (a resource URI
// as DeviceResource returns it) signed with the raw key under keyName ("" for
// a device or module key). It copies key. It returns ErrInvalidKey for an
// empty key and a *ParseError matching ErrMalformed, naming the field, for
// a RenewFraction outside (0, 1], a negative TTL or an empty resource.
func NewRenewingSource(resource string, key []byte, keyName string, cfg RenewConfig) (*RenewingSource, error) {
	if len(key) == 0 {
		return nil, ErrInvalidKey
	}
	if resource == "" {
		return nil, configError("resource", "empty")
	}
	ttl, frac := cfg.TTL, cfg.RenewFraction
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < 0 {
		return nil, configError("TTL", "negative")
	}
	ttl = max(ttl, time.Second)
	if frac == 0 {
		frac = DefaultRenewFraction
	}
	if !(frac > 0 && frac <= 1) {
		return nil, configError("RenewFraction", "not in (0, 1]")
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	k := append([]byte(nil), key...)
	return &RenewingSource{
		resource: resource,
		keyName:  keyName,
		key:      &k,
		ttl:      ttl,
		renew:    time.Duration(float64(ttl) * frac),
		now:      now,
	}, nil
}

// Token returns the cached token, or mints a new one when none is cached or
// the cached one is past its renewal point. It fails only if ctx is done.
func (s *RenewingSource) Token(ctx context.Context) (Token, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.issued.IsZero() || now.Before(s.issued) || now.Sub(s.issued) >= s.renew {
		s.cur = NewToken(s.resource, *s.key, s.keyName, now.Add(s.ttl))
		s.issued = now
	}
	return s.cur, nil
}

// staticSource returns one fixed token until it expires.
type staticSource struct {
	tok Token
	now func() time.Time
}

func (s staticSource) Token(ctx context.Context) (Token, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, err
	}
	if !s.now().Before(s.tok.Expiry) {
		return Token{}, ErrExpired
	}
	return s.tok, nil
}

// StaticSource returns a TokenSource that always returns tok, or ErrExpired
// once the clock now (nil means time.Now) reaches tok.Expiry: a token given
// in a connection string cannot be renewed.
func StaticSource(tok Token, now func() time.Time) TokenSource {
	if now == nil {
		now = time.Now
	}
	return staticSource{tok: tok, now: now}
}

// ErrNoSAS is returned by ConnectionString.TokenSource for an x509=true
// connection string, which authenticates with a certificate, not a token.
var ErrNoSAS = errors.New("sas: connection string uses X.509, not SAS")

// TokenSource returns the source of MQTT passwords for c: a RenewingSource
// over c.Resource() for a SharedAccessKey, a StaticSource for a
// SharedAccessSignature (cfg.Now is its clock), ErrNoSAS for x509=true. A
// c that ParseConnectionString did not produce may also fail with
// ErrInvalidKey, ErrMalformed or ErrNoCredentials.
func (c ConnectionString) TokenSource(cfg RenewConfig) (TokenSource, error) {
	switch {
	case c.key != nil:
		k, err := c.Key()
		if err != nil {
			return nil, err
		}
		return NewRenewingSource(c.Resource(), k, c.SharedAccessKeyName, cfg)
	case c.sig != nil:
		tok, err := ParseToken(*c.sig)
		if err != nil {
			return nil, err
		}
		return StaticSource(tok, cfg.Now), nil
	case c.X509:
		return nil, ErrNoSAS
	}
	return nil, ErrNoCredentials
}
