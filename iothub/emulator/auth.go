package emulator

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/sas"
)

// Rights are the permissions of a shared access policy.
type Rights uint8

// The four IoT Hub permissions.
const (
	RegistryRead Rights = 1 << iota
	RegistryWrite
	ServiceConnect
	DeviceConnect
)

var rightNames = [...]string{"RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"}

// String returns the rights as IoT Hub writes them: "RegistryRead,
// RegistryWrite, ServiceConnect, DeviceConnect".
func (r Rights) String() string {
	var parts []string
	for i, n := range rightNames {
		if r&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, ", ")
}

// MarshalText implements encoding.TextMarshaler with String's form.
func (r Rights) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a comma-separated list of right names.
func (r *Rights) UnmarshalText(b []byte) error {
	var out Rights
	for _, p := range strings.Split(string(b), ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		i := slices.Index(rightNames[:], p)
		if i < 0 {
			return invalid("unknown right " + p)
		}
		out |= 1 << i
	}
	*r = out
	return nil
}

// Policy is a hub-level shared access policy.
type Policy struct {
	KeyName      string `json:"keyName"`
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
	Rights       Rights `json:"rights"`
}

// The policies every hub starts with, as IoT Hub creates them.
var defaultPolicies = []Policy{
	{KeyName: "iothubowner", Rights: RegistryRead | RegistryWrite | ServiceConnect | DeviceConnect},
	{KeyName: "service", Rights: ServiceConnect},
	{KeyName: "device", Rights: DeviceConnect},
	{KeyName: "registryRead", Rights: RegistryRead},
	{KeyName: "registryReadWrite", Rights: RegistryRead | RegistryWrite},
}

// ensurePolicies creates the default policies that are missing.
func (h *Hub) ensurePolicies() error {
	r := h.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	var ops []op
	for _, p := range defaultPolicies {
		if _, ok := r.policies[p.KeyName]; ok {
			continue
		}
		p.PrimaryKey, p.SecondaryKey = newKey(), newKey()
		if k := h.cfg.OwnerKey; k != "" && p.KeyName == "iothubowner" {
			p.PrimaryKey = k
		}
		pp := p
		r.policies[p.KeyName] = &pp
		ops = append(ops, put(bucketPolicies, []byte(p.KeyName), &pp))
	}
	return h.store.write(ops...)
}

// Policies returns the shared access policies ordered by name.
func (h *Hub) Policies() []Policy {
	h.reg.mu.RLock()
	defer h.reg.mu.RUnlock()
	out := make([]Policy, 0, len(h.reg.policies))
	for _, p := range h.reg.policies {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Policy) int { return strings.Compare(a.KeyName, b.KeyName) })
	return out
}

// Policy returns the policy named name, or ErrPolicyNotFound.
func (h *Hub) Policy(name string) (Policy, error) {
	h.reg.mu.RLock()
	defer h.reg.mu.RUnlock()
	p, ok := h.reg.policies[name]
	if !ok {
		return Policy{}, ErrPolicyNotFound
	}
	return *p, nil
}

// SetPolicy creates or replaces a policy; empty keys are generated.
func (h *Hub) SetPolicy(ctx context.Context, p Policy) (Policy, error) {
	if p.KeyName == "" || strings.ContainsAny(p.KeyName, "&=; ") {
		return Policy{}, invalid("policy name must be non-empty, without & = ; or space")
	}
	if p.PrimaryKey == "" {
		p.PrimaryKey = newKey()
	}
	if p.SecondaryKey == "" {
		p.SecondaryKey = newKey()
	}
	for _, k := range []string{p.PrimaryKey, p.SecondaryKey} {
		if _, err := sas.DecodeKey(k); err != nil {
			return Policy{}, invalid("policy keys must be base64")
		}
	}
	h.reg.mu.Lock()
	defer h.reg.mu.Unlock()
	if err := h.store.write(put(bucketPolicies, []byte(p.KeyName), &p)); err != nil {
		return Policy{}, err
	}
	h.reg.policies[p.KeyName] = &p
	return p, nil
}

