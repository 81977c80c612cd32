package mosquitto_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/mosquitto"
	"github.com/hubwire/hubwire/internal/testcert"
)

// connack reads the CONNACK for a minimal MQTT 3.1.1 CONNECT written to c.
func connack(t *testing.T, c net.Conn) {
	t.Helper()
	// CONNECT, protocol "MQTT" level 4, clean session, keep-alive 10, client id "t".
	connect := []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 10, 0, 1, 't'}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(connect); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	if buf[0] != 0x20 || buf[3] != 0 {
		t.Fatalf("CONNACK = % x, want 20 02 00 00", buf)
	}
}

func TestStartTLSAndRestart(t *testing.T) {
	ca := testcert.New(t, testcert.Options{})
	srv := ca.MustServer(t, "localhost", "127.0.0.1")
	files, err := ca.WriteFiles(t.TempDir(), "server", srv)
	if err != nil {
		t.Fatal(err)
	}
	b := mosquitto.Start(t, mosquitto.Options{
		TLS:         &mosquitto.TLSFiles{CAFile: files.CAFile, CertFile: files.CertFile, KeyFile: files.KeyFile},
		WebSockets:  true,
		Persistence: true,
	})
	c, err := net.DialTimeout("tcp", b.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	connack(t, c)
	c.Close()

	cfg := ca.ClientConfig(nil)
	cfg.ServerName = "127.0.0.1"
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", b.TLSAddr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	connack(t, tc)
	tc.Close()

	pid := b.Pid()
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if b.Pid() == pid || b.Pid() == 0 {
		t.Fatalf("pid after restart = %d, before %d", b.Pid(), pid)
	}
	c, err = net.DialTimeout("tcp", b.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	connack(t, c)
	c.Close()
}
