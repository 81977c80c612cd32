//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary builds cmd/hubwire once per test run, into a temporary
// directory removed when the tests end.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	binOnce.Do(func() {
		// go test puts its own GOROOT/bin first on the PATH of the tests.
		goTool, err := exec.LookPath("go")
		if err != nil {
			binErr = fmt.Errorf("the go tool is not on PATH: %v", err)
			return
		}
		if binDir, binErr = os.MkdirTemp("", "hubwire-cli-test-*"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "hubwire")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, goTool, "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// TestBinary runs the built command as a user would: the README's demo,
// and the emulator stopped by SIGTERM.
func TestBinary(t *testing.T) {
	bin := buildBinary(t)

	t.Run("demo", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "demo")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("hubwire demo: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
		}
		checkDemoTranscript(t, string(out))
	})

	t.Run("emulator-sigterm", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "emulator", "--in-memory", "--mqtt-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0", "--log-level", "off")
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill() // by pid, if the test fails half-way
		sc := bufio.NewScanner(stdout)
		ready := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "Ready.") {
				ready = true
				break
			}
		}
		if !ready {
			t.Fatalf("the emulator never printed Ready. (%v)", sc.Err())
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(stdout)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("exit after SIGTERM: %v (output %q)", err, rest)
		}
		if !strings.HasSuffix(string(rest), "Stopping.\nStopped.\n") {
			t.Errorf("output after SIGTERM %q", rest)
		}
	})
}

// fixedPortsLock is the file the tests that bind 8883 and 443 take an
// exclusive flock on (interop.LockFixedPorts uses the same one).
const fixedPortsLock = "/tmp/hubwire-fixed-ports.lock"

// lockFixedPorts waits (at most 2 minutes) for the fixed ports' lock and
// holds it until the test ends.
func lockFixedPorts(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(fixedPortsLock, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatalf("fixed-ports lock: %v", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			t.Fatalf("fixed-ports lock %s: %v", fixedPortsLock, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// TestBinaryDefaultPorts runs the README's second-shell flow as written:
// "hubwire emulator" on 8883 and 443, its export lines, then commands
// that find the hub by the connection string's HostName alone.
func TestBinaryDefaultPorts(t *testing.T) {
	bin := buildBinary(t)
	lockFixedPorts(t)
	for _, addr := range []string{"127.0.0.1:8883", "127.0.0.1:443"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("cannot bind %s in CI: %v", addr, err)
			}
			t.Skipf("cannot bind %s here (%v): needs root or CAP_NET_BIND_SERVICE", addr, err)
		}
		ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	home := t.TempDir()
	emu := exec.CommandContext(ctx, bin, "emulator", "--data-dir", filepath.Join(home, "hub"), "--log-level", "off")
	stdout, err := emu.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		emu.Process.Signal(syscall.SIGTERM)
		emu.Wait()
	}()
	env := append(os.Environ(), "HOME="+home)
	sc := bufio.NewScanner(stdout)
	var banner strings.Builder
	for sc.Scan() {
		line := sc.Text()
		banner.WriteString(line + "\n")
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "  export "), "="); ok && strings.HasPrefix(line, "  export ") {
			env = append(env, k+"="+strings.Trim(v, "'"))
		}
		if strings.HasPrefix(line, "Ready.") {
			break
		}
	}
	out := banner.String()
	for _, unwanted := range []string{envServiceEndpoint, envMQTTAddress, envWSSAddress, "official SDKs dial those"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("on the default ports the banner mentions %s:\n%s", unwanted, out)
		}
	}
	hubwire := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("hubwire %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(b)
	}
	// The README's second shell, command by command.
	cs := strings.TrimSpace(hubwire("device", "add", "dev1"))
	env = append(env, envDeviceConnStr+"="+cs)
	listen := exec.CommandContext(ctx, bin, "listen")
	listen.Env = env
	var listenOut syncBuffer
	listen.Stdout = &listenOut
	listenErr, err := listen.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	defer listen.Process.Kill() // by pid, if the test fails half-way
	if line, err := bufio.NewReader(listenErr).ReadString('\n'); err != nil || !strings.HasPrefix(line, "listening as dev1") {
		t.Fatalf("listen said %q (%v)", line, err)
	}
	waitListen := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(listenOut.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("listen did not print %q within 10 s:\n%s", want, listenOut.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitListen("desired  $version 1 (full) {}")
	if out := hubwire("twin", "set-desired", "dev1", `{"interval":5}`); !strings.HasPrefix(out, "desired $version 2 ") {
		t.Errorf("twin set-desired printed %q", out)
	}
	if out := hubwire("method", "invoke", "dev1", "reboot", `{"delay":0}`); !jsonEqual([]byte(out), []byte(`{"status":200,"payload":null}`)) {
		t.Errorf("method invoke printed %q", out)
	}
	if out := hubwire("c2d", "send", "dev1", "hello device", "--property", "priority=high"); !strings.HasPrefix(out, "queued message ") {
		t.Errorf("c2d send printed %q", out)
	}
	sensor := strings.TrimSpace(hubwire("device", "add", "sensor"))
	hubwire("send", "--connection-string", sensor, `{"temperature":21.5}`, "--property", "alert=false")
	if out := hubwire("monitor", "--from", "earliest", "--count", "1"); !strings.Contains(out, `sensor  {"temperature":21.5}  [alert=false]`) {
		t.Errorf("monitor printed %q", out)
	}
	hubwire("send", "--connection-string", sensor, "--transport", "mqtt-ws", `{"temperature":22}`)
	waitListen(`c2d      "hello device"`)
	if err := listen.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := listen.Wait(); err != nil {
		t.Errorf("listen after Ctrl-C: %v", err)
	}
	got := listenOut.String()
	for _, want := range []string{"desired  $version 1 (full) {}", `desired  $version 2 {"interval":5}`, `method   reboot {"delay":0} -> 200 (no payload)`, `c2d      "hello device" `, "priority=high"} {
		if !strings.Contains(got, want) {
			t.Errorf("listen printed no %q:\n%s", want, got)
		}
	}
	list := hubwire("device", "list")
	if !regexp.MustCompile(`(?m)^dev1 +enabled +`).MatchString(list) || !strings.Contains(list, "2 devices") {
		t.Errorf("device list printed:\n%s", list)
	}
	if out := hubwire("monitor", "--from", "earliest", "--no-follow", "--device", "sensor"); strings.Count(out, "\n") != 2 {
		t.Errorf("monitor --no-follow printed:\n%s", out)
	}
}
