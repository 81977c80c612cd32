package interop

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestHarnessEvents: JSON lines become events in order, stdin commands
// reach the script, events of other names wait in the backlog, and an
// "error" event fails the expectation.
func TestHarnessEvents(t *testing.T) {
	bin, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed")
	}
	script := filepath.Join(interopDir(t), "testdata", "harness.js")
	p := StartProc(t, "harness", []string{bin, script}, ProcOptions{Env: map[string]string{"HARNESS_VALUE": "v1"}, Timeout: 20 * time.Second})
	ready := p.Expect("ready", 10*time.Second)
	if got := ready.Str("value"); got != "v1" {
		t.Errorf("env value %q, want v1", got)
	}
	if int(ready.Num("pid")) != p.Pid() {
		t.Errorf("script pid %v, Proc.Pid %d", ready.Num("pid"), p.Pid())
	}
	p.Send(map[string]string{"cmd": "echo", "text": "one"})
	p.Send(map[string]string{"cmd": "echo", "text": "two"})
	p.Send(map[string]string{"cmd": "hang"})
	// "hanging" arrives after both echoes: they go to the backlog.
	hang := p.Expect("hanging", 10*time.Second)
	for _, want := range []string{"one", "two"} {
		if got := p.Expect("echo", time.Second).Str("text"); got != want {
			t.Errorf("echo %q, want %q", got, want)
		}
	}
	p.Send(map[string]string{"cmd": "fail"})
	if _, err := p.expect("never", 10*time.Second); err == nil {
		t.Error("an error event did not fail the expectation")
	}
	// Stopping kills the group: the script's own child goes too.
	child := int(hang.Num("child"))
	p.stop()
	if !gone(child, 5*time.Second) {
		t.Errorf("child %d of the script still runs after stop", child)
	}
	if _, err := p.expect("echo", time.Second); err == nil {
		t.Error("expect after the process ended did not fail")
	}
}

// TestHarnessTimeout: the run's bound kills the process group and Wait says so.
func TestHarnessTimeout(t *testing.T) {
	bin, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed")
	}
	script := filepath.Join(interopDir(t), "testdata", "harness.js")
	p := StartProc(t, "harness", []string{bin, script}, ProcOptions{Timeout: 2 * time.Second})
	p.Expect("ready", 10*time.Second)
	p.Send(map[string]string{"cmd": "hang"})
	p.Expect("hanging", 10*time.Second)
	err = p.Wait(10 * time.Second)
	if err == nil {
		t.Fatal("Wait after the timeout returned nil")
	}
	t.Logf("Wait: %v", err)
}

// TestHarnessPython: the python3 found imports paho-mqtt, and Wait reports
// the exit status.
func TestHarnessPython(t *testing.T) {
	bin := pythonBinary(t)
	script := filepath.Join(interopDir(t), "testdata", "harness.py")
	p := StartProc(t, "harness.py", []string{bin, script}, ProcOptions{Timeout: 20 * time.Second})
	if got := p.Expect("ready", 10*time.Second).Str("paho"); got != "paho.mqtt.client" {
		t.Errorf("paho module %q", got)
	}
	var ee *exec.ExitError
	if err := p.Wait(10 * time.Second); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Wait = %v, want exit status 3", err)
	}
}

// TestFixedPortsLock: the lock is held (by flock, so visible to any other
// open of the file, in this process or another) exactly while the test
// that took it runs.
func TestFixedPortsLock(t *testing.T) {
	t.Run("holder", func(t *testing.T) {
		LockFixedPorts(t)
		if !probeLocked(t) {
			t.Error("lock file not locked while held")
		}
	})
	if probeLocked(t) {
		t.Error("lock still held after the holding test ended")
	}
}

// probeLocked reports whether another open file description holds the
// fixed-ports lock.
func probeLocked(t *testing.T) bool {
	t.Helper()
	f, err := os.OpenFile(fixedPortsLock, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("probe flock: %v", err)
	}
	return true
}

// gone waits up to within for pid to be gone or a zombie (a reparented child
// waits for a reaper that a container's init may not be).
func gone(pid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		// Fields: pid (comm) state ...; comm may hold spaces, so cut at the last ')'.
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
