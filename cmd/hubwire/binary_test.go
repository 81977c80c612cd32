package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds cmd/hubwire into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "hubwire")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
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
