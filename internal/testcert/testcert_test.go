package testcert

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"
)

func TestServerNames(t *testing.T) {
	ca := New(t, Options{})
	srv := ca.MustServer(t, "hub.example.net", "10.1.2.3")
	for _, name := range []string{"127.0.0.1", "::1", "localhost", "hub.example.net", "10.1.2.3"} {
		_, err := srv.Leaf.Verify(x509.VerifyOptions{
			DNSName:   name,
			Roots:     ca.Pool(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			t.Errorf("verify for %q: %v", name, err)
		}
	}
	if err := srv.Leaf.VerifyHostname("other.example.net"); err == nil {
		t.Error("certificate verified for a name it was not issued for")
	}
	if got := srv.Leaf.Subject.CommonName; got != "hub.example.net" {
		t.Errorf("CommonName = %q, want hub.example.net", got)
	}
	if _, ok := srv.TLS.PrivateKey.(*ecdsa.PrivateKey); !ok {
		t.Errorf("default key is %T, want *ecdsa.PrivateKey", srv.TLS.PrivateKey)
	}
}

func TestClientCommonName(t *testing.T) {
	ca := New(t, Options{})
	c := ca.MustClient(t, "device-42")
	if got := c.Leaf.Subject.CommonName; got != "device-42" {
		t.Errorf("CommonName = %q, want device-42", got)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{
		Roots:     ca.Pool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Errorf("verify client: %v", err)
	}
	if _, err := ca.Client(""); err == nil {
		t.Error("Client(\"\") succeeded")
	}
	if len(c.SHA1Thumbprint()) != 40 || len(c.SHA256Thumbprint()) != 64 {
		t.Errorf("thumbprints %q %q have wrong lengths", c.SHA1Thumbprint(), c.SHA256Thumbprint())
	}
	if c.SHA256Thumbprint() == ca.MustClient(t, "device-42").SHA256Thumbprint() {
		t.Error("two certificates share a thumbprint")
	}
}

func TestRSA(t *testing.T) {
	ca := New(t, Options{RSA: true})
	srv := ca.MustServer(t)
	if _, ok := srv.TLS.PrivateKey.(*rsa.PrivateKey); !ok {
		t.Fatalf("key is %T, want *rsa.PrivateKey", srv.TLS.PrivateKey)
	}
	if srv.Leaf.PublicKeyAlgorithm != x509.RSA {
		t.Errorf("PublicKeyAlgorithm = %v, want RSA", srv.Leaf.PublicKeyAlgorithm)
	}
	handshake(t, ca.ServerConfig(srv, tls.NoClientCert), ca.ClientConfig(nil), "127.0.0.1")
}

// TestMutualTLS runs a real handshake on loopback with a client certificate
// issued by an intermediate CA, the server trusting only the root.
func TestMutualTLS(t *testing.T) {
	root := New(t, Options{})
	inter, err := root.NewIntermediate("hubwire test intermediate")
	if err != nil {
		t.Fatal(err)
	}
	srv := root.MustServer(t)
	dev := inter.MustClient(t, "dev1")
	if len(dev.TLS.Certificate) != 2 {
		t.Fatalf("client chain has %d certificates, want 2", len(dev.TLS.Certificate))
	}
	state := handshake(t, root.ServerConfig(srv, tls.RequireAndVerifyClientCert), root.ClientConfig(dev), "localhost")
	if len(state.PeerCertificates) == 0 || state.PeerCertificates[0].Subject.CommonName != "dev1" {
		t.Errorf("server saw peer certificates %v, want CN dev1", state.PeerCertificates)
	}

	// A client certificate from an unrelated CA is refused.
	other := New(t, Options{}).MustClient(t, "dev1")
	if err := tryHandshake(t, root.ServerConfig(srv, tls.RequireAndVerifyClientCert), root.ClientConfig(other), "localhost"); err == nil {
		t.Error("handshake with a foreign client certificate succeeded")
	}
}

func TestWriteFiles(t *testing.T) {
	ca := New(t, Options{})
	srv := ca.MustServer(t)
	files, err := ca.WriteFiles(t.TempDir(), "server", srv)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
	if err != nil {
		t.Fatalf("load written pair: %v", err)
	}
	if pair.Leaf == nil || !pair.Leaf.Equal(srv.Leaf) {
		t.Error("written certificate differs from the issued one")
	}
	if _, err := ca.WritePEM("/nonexistent/dir"); err == nil {
		t.Error("WritePEM into a missing directory succeeded")
	}
}

// handshake runs a TLS handshake over a loopback TCP connection and returns
// the server's view of it.
func handshake(t *testing.T, srvCfg, cliCfg *tls.Config, serverName string) tls.ConnectionState {
	t.Helper()
	state, err := run(t, srvCfg, cliCfg, serverName)
	if err != nil {
		t.Fatal(err)
	}
	return state
}

func tryHandshake(t *testing.T, srvCfg, cliCfg *tls.Config, serverName string) error {
	t.Helper()
	_, err := run(t, srvCfg, cliCfg, serverName)
	return err
}

func run(t *testing.T, srvCfg, cliCfg *tls.Config, serverName string) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		state tls.ConnectionState
		err   error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		s := tls.Server(c, srvCfg)
		err = s.Handshake()
		if err == nil {
			// Read the client's byte so TLS 1.3 client-certificate
			// errors surface on both sides.
			var b [1]byte
			_, err = s.Read(b[:])
		}
		done <- result{s.ConnectionState(), err}
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	cfg := cliCfg.Clone()
	cfg.ServerName = serverName
	cc := tls.Client(c, cfg)
	cerr := cc.Handshake()
	if cerr == nil {
		_, cerr = cc.Write([]byte{1})
	}
	r := <-done
	return r.state, errors.Join(cerr, r.err)
}
