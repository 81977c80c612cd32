package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubwire/hubwire/internal/testcert"
	"github.com/hubwire/hubwire/iothub/device"
)

// syncBuffer is an io.Writer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// background is a command running in a goroutine.
type background struct {
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	done           chan int
}

// start runs the command line in the background until stop.
func start(t *testing.T, inv invocation, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan int, 1)}
	a := &app{
		stdin:  strings.NewReader(inv.stdin),
		stdout: &b.stdout,
		stderr: &b.stderr,
		lookupEnv: func(k string) (string, bool) {
			v, ok := inv.env[k]
			return v, ok
		},
	}
	go func() { b.done <- a.run(ctx, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			t.Errorf("hubwire %s did not stop within 10 s of its context ending", strings.Join(args, " "))
		}
	})
	return b
}

// waitFor waits until stdout holds s, or the command ends, or 15 s pass.
func (b *background) waitFor(t *testing.T, s string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if out := b.stdout.String(); strings.Contains(out, s) {
			return out
		}
		select {
		case code := <-b.done:
			b.done <- code
			t.Fatalf("the command ended (code %d) before printing %q; stdout:\n%s\nstderr:\n%s", code, s, b.stdout.String(), b.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no %q within 15 s; stdout:\n%s\nstderr:\n%s", s, b.stdout.String(), b.stderr.String())
	return ""
}

// stop ends the command as SIGINT would and returns its exit code.
func (b *background) stop(t *testing.T) int {
	t.Helper()
	b.cancel()
	select {
	case code := <-b.done:
		b.done <- code
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not stop within 10 s")
		return -1
	}
}

// field returns the first submatch of re in s, failing the test without one.
func field(t *testing.T, s, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no match for %s in:\n%s", re, s)
	}
	return m[1]
}

func emulatorFlags(extra ...string) []string {
	return append([]string{"emulator", "--mqtt-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0", "--log-level", "warn"}, extra...)
}

func TestEmulatorServesAndStopsCleanly(t *testing.T) {
	b := start(t, invocation{}, emulatorFlags("--in-memory", "--device", "dev1")...)
	out := b.waitFor(t, "Ready. Press Ctrl-C to stop.")
	for _, want := range []string{
		`IoT Hub emulator "localhost" is running (in memory`,
		"Service connection string (policy iothubowner):\n  HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=",
		"export IOTHUB_CONNECTION_STRING='HostName=localhost;SharedAccessKeyName=iothubowner;",
		"NODE_EXTRA_CA_CERTS=", "server_verification_cert=", "update-ca-certificates", "AppendCertsFromPEM",
		"the official SDKs dial those",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	mqttAddr := field(t, out, `MQTT over TLS +(\S+)`)
	wssURL := field(t, out, `MQTT over WSS +(wss://\S+)`)
	caFile := field(t, out, `CA certificate +(\S+)`)
	cs := field(t, out, "Device dev1 connection string:\n  (\\S+)")
	if got := field(t, out, `export HUBWIRE_MQTT_ADDRESS=(\S+)`); got != mqttAddr {
		t.Errorf("HUBWIRE_MQTT_ADDRESS %s, MQTT address %s", got, mqttAddr)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	httpsAddr := strings.TrimSuffix(strings.TrimPrefix(wssURL, "wss://"), "/$iothub/websocket")
	if got := field(t, out, `export HUBWIRE_WSS_ADDRESS=(\S+)`); got != httpsAddr {
		t.Errorf("HUBWIRE_WSS_ADDRESS %s, HTTPS address %s", got, httpsAddr)
	}
	if got := field(t, out, `export HUBWIRE_SERVICE_ENDPOINT=(\S+)`); got != "https://"+httpsAddr {
		t.Errorf("HUBWIRE_SERVICE_ENDPOINT %s, HTTPS address %s", got, httpsAddr)
	}
	for _, tc := range []struct{ transport, addr string }{{device.TransportMQTT, mqttAddr}, {device.TransportMQTTWebSocket, httpsAddr}} {
		t.Run(tc.transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			c, err := device.New(device.Config{ConnectionString: cs, Transport: tc.transport, Address: tc.addr, RootCAs: pool})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Connect(ctx); err != nil {
				t.Fatalf("connect over %s to %s with the printed CA and connection string: %v", tc.transport, tc.addr, err)
			}
			if err := c.Send(ctx, &device.Message{Payload: []byte("hi")}); err != nil {
				t.Error(err)
			}
			if err := c.Close(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	if code := b.stop(t); code != 0 {
		t.Errorf("exit code %d after the signal; stderr %s", code, b.stderr.String())
	}
	if out := b.stdout.String(); !strings.HasSuffix(out, "Stopping.\nStopped.\n") {
		t.Errorf("output does not end with the shutdown: %q", out[max(0, len(out)-80):])
	}
	if _, err := os.Stat(caFile); !os.IsNotExist(err) {
		t.Errorf("the temporary CA file %s is still there: %v", caFile, err)
	}
}

func TestEmulatorDataDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	first := start(t, invocation{}, emulatorFlags("--data-dir", dir, "--device", "dev1")...)
	out1 := first.waitFor(t, "Ready.")
	if code := first.stop(t); code != 0 {
		t.Fatalf("exit code %d; stderr %s", code, first.stderr.String())
	}
	second := start(t, invocation{}, emulatorFlags("--data-dir", dir, "--device", "dev1")...)
	out2 := second.waitFor(t, "Ready.")
	for _, re := range []string{"Device dev1 connection string:\n  (\\S+)", "Service connection string \\(policy iothubowner\\):\n  (\\S+)", `CA certificate +(\S+)`} {
		if a, b := field(t, out1, re), field(t, out2, re); a != b {
			t.Errorf("%s changed across a restart on the same data dir", re)
		}
	}
	if ca := field(t, out2, `CA certificate +(\S+)`); !strings.HasPrefix(ca, dir+string(filepath.Separator)) {
		t.Errorf("CA %s is not in the data dir %s", ca, dir)
	}
	if !strings.Contains(out2, "(data in "+dir+")") {
		t.Errorf("the banner does not name the data dir:\n%s", out2)
	}
}

func TestEmulatorFixedOwnerKey(t *testing.T) {
	key := testKey
	b := start(t, invocation{stdin: key + "\n"}, emulatorFlags("--in-memory", "--owner-key", "-")...)
	out := b.waitFor(t, "Ready.")
	if want := "HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=" + key; !strings.Contains(out, want) {
		t.Errorf("service connection string is not %s:\n%s", want, out)
	}
}

func TestEmulatorPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := hubwire(t, "emulator", "--in-memory", "--mqtt-addr", ln.Addr().String(), "--https-addr", "127.0.0.1:0", "--log-level", "off")
	wantOneLineError(t, r, 1, "cannot listen for MQTT on "+ln.Addr().String())
	for _, want := range []string{"--mqtt-addr", "hubwire emulator --mqtt-addr 127.0.0.1:18883 --https-addr 127.0.0.1:8443"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error does not say how to choose another port (%q): %s", want, r.stderr)
		}
	}
}

func TestEmulatorGivenCertificate(t *testing.T) {
	ca := testcert.New(t, testcert.Options{CommonName: "my company CA"})
	dir := t.TempDir()
	files, err := ca.WriteFiles(dir, "server", ca.MustServer(t, "localhost", "127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	b := start(t, invocation{}, emulatorFlags("--in-memory", "--device", "dev1", "--cert-file", files.CertFile, "--key-file", files.KeyFile, "--ca-file", files.CAFile)...)
	out := b.waitFor(t, "Ready.")
	if got := field(t, out, `CA certificate +(\S+)`); got != files.CAFile {
		t.Errorf("banner names CA %s, want the given %s", got, files.CAFile)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := device.New(device.Config{ConnectionString: field(t, out, "Device dev1 connection string:\n  (\\S+)"), Address: field(t, out, `MQTT over TLS +(\S+)`), RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect trusting only the given CA: %v", err)
	}
	c.Close(ctx)
	if _, err := os.Stat(files.CAFile); err != nil {
		t.Errorf("the given CA file is gone after the run: %v", err)
	}
}

func TestBytesFlag(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512MB": 512e6, "2GiB": 2 << 30, "1024": 1024, "10KiB": 10240, "7B": 7} {
		var v bytesValue
		if err := v.Set(in); err != nil || v.n != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, v.n, err, want)
		}
	}
	for _, bad := range []string{"", "MB", "-1GB", "1.5GB", "1 PB", "99999999999TB"} {
		var v bytesValue
		if err := v.Set(bad); err == nil {
			t.Errorf("Set(%q) = %d, want an error", bad, v.n)
		}
	}
	if s := bytesFlag(1 << 30).String(); s != "1GiB" {
		t.Errorf("String() = %q", s)
	}
}

func TestEmulatorBadUsage(t *testing.T) {
	wantOneLineError(t, hubwire(t, "emulator", "--in-memory", "--data-dir", "x"), 2, "--in-memory and --data-dir exclude each other")
	wantOneLineError(t, hubwire(t, "emulator", "--in-memory", "--log-level", "loud"), 2, `--log-level "loud"`)
	wantOneLineError(t, hubwire(t, "emulator", "--in-memory", "--device", ""), 2, "invalid value")
	wantOneLineError(t, hubwire(t, "emulator", "--in-memory", "--cert-file", "x.pem"), 2, "--cert-file and --key-file go together")
	wantOneLineError(t, hubwire(t, "emulator", "--in-memory", "--ca-file", "x.pem"), 2, "--ca-file needs --cert-file")
	wantOneLineError(t, hubwire(t, "emulator", "--in-memory", "--retention-size", "lots"), 2, `invalid value "lots" for flag -retention-size`)
	wantOneLineError(t, hubwire(t, "emulator", "--in-memory", "--retention", "0s"), 2, "--retention and --retention-size must be positive")
}
