package sas

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestRenewingSource(t *testing.T) {
	key := mustKey(t, v1Key)
	clock := newFakeClock(time.Unix(1700000000, 0))
	res := DeviceResource(v1Host, "device1")
	src, err := NewRenewingSource(res, key, "", RenewConfig{TTL: time.Hour, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1700000000+3600, 0).UTC(); first.Expiry != want {
		t.Errorf("Expiry = %v, want %v", first.Expiry, want)
	}
	if err := first.VerifyFor(res, key, clock.Now()); err != nil {
		t.Errorf("minted token does not verify: %v", err)
	}

	clock.Advance(48*time.Minute - time.Second) // just under 80% of an hour
	if tok, _ := src.Token(ctx); tok != first {
		t.Errorf("renewed at 79.97%% of TTL: %v", tok.Expiry)
	}
	clock.Advance(time.Second) // exactly 80%
	second, _ := src.Token(ctx)
	if second == first {
		t.Fatal("not renewed at 80% of TTL")
	}
	if want := clock.Now().Add(time.Hour).Truncate(time.Second).UTC(); second.Expiry != want {
		t.Errorf("renewed Expiry = %v, want %v", second.Expiry, want)
	}
	if tok, _ := src.Token(ctx); tok != second {
		t.Error("renewed again without the clock moving")
	}

	clock.Advance(-time.Minute) // the clock stepped back past the issue time
	if tok, _ := src.Token(ctx); tok == second {
		t.Error("kept a token minted in the future")
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := src.Token(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Token(cancelled ctx) = %v", err)
	}
}

func TestRenewingSourceFraction(t *testing.T) {
	clock := newFakeClock(time.Unix(1800000000, 0))
	src, err := NewRenewingSource("h", []byte("k"), "p", RenewConfig{TTL: 10 * time.Minute, RenewFraction: 0.5, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := src.Token(context.Background())
	if a.KeyName != "p" {
		t.Errorf("KeyName = %q", a.KeyName)
	}
	clock.Advance(5*time.Minute - time.Nanosecond)
	if b, _ := src.Token(context.Background()); b != a {
		t.Error("renewed before half the TTL")
	}
	clock.Advance(time.Nanosecond)
	if b, _ := src.Token(context.Background()); b == a {
		t.Error("not renewed at half the TTL")
	}
}

// TestRenewingSourceConfigErrors checks each bad config gets a typed error
// of one line naming what is wrong (errors.Join used to make two lines).
func TestRenewingSourceConfigErrors(t *testing.T) {
	for name, c := range map[string]struct {
		res  string
		key  []byte
		cfg  RenewConfig
		want error
		text string
	}{
		"no-key":       {"h", nil, RenewConfig{}, ErrInvalidKey, "sas: invalid key"},
		"no-resource":  {"", []byte("k"), RenewConfig{}, ErrMalformed, `sas: renewing source field "resource": empty`},
		"negative-ttl": {"h", []byte("k"), RenewConfig{TTL: -time.Second}, ErrMalformed, `sas: renewing source field "TTL": negative`},
		"fraction>1":   {"h", []byte("k"), RenewConfig{RenewFraction: 1.5}, ErrMalformed, `sas: renewing source field "RenewFraction": not in (0, 1]`},
		"fraction<0":   {"h", []byte("k"), RenewConfig{RenewFraction: -0.1}, ErrMalformed, `sas: renewing source field "RenewFraction": not in (0, 1]`},
	} {
		src, err := NewRenewingSource(c.res, c.key, "", c.cfg)
		if err == nil {
			t.Errorf("%s: accepted: %v", name, src)
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v is not %v", name, err, c.want)
		}
		if err.Error() != c.text {
			t.Errorf("%s: error text %q, want %q", name, err.Error(), c.text)
		}
	}
}

// TestRenewingSourceConcurrent has many goroutines take tokens while the
// clock moves; run with -race. Every token returned must verify at the time
// it was taken.
func TestRenewingSourceConcurrent(t *testing.T) {
	key := []byte("0123456789abcdef")
	clock := newFakeClock(time.Unix(1700000000, 0))
	src, err := NewRenewingSource("h/devices/d", key, "", RenewConfig{TTL: time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if g == 0 {
					clock.Advance(time.Second)
				}
				now := clock.Now()
				tok, err := src.Token(context.Background())
				if err == nil {
					err = tok.Verify(key, now)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRenewingSourceHidesKey(t *testing.T) {
	src, err := NewRenewingSource("h", []byte("supersecretkeybytes"), "", RenewConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		if out := fmt.Sprintf(verb, src); strings.Contains(out, "supersecret") || strings.Contains(out, fmt.Sprintf("%x", "supersecret")) {
			t.Errorf("%s shows the key: %s", verb, out)
		}
	}
}

func TestStaticSource(t *testing.T) {
	tok, err := ParseToken(v1Token)
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(v1Expiry.Add(-time.Second))
	src := StaticSource(tok, clock.Now)
	if got, err := src.Token(context.Background()); err != nil || got != tok {
		t.Errorf("Token = %v, %v", got, err)
	}
	clock.Advance(time.Second)
	if _, err := src.Token(context.Background()); !errors.Is(err, ErrExpired) {
		t.Errorf("Token at expiry = %v, want ErrExpired", err)
	}
}

func TestConnectionStringTokenSource(t *testing.T) {
	clock := newFakeClock(v1Expiry.Add(-time.Hour))
	cfg := RenewConfig{Now: clock.Now}

	cs, _ := ParseConnectionString("HostName=myhub.azure-devices.net;DeviceId=device1;SharedAccessKey=" + v1Key)
	src, err := cs.TokenSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Minted at se-1h with the default 1h TTL: exactly vector V1.
	if tok.String() != v1Token {
		t.Errorf("token = %q, want V1 %q", tok, v1Token)
	}

	cs, _ = ParseConnectionString("HostName=myhub.azure-devices.net;DeviceId=device1;SharedAccessSignature=" + v1Token)
	src, err = cs.TokenSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := src.Token(context.Background()); err != nil || got.String() != v1Token {
		t.Errorf("static token = %v, %v", got, err)
	}

	cs, _ = ParseConnectionString("HostName=h;DeviceId=d;x509=true")
	if _, err := cs.TokenSource(cfg); !errors.Is(err, ErrNoSAS) {
		t.Errorf("x509 TokenSource error = %v, want ErrNoSAS", err)
	}
	if _, err := (ConnectionString{HostName: "h"}).TokenSource(cfg); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("empty TokenSource error = %v, want ErrNoCredentials", err)
	}
	var f TokenSource = TokenSourceFunc(func(context.Context) (Token, error) { return tok, nil })
	if got, _ := f.Token(context.Background()); got != tok {
		t.Error("TokenSourceFunc")
	}
}
