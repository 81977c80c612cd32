// Package testcert generates throw-away X.509 material for tests: a CA,
// server certificates valid for the loopback names, and client certificates
// whose subject common name is a device id.
//
// Everything is created in memory, signed with ECDSA P-256 by default (fast)
// or RSA-2048 on request (IoT Hub's server certificates are RSA), and can be
// written out as PEM files for programs configured by file name, such as
// mosquitto's cafile/certfile/keyfile.
//
// Nothing here is meant for production: keys are generated per run, are never
// protected and certificates live for one day by default.
//
// A *CA is safe for concurrent use by multiple goroutines.
package testcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // IoT Hub registers SHA-1 thumbprints; not used for security here.
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DefaultValidity is how long certificates live when Options.Validity is zero.
const DefaultValidity = 24 * time.Hour

// Options selects the key algorithm and lifetime of a CA and of every
// certificate it issues. The zero value means ECDSA P-256, a validity of
// DefaultValidity and the common name "hubwire test CA".
type Options struct {
	// RSA selects RSA-2048 keys instead of ECDSA P-256.
	RSA bool
	// Validity is the lifetime of issued certificates, starting one hour in
	// the past to absorb clock skew. Zero means DefaultValidity.
	Validity time.Duration
	// CommonName is the CA's subject common name.
	CommonName string
}

// CA is a certificate authority that issues server and client certificates.
type CA struct {
	// Cert is the CA certificate.
	Cert *x509.Certificate
	// CertPEM is Cert in PEM form; for an intermediate made by
	// NewIntermediate it is followed by any parent intermediates (never the
	// root).
	CertPEM []byte
	// Key is the CA's private key.
	Key crypto.Signer

	opts   Options
	chain  [][]byte // DER of Cert then its parents, up to but excluding the root
	root   *x509.Certificate
	rootPM []byte
}

// Cert is an issued certificate with its key.
type Cert struct {
	// TLS is ready for tls.Config.Certificates: the leaf, the chain of any
	// intermediate CA, and the private key; Leaf is set.
	TLS tls.Certificate
	// Leaf is the parsed certificate.
	Leaf *x509.Certificate
	// CertPEM is the leaf followed by any intermediate CA certificates.
	CertPEM []byte
	// KeyPEM is the private key as PKCS #8 PEM.
	KeyPEM []byte
}

// NewCA creates a self-signed root CA.
func NewCA(opts Options) (*CA, error) {
	if opts.Validity == 0 {
		opts.Validity = DefaultValidity
	}
	if opts.CommonName == "" {
		opts.CommonName = "hubwire test CA"
	}
	key, err := newKey(opts.RSA)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(opts.CommonName, opts.Validity)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("testcert: create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testcert: parse CA: %w", err)
	}
	certPEM := pemBlock("CERTIFICATE", der)
	return &CA{Cert: cert, CertPEM: certPEM, Key: key, opts: opts, root: cert, rootPM: certPEM}, nil
}

// New is NewCA for tests: it fails tb on error.
func New(tb testing.TB, opts Options) *CA {
	tb.Helper()
	ca, err := NewCA(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return ca
}

// NewIntermediate creates a CA signed by ca. Certificates it issues carry
// the intermediate in their chain, so a peer trusting only the root (see
// Pool) verifies them, as with IoT Hub's CA-signed device certificates.
func (ca *CA) NewIntermediate(commonName string) (*CA, error) {
	key, err := newKey(ca.opts.RSA)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(commonName, ca.opts.Validity)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("testcert: create intermediate CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testcert: parse intermediate CA: %w", err)
	}
	opts := ca.opts
	opts.CommonName = commonName
	chain := append([][]byte{der}, ca.chain...)
	var pemChain []byte
	for _, d := range chain {
		pemChain = append(pemChain, pemBlock("CERTIFICATE", d)...)
	}
	return &CA{Cert: cert, CertPEM: pemChain, Key: key, opts: opts, chain: chain, root: ca.root, rootPM: ca.rootPM}, nil
}

// Pool returns a new pool holding the root CA, for tls.Config.RootCAs or
// ClientCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.root)
	return p
}

// RootPEM returns the root CA certificate in PEM form (for an intermediate,
// the root it chains to).
func (ca *CA) RootPEM() []byte { return ca.rootPM }