// DeletePolicy removes a policy, or returns ErrPolicyNotFound.
func (h *Hub) DeletePolicy(ctx context.Context, name string) error {
	h.reg.mu.Lock()
	defer h.reg.mu.Unlock()
	if _, ok := h.reg.policies[name]; !ok {
		return ErrPolicyNotFound
	}
	if err := h.store.write(del(bucketPolicies, []byte(name))); err != nil {
		return err
	}
	delete(h.reg.policies, name)
	return nil
}

// ServiceConnectionString returns the iothubowner connection string:
// HostName={host};SharedAccessKeyName=iothubowner;SharedAccessKey={key}.
func (h *Hub) ServiceConnectionString() string {
	s, _ := h.PolicyConnectionString("iothubowner") // created at start
	return s
}

// PolicyConnectionString returns the connection string of a policy, or
// ErrPolicyNotFound.
func (h *Hub) PolicyConnectionString(name string) (string, error) {
	p, err := h.Policy(name)
	if err != nil {
		return "", err
	}
	return "HostName=" + h.cfg.HostName + ";SharedAccessKeyName=" + p.KeyName + ";SharedAccessKey=" + p.PrimaryKey, nil
}

// authError is an ErrUnauthorized with the reason, for logs and the REST
// layer's message. The reason never holds a secret.
type authError struct{ reason string }

func (e *authError) Error() string        { return "emulator: unauthorized: " + e.reason }
func (e *authError) Is(target error) bool { return target == ErrUnauthorized }

func unauthorized(format string, args ...any) error {
	return &authError{reason: fmt.Sprintf(format, args...)}
}

// VerifyServiceToken checks a service SAS token (the value of an
// Authorization header, "SharedAccessSignature sr=…&sig=…&se=…&skn=…") and
// returns the policy's name and rights. The token must name a policy (skn),
// be signed with one of its keys over the raw sr, not be expired (5 minutes
// of skew allowed), and its decoded sr must name this hub's host (case
// insensitive, any :port or path ignored). Every failure is an error
// matching ErrUnauthorized whose text says why.
func (h *Hub) VerifyServiceToken(token string) (policy string, rights Rights, err error) {
	tok, err := sas.ParseToken(token)
	if err != nil {
		return "", 0, unauthorized("malformed SharedAccessSignature")
	}
	if tok.KeyName == "" {
		return "", 0, unauthorized("token has no skn: a device key grants no service rights")
	}
	p, perr := h.Policy(tok.KeyName)
	if perr != nil {
		return "", 0, unauthorized("unknown shared access policy %q", tok.KeyName)
	}
	if err := verifyWithKeys(tok, h.now(), p.PrimaryKey, p.SecondaryKey); err != nil {
		return "", 0, unauthorized("policy %q: %v", p.KeyName, err)
	}
	if h.now().After(tok.Expiry.Add(h.cfg.SASSkew)) {
		return "", 0, unauthorized("policy %q: %v", p.KeyName, sas.ErrExpired)
	}
	res, rerr := tok.Resource()
	if rerr != nil {
		return "", 0, unauthorized("malformed sr")
	}
	host := res
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	if !strings.EqualFold(host, h.cfg.HostName) {
		return "", 0, unauthorized("token sr %q does not name hub %q", res, h.cfg.HostName)
	}
	return p.KeyName, p.Rights, nil
}

// verifyWithKeys verifies tok's signature and expiry against either base64
// key.
func verifyWithKeys(tok sas.Token, now time.Time, keys ...string) error {
	var last error = sas.ErrSignatureMismatch
	for _, k := range keys {
		key, err := sas.DecodeKey(k)
		if err != nil {
			continue
		}
		err = tok.Verify(key, now)
		if err == nil {
			return nil
		}
		last = err
		if err == sas.ErrExpired || err == sas.ErrMalformed {
			return err
		}
	}
	return last
}

