package device

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/sas"
)

// renewJitter is the share of a token's life by which a renewal may come
// earlier than RenewFraction, so that devices started together do not all
// reconnect in the same second.
const renewJitter = 0.05

// tokens supplies the password of each CONNECT and decides when the token
// must be renewed. It is safe for concurrent use.
type tokens struct {
	clock    iothub.Clock
	ttl      time.Duration
	fraction float64

	resource string
	keyName  string
	key      []byte          // mint from this when set
	src      sas.TokenSource // else ask this (the static token of a connection string, or the user's)
	static   bool            // src is a connection string's token: it cannot be renewed

	mu      sync.Mutex
	cur     sas.Token
	issued  time.Time // when cur was minted or obtained
	renewAt time.Time // when cur should be replaced
	force   bool      // mint or fetch a new token at the next call
	same    bool      // the last renewal got the same token back from src
}

func newTokens(cfg *Config, id *identity) *tokens {
	t := &tokens{clock: cfg.Clock, ttl: cfg.TokenTTL, fraction: cfg.RenewFraction, keyName: id.keyName}
	if id.moduleID != "" {
		t.resource = sas.ModuleResource(id.host, id.deviceID, id.moduleID)
	} else {
		t.resource = sas.DeviceResource(id.host, id.deviceID)
	}
	switch {
	case id.key != nil:
		t.key = id.key
	case id.static != nil:
		t.src, t.static = sas.StaticSource(*id.static, cfg.Clock.Now), true
	default:
		t.src = cfg.TokenSource
	}
	return t
}

// renewPoint returns when a token issued at issued and expiring at expiry
// should be renewed: after fraction of its life, minus up to renewJitter of
// it at random.
func renewPoint(issued, expiry time.Time, fraction float64) time.Time {
	life := expiry.Sub(issued)
	if life <= 0 {
		return issued
	}
	d := time.Duration(float64(life) * fraction)
	if j := time.Duration(float64(life) * renewJitter); j > 0 && d > j {
		d -= rand.N(j)
	}
	return issued.Add(d)
}

// token returns the token for the next CONNECT: the current one, or a new
// one once the current is due for renewal or a renewal was forced.
func (t *tokens) token(ctx context.Context) (sas.Token, error) {
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.issued.IsZero() && !t.force && now.Before(t.renewAt) && !now.Before(t.issued) {
		return t.cur, nil
	}
	var tok sas.Token
	if t.key != nil {
		tok = sas.NewToken(t.resource, t.key, t.keyName, now.Add(t.ttl))
	} else {
		var err error
		tok, err = t.src.Token(ctx)
		if err != nil {
			if t.static && errors.Is(err, sas.ErrExpired) {
				return sas.Token{}, ErrTokenExpired
			}
			return sas.Token{}, err
		}
	}
	// A TokenSource that hands back the token it gave last time cannot be
	// renewed early: do not schedule renewals for it (the hub closes the
	// connection at expiry and the reconnect asks the source again).
	t.same = t.force && !t.issued.IsZero() && tok.Expiry.Equal(t.cur.Expiry)
	t.cur, t.issued, t.force = tok, now, false
	t.renewAt = renewPoint(now, tok.Expiry, t.fraction)
	return tok, nil
}

// password appends the token text for CONNECT.
func (t *tokens) password(ctx context.Context) ([]byte, error) {
	tok, err := t.token(ctx)
	if err != nil {
		return nil, err
	}
	return tok.AppendText(nil)
}

// renewal returns when the current token should be replaced, and whether
// renewing makes sense (a connection string's fixed token cannot be).
func (t *tokens) renewal() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.issued.IsZero() || t.static || t.same {
		return time.Time{}, false
	}
	return t.renewAt, true
}

// renew makes the next call mint or fetch a new token.
func (t *tokens) renew() {
	t.mu.Lock()
	t.force = true
	t.mu.Unlock()
}
