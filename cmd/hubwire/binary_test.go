//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