// CACertificate is a CA registered (and verified) for X.509 device
// authentication: a device whose authentication type is
// certificateAuthority connects with a client certificate that chains to
// one of these and whose subject CN is its device id.
type CACertificate struct {
	Name       string `json:"name"`
	PEM        string `json:"pem"`
	Thumbprint string `json:"thumbprint"` // SHA-256, upper-case hex
	cert       *x509.Certificate
}

// AddCACertificate registers a verified CA certificate (PEM) under name,
// replacing one of the same name. ErrInvalidArgument when pemBytes holds
// no certificate or one that is not a CA.
func (h *Hub) AddCACertificate(ctx context.Context, name string, pemBytes []byte) (CACertificate, error) {
	if name == "" {
		return CACertificate{}, invalid("CA certificate name is empty")
	}
	certs, err := parseCertsPEM(pemBytes)
	if err != nil {
		return CACertificate{}, err
	}
	if !certs[0].IsCA {
		return CACertificate{}, invalid("certificate is not a CA")
	}
	_, s256 := Thumbprints(certs[0].Raw)
	ca := &CACertificate{Name: name, PEM: string(pemBytes), Thumbprint: s256, cert: certs[0]}
	r := h.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := h.store.write(put(bucketCAs, []byte(name), ca)); err != nil {
		return CACertificate{}, err
	}
	r.cas[name] = ca
	r.rebuildCAPool()
	return *ca, nil
}

// RemoveCACertificate unregisters a CA; ErrInvalidArgument if none has
// that name.
func (h *Hub) RemoveCACertificate(ctx context.Context, name string) error {
	r := h.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cas[name]; !ok {
		return invalid("no CA certificate named " + name)
	}
	if err := h.store.write(del(bucketCAs, []byte(name))); err != nil {
		return err
	}
	delete(r.cas, name)
	r.rebuildCAPool()
	return nil
}

