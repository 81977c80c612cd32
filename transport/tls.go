package transport

import (
	"crypto/tls"
	"net"
)

// clientTLSConfig clones c (nil means the defaults), setting ServerName to
// host when empty so SNI is always sent, and MinVersion to at least TLS 1.2.
func clientTLSConfig(c *tls.Config, host string) *tls.Config {
	var cfg *tls.Config
	if c == nil {
		cfg = &tls.Config{}
	} else {
		cfg = c.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// serverTLSConfig clones c with MinVersion at least TLS 1.2, also in every
// configuration its GetConfigForClient returns (crypto/tls negotiates the
// version with that one). It reports ErrNoTLSConfig when c offers no
// certificate.
func serverTLSConfig(c *tls.Config) (*tls.Config, error) {
	if c == nil || (len(c.Certificates) == 0 && c.GetCertificate == nil && c.GetConfigForClient == nil) {
		return nil, ErrNoTLSConfig
	}
	cfg := c.Clone()
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if get := cfg.GetConfigForClient; get != nil {
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			pc, err := get(hello)
			if err != nil || pc == nil || pc.MinVersion >= tls.VersionTLS12 {
				return pc, err
			}
			pc = pc.Clone()
			pc.MinVersion = tls.VersionTLS12
			return pc, nil
		}
	}
	return cfg, nil
}

// TLSConnectionState returns the TLS state of c, looking through the
// connections transport wraps (a WSConn over TLS, anything with a NetConn
// method). It reports false for a connection without TLS. The emulator
// reads the client certificate from it (PeerCertificates) for X.509
// authentication.
func TLSConnectionState(c net.Conn) (tls.ConnectionState, bool) {
	for range 8 { // wrappers do not nest deeper than this
		if s, ok := c.(interface{ ConnectionState() tls.ConnectionState }); ok {
			return s.ConnectionState(), true
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	return tls.ConnectionState{}, false
}