// Server issues a server certificate valid for 127.0.0.1, ::1 and localhost
// plus every given name; names that parse as IP addresses become IP SANs,
// others DNS SANs. The first given name (or "localhost") is the subject
// common name.
func (ca *CA) Server(names ...string) (*Cert, error) {
	cn := "localhost"
	if len(names) > 0 {
		cn = names[0]
	}
	tmpl, err := template(cn, ca.opts.Validity)
	if err != nil {
		return nil, err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	all := append([]string{"127.0.0.1", "::1", "localhost"}, names...)
	seen := make(map[string]bool, len(all))
	for _, n := range all {
		if n == "" || seen[strings.ToLower(n)] {
			continue
		}
		seen[strings.ToLower(n)] = true
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return ca.issue(tmpl)
}

// Client issues a client certificate whose subject common name is
// commonName (a device id for IoT Hub's X.509 authentication).
func (ca *CA) Client(commonName string) (*Cert, error) {
	if commonName == "" {
		return nil, errors.New("testcert: client certificate needs a common name")
	}
	tmpl, err := template(commonName, ca.opts.Validity)
	if err != nil {
		return nil, err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return ca.issue(tmpl)
}

// MustServer is Server for tests: it fails tb on error.
func (ca *CA) MustServer(tb testing.TB, names ...string) *Cert {
	tb.Helper()
	c, err := ca.Server(names...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// MustClient is Client for tests: it fails tb on error.
func (ca *CA) MustClient(tb testing.TB, commonName string) *Cert {
	tb.Helper()
	c, err := ca.Client(commonName)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// ServerConfig returns a TLS server configuration presenting server, with
// TLS 1.2 as the minimum, trusting ca for client certificates and applying
// clientAuth (tls.RequestClientCert, tls.RequireAndVerifyClientCert, …).
func (ca *CA) ServerConfig(server *Cert, clientAuth tls.ClientAuthType) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{server.TLS},
		ClientCAs:    ca.Pool(),
		ClientAuth:   clientAuth,
	}
}

// ClientConfig returns a TLS client configuration trusting ca, presenting
// client when it is not nil. ServerName is left empty: transport fills it
// from the dialed host.
func (ca *CA) ClientConfig(client *Cert) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.Pool()}
	if client != nil {
		cfg.Certificates = []tls.Certificate{client.TLS}
	}
	return cfg
}

// WritePEM writes the root CA certificate to dir/ca.pem and returns the path.
func (ca *CA) WritePEM(dir string) (caFile string, err error) {
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.rootPM, 0o600); err != nil {
		return "", fmt.Errorf("testcert: %w", err)
	}
	return caFile, nil
}

// WritePEM writes the certificate chain to dir/name.pem and the key to
// dir/name-key.pem (mode 0600) and returns both paths.
func (c *Cert) WritePEM(dir, name string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dir, name+".pem")
	keyFile = filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, c.CertPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("testcert: %w", err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("testcert: %w", err)
	}
	return certFile, keyFile, nil
}

// Files are PEM files written by WriteFiles.
type Files struct {
	CAFile, CertFile, KeyFile string
}

// WriteFiles writes the root CA as dir/ca.pem and c as dir/name.pem and
// dir/name-key.pem: what a broker configured by cafile, certfile and keyfile
// needs.
func (ca *CA) WriteFiles(dir, name string, c *Cert) (Files, error) {
	caFile, err := ca.WritePEM(dir)
	if err != nil {
		return Files{}, err
	}
	certFile, keyFile, err := c.WritePEM(dir, name)
	if err != nil {
		return Files{}, err
	}
	return Files{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, nil
}

// SHA1Thumbprint returns the SHA-1 digest of the DER certificate as
// upper-case hex, the form IoT Hub registers for self-signed devices.
func (c *Cert) SHA1Thumbprint() string {
	sum := sha1.Sum(c.Leaf.Raw) //nolint:gosec // thumbprint, not a signature
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// SHA256Thumbprint returns the SHA-256 digest of the DER certificate as
// upper-case hex.
func (c *Cert) SHA256Thumbprint() string {
	sum := sha256.Sum256(c.Leaf.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func (ca *CA) issue(tmpl *x509.Certificate) (*Cert, error) {
	key, err := newKey(ca.opts.RSA)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if ca.opts.RSA {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("testcert: create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testcert: parse certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("testcert: marshal key: %w", err)
	}
	chain := append([][]byte{der}, ca.chain...)
	var certPEM []byte
	for _, d := range chain {
		certPEM = append(certPEM, pemBlock("CERTIFICATE", d)...)
	}
	return &Cert{
		TLS:     tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf},
		Leaf:    leaf,
		CertPEM: certPEM,
		KeyPEM:  pemBlock("PRIVATE KEY", keyDER),
	}, nil
}

func newKey(useRSA bool) (crypto.Signer, error) {
	var (
		k   crypto.Signer
		err error
	)
	if useRSA {
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("testcert: generate key: %w", err)
	}
	return k, nil
}

func template(commonName string, validity time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("testcert: serial: %w", err)
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"hubwire tests"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
	}, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
