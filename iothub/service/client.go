package service

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hubwire/hubwire/sas"
)

// DefaultAPIVersion is the api-version the client sends, as the Node, C#
// and Python service SDKs do.
const DefaultAPIVersion = "2021-04-12"

// DefaultTokenTTL is the life of the SAS token signed for each request.
const DefaultTokenTTL = time.Hour

// maxReplyBytes bounds how much of a reply body the client reads (a query
// page of large twins fits many times over).
const maxReplyBytes = 64 << 20

// Options configures a Client. The zero value talks to
// https://{HostName} with the system's root certificates.
type Options struct {
	// Endpoint is the base URL of the service API, e.g.
	// "https://127.0.0.1:44321" for an emulator on a test port. Empty means
	// "https://" + the connection string's HostName. The HostName stays
	// the token's resource either way.
	Endpoint string

	// HTTPClient sends the requests. Nil means a client of its own whose
	// transport trusts RootCAs; a caller's client is used as given (RootCAs
	// is then ignored) and must not follow redirects across hosts with the
	// Authorization header.
	HTTPClient *http.Client

	// RootCAs are the certificate authorities the client's own transport
	// trusts; nil means the system pool. An emulator's CA goes here.
	RootCAs *x509.CertPool

	// APIVersion is sent as ?api-version=; empty means DefaultAPIVersion.
	APIVersion string

	// TokenTTL is how long each request's SAS token is valid; 0 means
	// DefaultTokenTTL. A fresh token is signed for every request.
	TokenTTL time.Duration

	// UserAgent is sent as User-Agent; empty means "hubwire-service".
	UserAgent string

	// Now is the clock tokens are signed with; nil means time.Now.
	Now func() time.Time
}

// Client calls IoT Hub's service REST API (and the emulator's own
// endpoints) with a shared access policy's key. It is safe for concurrent
// use by multiple goroutines.
type Client struct {
	host     string // HostName: the tokens' resource
	endpoint string // base URL without a trailing slash
	policy   string
	key      []byte // nil with a fixed token
	token    sas.Token
	hasToken bool
	http     *http.Client
	apiQuery string // "api-version=…"
	ttl      time.Duration
	ua       string
	now      func() time.Time
}

// New returns a client for the service connection string cs, e.g.
//
//	HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=…
//
// It needs a policy (SharedAccessKeyName with SharedAccessKey) or a
// hub-scoped SharedAccessSignature; a device or module connection string is
// refused. Errors match ErrConfig. New does no I/O.
func New(cs string, opts *Options) (*Client, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	c, err := sas.ParseConnectionString(cs)
	if err != nil {
		return nil, configError(err, "connection string")
	}
	if c.DeviceID != "" {
		return nil, configError(nil, "a device or module connection string has no service rights; use a shared access policy's")
	}
	cl := &Client{
		host:     c.HostName,
		policy:   c.SharedAccessKeyName,
		endpoint: strings.TrimRight(o.Endpoint, "/"),
		ttl:      o.TokenTTL,
		ua:       o.UserAgent,
		now:      o.Now,
		http:     o.HTTPClient,
	}
	switch {
	case c.SharedAccessKey() != "":
		if c.SharedAccessKeyName == "" {
			return nil, configError(nil, "SharedAccessKey without SharedAccessKeyName is not a policy key")
		}
		k, err := c.Key()
		if err != nil {
			return nil, configError(err, "SharedAccessKey")
		}
		cl.key = k
	case c.SharedAccessSignature() != "":
		t, err := sas.ParseToken(c.SharedAccessSignature())
		if err != nil {
			return nil, configError(err, "SharedAccessSignature")
		}
		cl.token, cl.hasToken = t, true
	default:
		return nil, configError(nil, "the connection string has no SharedAccessKey or SharedAccessSignature")
	}
	if cl.endpoint == "" {
		cl.endpoint = "https://" + c.HostName
	}
	u, err := url.Parse(cl.endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, configError(nil, "Endpoint must be an http(s) URL with a host and no path")
	}
	if cl.ttl == 0 {
		cl.ttl = DefaultTokenTTL
	}
	if cl.ttl < 0 {
		return nil, configError(nil, "negative TokenTTL")
	}
	if cl.ua == "" {
		cl.ua = "hubwire-service"
	}
	if cl.now == nil {
		cl.now = time.Now
	}
	v := o.APIVersion
	if v == "" {
		v = DefaultAPIVersion
	}
	cl.apiQuery = "api-version=" + url.QueryEscape(v)
	if cl.http == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
		cl.http = &http.Client{Transport: t}
	}
	return cl, nil
}

