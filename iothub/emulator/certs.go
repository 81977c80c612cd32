package emulator

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // IoT Hub registers SHA-1 thumbprints; this is identification, not security.
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
	"slices"
	"strings"
	"time"
)

// Certificate lifetimes of what the emulator makes itself.
const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 825 * 24 * time.Hour // the longest lifetime macOS and browsers accept
)

// certs is the hub's TLS material: the CA that signs the server certificate
// (made on first start, or given) and the server certificate.
type certs struct {
	caPEM  []byte
	pool   *x509.CertPool
	server tls.Certificate
	caPath string // where the CA's PEM is kept on disk; "" in memory
}

// loadOrMakeCerts returns the hub's certificates. With CertFile and KeyFile
// set it uses them (and CAFile, when set, as the CA to publish). Otherwise
// it reuses the CA kept in dir/certs (dir "" means in memory) or makes one,
// and makes a server certificate for names when the kept one does not cover
// them all or expires within a week.
func loadOrMakeCerts(cfg *Config, names []string) (*certs, error) {
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		return loadGivenCerts(cfg)
	}
	var dir string
	if cfg.DataDir != "" {
		dir = filepath.Join(cfg.DataDir, "certs")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("emulator: certificate directory: %w", err)
		}
	}
	caCert, caKey, caPEM, err := loadOrMakeCA(dir)
	if err != nil {
		return nil, err
	}
	server, err := loadOrMakeServer(dir, caCert, caKey, names)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	c := &certs{caPEM: caPEM, pool: pool, server: server}
	if dir != "" {
		c.caPath = filepath.Join(dir, "ca.pem")
	}
	return c, nil
}

func loadGivenCerts(cfg *Config) (*certs, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, invalid("CertFile and KeyFile must be set together")
	}
	server, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("emulator: server certificate: %w", err)
	}
	c := &certs{server: server, pool: x509.NewCertPool()}
	if cfg.CAFile != "" {
		pemBytes, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("emulator: CA file: %w", err)
		}
		if !c.pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("emulator: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		c.caPEM, c.caPath = pemBytes, cfg.CAFile
	} else {
		// Without a CA the last certificate of the chain is the best
		// anchor to publish.
		last := server.Certificate[len(server.Certificate)-1]
		cert, err := x509.ParseCertificate(last)
		if err != nil {
			return nil, fmt.Errorf("emulator: server certificate: %w", err)
		}
		c.pool.AddCert(cert)
		c.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: last})
	}
	return c, nil
}

func loadOrMakeCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	if dir != "" {
		certPEM, err1 := os.ReadFile(filepath.Join(dir, "ca.pem"))
		keyPEM, err2 := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
		if err1 == nil && err2 == nil {
			cert, key, err := parsePair(certPEM, keyPEM)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("emulator: kept CA in %s: %w", dir, err)
			}
			return cert, key, certPEM, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "hubwire IoT Hub emulator CA", Organization: []string{"hubwire"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, _ := x509.ParseCertificate(der) // just made
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if dir != "" {
		if err := writePair(dir, "ca", certPEM, key); err != nil {
			return nil, nil, nil, err
		}
	}
	return cert, key, certPEM, nil
}

func loadOrMakeServer(dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, names []string) (tls.Certificate, error) {
	if dir != "" {
		certPEM, err1 := os.ReadFile(filepath.Join(dir, "server.pem"))
		keyPEM, err2 := os.ReadFile(filepath.Join(dir, "server-key.pem"))
		if err1 == nil && err2 == nil {
			if cert, _, err := parsePair(certPEM, keyPEM); err == nil && covers(cert, names) &&
				time.Until(cert.NotAfter) > 7*24*time.Hour && cert.CheckSignatureFrom(ca) == nil {
				if pair, err := tls.X509KeyPair(certPEM, keyPEM); err == nil {
					return pair, nil
				}
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"hubwire"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if dir != "" {
		if err := writePair(dir, "server", certPEM, key); err != nil {
			return tls.Certificate{}, err
		}
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key) // an ECDSA key always marshals
	return tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// covers reports whether cert names every one of names.
func covers(cert *x509.Certificate, names []string) bool {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(cert.IPAddresses, func(c net.IP) bool { return c.Equal(ip) }) {
				return false
			}
		} else if !slices.Contains(cert.DNSNames, n) {
			return false
		}
	}
	return true
}

func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("key is not ECDSA")
	}
	return cert, key, nil
}

// writePair writes name.pem and name-key.pem (mode 0600) atomically.
func writePair(dir, name string, certPEM []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := writeFileAtomic(filepath.Join(dir, name+"-key.pem"), keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, name+".pem"), certPEM, 0o644)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("emulator: %w", err)
	}
	return nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)) // crypto/rand does not fail
	return n
}

// Thumbprints returns the SHA-1 and SHA-256 thumbprints of a DER
// certificate as upper-case hex, the forms IoT Hub registers.
func Thumbprints(der []byte) (sha1Hex, sha256Hex string) {
	s1 := sha1.Sum(der) //nolint:gosec // identification only
	s2 := sha256.Sum256(der)
	return strings.ToUpper(hex.EncodeToString(s1[:])), strings.ToUpper(hex.EncodeToString(s2[:]))
}

// thumbprintMatches reports whether the hex thumbprint t (any case, colons
// allowed) is the SHA-1 or SHA-256 thumbprint of der.
func thumbprintMatches(t string, der []byte) bool {
	t = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(t), ":", ""))
	if t == "" {
		return false
	}
	s1, s2 := Thumbprints(der)
	return t == s1 || t == s2
}

// parseCertsPEM parses every certificate in a PEM bundle.
func parseCertsPEM(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, invalid("certificate: " + err.Error())
		}
		out = append(out, c)
	}
	if len(out) == 0 && len(bytes.TrimSpace(b)) == 0 {
		return nil, invalid("no PEM certificate")
	}
	if len(out) == 0 {
		return nil, invalid("no PEM certificate")
	}
	return out, nil
}