// CACertificates returns the registered CAs ordered by name.
func (h *Hub) CACertificates() []CACertificate {
	h.reg.mu.RLock()
	defer h.reg.mu.RUnlock()
	out := make([]CACertificate, 0, len(h.reg.cas))
	for _, c := range h.reg.cas {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b CACertificate) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (r *registry) rebuildCAPool() {
	r.caPool = x509.NewCertPool()
	for _, c := range r.cas {
		r.caPool.AddCert(c.cert)
	}
}

// authInfo is the outcome of a successful CONNECT authentication.
type authInfo struct {
	deviceID, moduleID string
	generationID       string
	scope              string    // device, module or hub
	method             string    // sas or x509
	expiry             time.Time // of the SAS token; zero for X.509
	modelID            string
}

// authMethodJSON is the iothub-connection-auth-method property value.
func (a *authInfo) authMethodJSON() string {
	return `{"scope":"` + a.scope + `","type":"` + a.method + `","issuer":"iothub"}`
}

// authenticate checks a CONNECT's identity and credentials (contract §1–2).
// peer holds the TLS client certificates, if any. It returns a reason for
// the log on failure (never a secret).
func (h *Hub) authenticate(clientID, username, password []byte, hasPassword bool, peer []*x509.Certificate) (authInfo, error) {
	u, err := iothub.ParseUsername(username)
	if err != nil {
		return authInfo{}, unauthorized("username: %v", err)
	}
	if !u.MatchesClientID(clientID) {
		return authInfo{}, unauthorized("client id %q does not match the username's identity %q", clientID, u.ClientID())
	}
	a := authInfo{deviceID: u.DeviceID, moduleID: u.ModuleID, modelID: u.ModelID}
	auth, gen, enabled, found := h.reg.lookupIdentity(u.DeviceID, u.ModuleID)
	switch {
	case !found:
		return authInfo{}, unauthorized("identity %q is not registered", u.ClientID())
	case !enabled:
		return authInfo{}, unauthorized("device %q is disabled", u.DeviceID)
	}
	a.generationID = gen
	a.scope = "device"
	if u.ModuleID != "" {
		a.scope = "module"
	}
	if hasPassword && len(password) > 0 {
		tok, err := sas.ParseToken(string(password))
		if err != nil {
			return authInfo{}, unauthorized("password is not a SharedAccessSignature")
		}
		ident := sas.Identity{Host: h.cfg.HostName, DeviceID: u.DeviceID, ModuleID: u.ModuleID}
		var keys []string
		if tok.KeyName != "" {
			h.reg.mu.RLock()
			p, ok := h.reg.policies[tok.KeyName]
			var pc Policy
			if ok {
				pc = *p
			}
			h.reg.mu.RUnlock()
			if !ok {
				return authInfo{}, unauthorized("token names unknown policy %q", tok.KeyName)
			}
			if pc.Rights&DeviceConnect == 0 {
				return authInfo{}, unauthorized("policy %q lacks DeviceConnect", tok.KeyName)
			}
			keys = []string{pc.PrimaryKey, pc.SecondaryKey}
			a.scope = "hub"
		} else {
			if auth.Type != AuthSAS {
				return authInfo{}, unauthorized("identity %q authenticates with %s, not SAS keys", u.ClientID(), auth.Type)
			}
			keys = []string{auth.SymmetricKey.PrimaryKey, auth.SymmetricKey.SecondaryKey}
		}
		if err := verifyFor(tok, ident, h.now(), keys); err != nil {
			if errors.Is(err, sas.ErrResourceMismatch) && !strings.EqualFold(u.Host, h.cfg.HostName) {
				return authInfo{}, unauthorized("SAS token for %q: %v (the username names host %q but this hub is %q: use HostName=%s in the connection string, or start the hub with that host name)",
					u.ClientID(), err, u.Host, h.cfg.HostName, h.cfg.HostName)
			}
			return authInfo{}, unauthorized("SAS token for %q: %v", u.ClientID(), err)
		}
		if h.now().After(tok.Expiry.Add(h.cfg.SASSkew)) {
			return authInfo{}, unauthorized("SAS token for %q: %v", u.ClientID(), sas.ErrExpired)
		}
		a.method = "sas"
		a.expiry = tok.Expiry
		return a, nil
	}
	// X.509.
	if len(peer) == 0 {
		return authInfo{}, unauthorized("no password and no client certificate for %q", u.ClientID())
	}
	leaf := peer[0]
	switch auth.Type {
	case AuthSelfSigned:
		if !thumbprintMatches(auth.X509Thumbprint.PrimaryThumbprint, leaf.Raw) &&
			!thumbprintMatches(auth.X509Thumbprint.SecondaryThumbprint, leaf.Raw) {
			return authInfo{}, unauthorized("client certificate of %q matches no registered thumbprint", u.ClientID())
		}
	case AuthCertificateAuthority:
		want := u.DeviceID
		if u.ModuleID != "" {
			want = u.ModuleID
		}
		if leaf.Subject.CommonName != want {
			return authInfo{}, unauthorized("client certificate CN %q is not %q", leaf.Subject.CommonName, want)
		}
		inter := x509.NewCertPool()
		for _, c := range peer[1:] {
			inter.AddCert(c)
		}
		h.reg.mu.RLock()
		roots := h.reg.caPool
		h.reg.mu.RUnlock()
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
			CurrentTime: h.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return authInfo{}, unauthorized("client certificate of %q does not chain to a registered CA: %v", u.ClientID(), err)
		}
	default:
		return authInfo{}, unauthorized("identity %q has no X.509 authentication (type %s)", u.ClientID(), auth.Type)
	}
	a.method = "x509"
	return a, nil
}

// verifyFor verifies tok for an identity with any of keys: the scope may
// name the ids escaped (C#, edgeHub) or raw (Node), see
// sas.Token.VerifyIdentity.
func verifyFor(tok sas.Token, ident sas.Identity, now time.Time, keys []string) error {
	var last error = sas.ErrSignatureMismatch
	for _, k := range keys {
		key, err := sas.DecodeKey(k)
		if err != nil {
			continue
		}
		err = tok.VerifyIdentity(ident, key, now)
		if err == nil {
			return nil
		}
		last = err
		if err != sas.ErrSignatureMismatch {
			return err
		}
	}
	return last
}