// HostName returns the hub's host name from the connection string.
func (c *Client) HostName() string { return c.host }

// authorization signs a fresh token for the hub.
func (c *Client) authorization() (string, error) {
	if c.hasToken {
		if !c.token.Expiry.After(c.now()) {
			return "", &Error{Op: "sign", StatusCode: http.StatusUnauthorized, Code: "IotHubUnauthorizedAccess",
				Message: "the connection string's SharedAccessSignature has expired"}
		}
		return c.token.String(), nil
	}
	return sas.NewToken(c.host, c.key, c.policy, c.now().Add(c.ttl)).String(), nil
}

// escape percent-encodes an id for a path segment: everything but
// ASCII letters, digits and - _ . ~ becomes %XX, as encodeURIComponent
// (which the Node SDK uses) does for the characters ids may hold.
func escape(id string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.' || ch == '~' {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[ch>>4])
		b.WriteByte(hex[ch&15])
	}
	return b.String()
}

// request is one call to the API.
type request struct {
	op      string
	method  string
	path    string     // escaped path, e.g. "/devices/d%231"
	query   url.Values // besides api-version
	body    any        // JSON-encoded unless it is []byte or nil
	raw     bool       // body is []byte sent as application/octet-stream
	header  http.Header
	accept  string
	ifMatch string
}

// send performs r and returns the response with a 2xx status; any other
// status becomes an *Error (the body read and closed). The caller closes
// the returned body.
func (c *Client) send(ctx context.Context, r *request) (*http.Response, error) {
	if ctx == nil {
		return nil, errors.New("service: nil context")
	}
	u := c.endpoint + r.path + "?" + c.apiQuery
	if len(r.query) > 0 {
		u += "&" + r.query.Encode()
	}
	var body io.Reader
	ctype := "application/json; charset=utf-8"
	switch b := r.body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
		if r.raw {
			ctype = "application/octet-stream"
		}
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("service: %s: encoding the request: %w", r.op, err)
		}
		body = bytes.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("service: %s: %w", r.op, err)
	}
	auth, err := c.authorization()
	if err != nil {
		return nil, err
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set("Request-Id", newRequestID())
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if r.ifMatch != "" {
		req.Header.Set("If-Match", quoteETag(r.ifMatch))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("service: %s: %w", r.op, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return nil, parseError(r.op, resp, b)
}

// do performs r and decodes a JSON reply into out (unless out is nil). It
// returns the response headers.
func (c *Client) do(ctx context.Context, r *request, out any) (http.Header, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxReplyBytes))
		return resp.Header, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("service: %s: reading the reply: %w", r.op, err)
	}
	if len(b) > maxReplyBytes {
		return nil, fmt.Errorf("service: %s: reply over %d bytes", r.op, maxReplyBytes)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("service: %s: decoding the reply: %w", r.op, err)
	}
	return resp.Header, nil
}

// quoteETag puts an etag in the quotes If-Match wants; "*" stays bare and an
// already quoted value is kept.
func quoteETag(e string) string {
	if e == "*" || (len(e) >= 2 && e[0] == '"' && e[len(e)-1] == '"') {
		return e
	}
	return `"` + e + `"`
}

// newRequestID returns a random UUID (version 4) for the Request-Id header.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand does not fail
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, v := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[v>>4], hex[v&15])
	}
	return string(out)
}

// decodeBounded decodes resp's JSON body into out, reading at most
// maxReplyBytes.
func decodeBounded(resp *http.Response, out any) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes+1))
	if err != nil {
		return err
	}
	if len(b) > maxReplyBytes {
		return fmt.Errorf("reply over %d bytes", maxReplyBytes)
	}
	return json.Unmarshal(b, out)
}
