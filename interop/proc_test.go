package interop

// The harness every interop test uses: find the tools (skip, or fail in CI,
// when one is missing), run a script as a child process in its own process
// group with a bounded lifetime, log its output into the test log, parse
// the JSON lines it prints as events, and take the cross-process lock that
// serializes tests binding the fixed ports 8883 and 443.
// Usage notes for other engineers: /work/brief/INTEROP-HELPER.md.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// defaultProcTimeout bounds a script's whole run when ProcOptions.Timeout
// is zero.
const defaultProcTimeout = 60 * time.Second

// fixedPortsLock is the lock file shared by every process that binds the
// fixed ports 8883 and 443 in tests.
const fixedPortsLock = "/tmp/hubwire-fixed-ports.lock"

// fixedPortsWait bounds how long LockFixedPorts waits for another holder.
const fixedPortsWait = 3 * time.Minute

// missing skips the test because a tool it needs is absent, or fails it
// when CI is set (CI must never pass by skipping).
func missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s (CI is set, so this is a failure; scripts/test installs it)", msg)
	}
	tb.Skipf("%s (run scripts/test to install it; with CI set this fails)", msg)
}

// interopDir is the directory of this package's sources (the scripts live
// below it), found from this file's path so the tests work from any cwd.
func interopDir(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("interop: cannot locate the package directory")
	}
	return filepath.Dir(file)
}

// nodeBinary returns the node executable, or skips/fails when node or the
// npm project's installed SDKs are missing.
func nodeBinary(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("node")
	if err != nil {
		missing(tb, "node is not installed (Debian's nodejs package)")
	}
	mods := filepath.Join(interopDir(tb), "node", "node_modules")
	for _, pkg := range []string{"azure-iot-device", "azure-iot-device-mqtt", "azure-iothub"} {
		if _, err := os.Stat(filepath.Join(mods, pkg, "package.json")); err != nil {
			missing(tb, "interop/node/node_modules/%s is missing (npm ci in interop/node)", pkg)
		}
	}
	return bin
}

var pythonOnce struct {
	sync.Once
	bin string
	err error
}

// pythonBinary returns a python3 that imports paho.mqtt.client, preferring
// /usr/bin/python3 (Debian's python3-paho-mqtt installs into its
// dist-packages, which a python3 earlier on PATH may not see).
func pythonBinary(tb testing.TB) string {
	tb.Helper()
	pythonOnce.Do(func() {
		var cands []string
		if _, err := os.Stat("/usr/bin/python3"); err == nil {
			cands = append(cands, "/usr/bin/python3")
		}
		if p, err := exec.LookPath("python3"); err == nil && p != "/usr/bin/python3" {
			cands = append(cands, p)
		}
		pythonOnce.err = errors.New("no python3 found")
		for _, c := range cands {
			out, err := exec.Command(c, "-c", "import paho.mqtt.client").CombinedOutput()
			if err == nil {
				pythonOnce.bin, pythonOnce.err = c, nil
				return
			}
			pythonOnce.err = fmt.Errorf("%s cannot import paho.mqtt.client: %v: %s", c, err, bytes.TrimSpace(out))
		}
	})
	if pythonOnce.err != nil {
		missing(tb, "python3 with paho-mqtt is not available (Debian's python3-paho-mqtt): %v", pythonOnce.err)
	}
	return pythonOnce.bin
}

// Event is one JSON object a script printed on a line of its stdout. Every
// event has a string member "event" naming it.
type Event struct {
	// Name is the "event" member.
	Name string
	// Fields is the whole object, decoded.
	Fields map[string]any
	// Raw is the line as printed.
	Raw []byte
}

// Str returns the string member key, or "" when absent or not a string.
func (e Event) Str(key string) string {
	s, _ := e.Fields[key].(string)
	return s
}

// Num returns the number member key, or 0 when absent or not a number.
func (e Event) Num(key string) float64 {
	n, _ := e.Fields[key].(float64)
	return n
}

// Decode unmarshals the whole event into v.
func (e Event) Decode(v any) error { return json.Unmarshal(e.Raw, v) }

// ProcOptions configures a script run.
type ProcOptions struct {
	// Env is added to the test process's environment.
	Env map[string]string
	// Timeout bounds the whole run: when it passes the process group is
	// killed (default 60 s).
	Timeout time.Duration
	// Dir is the working directory (default: the script's directory).
	Dir string
}

// Proc is a running script. Its methods must be called from the test's
// goroutine.
type Proc struct {
	tb    testing.TB
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	events  chan Event
	backlog []Event

	readers sync.WaitGroup
	done    chan struct{} // closed once the process has been waited for
	waitErr error         // valid after done

	mu       sync.Mutex
	timedOut bool
	timer    *time.Timer
}

// StartNode runs `node script` (script relative to interop/node) and stops
// it when the test ends.
func StartNode(tb testing.TB, script string, opts ProcOptions) *Proc {
	tb.Helper()
	bin := nodeBinary(tb)
	path := filepath.Join(interopDir(tb), "node", filepath.FromSlash(script))
	mustExist(tb, path)
	return StartProc(tb, "node "+script, []string{bin, path}, opts)
}

// StartPython runs `python3 script` (script relative to interop/python) with
// a python3 that has paho-mqtt, and stops it when the test ends.
func StartPython(tb testing.TB, script string, opts ProcOptions) *Proc {
	tb.Helper()
	bin := pythonBinary(tb)
	path := filepath.Join(interopDir(tb), "python", filepath.FromSlash(script))
	mustExist(tb, path)
	return StartProc(tb, "python3 "+script, []string{bin, "-u", path}, opts)
}

// mustExist fails the test when a script is missing (exec would otherwise
// report the missing working directory as a missing interpreter).
func mustExist(tb testing.TB, path string) {
	tb.Helper()
	if _, err := os.Stat(path); err != nil {
		tb.Fatalf("script %s: %v (is it committed?)", path, err)
	}
}

// StartProc runs argv in its own process group. Lines on stdout that are
// JSON objects with an "event" member become events; every stdout and
// stderr line is logged into the test log prefixed by name. The process
// group is killed (SIGKILL) when opts.Timeout passes or the test ends.
func StartProc(tb testing.TB, name string, argv []string, opts ProcOptions) *Proc {
	tb.Helper()
	if opts.Timeout <= 0 {
		opts.Timeout = defaultProcTimeout
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = opts.Dir
	if cmd.Dir == "" && len(argv) > 1 {
		cmd.Dir = filepath.Dir(argv[len(argv)-1])
	}
	cmd.Env = os.Environ()
	for k, v := range opts.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatalf("%s: stdin: %v", name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("%s: stdout: %v", name, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatalf("%s: stderr: %v", name, err)
	}
	p := &Proc{tb: tb, name: name, cmd: cmd, stdin: stdin, events: make(chan Event, 1024), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("%s: start: %v", name, err)
	}
	p.name = fmt.Sprintf("%s[%d]", name, cmd.Process.Pid)
	tb.Logf("%s: started", p.name)
	p.readers.Add(2)
	go p.read(stdout, true)
	go p.read(stderr, false)
	go func() {
		p.readers.Wait()
		p.waitErr = cmd.Wait()
		close(p.events)
		close(p.done)
	}()
	p.timer = time.AfterFunc(opts.Timeout, func() {
		p.mu.Lock()
		p.timedOut = true
		p.mu.Unlock()
		p.kill()
	})
	tb.Cleanup(p.stop)
	return p
}

// read logs each line of r; stdout lines that are events go to p.events.
func (p *Proc) read(r io.Reader, isStdout bool) {
	defer p.readers.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	stream := "stderr"
	if isStdout {
		stream = "stdout"
	}
	for sc.Scan() {
		line := sc.Bytes()
		p.tb.Logf("%s %s: %s", p.name, stream, line)
		if !isStdout || len(line) == 0 || line[0] != '{' {
			continue
		}
		var fields map[string]any
		if json.Unmarshal(line, &fields) != nil {
			continue
		}
		name, ok := fields["event"].(string)
		if !ok {
			continue
		}
		ev := Event{Name: name, Fields: fields, Raw: append([]byte(nil), line...)}
		select {
		case p.events <- ev:
		default:
			p.tb.Logf("%s: event queue full, dropped %s", p.name, name)
		}
	}
	if err := sc.Err(); err != nil {
		p.tb.Logf("%s %s: read: %v", p.name, stream, err)
	}
}

// Pid returns the process id (also its process group id).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// kill sends SIGKILL to the whole process group.
func (p *Proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// Kill ends the process group with SIGKILL now (an abrupt end: sockets
// closed by the kernel, no goodbye) and waits for it to be gone.
func (p *Proc) Kill() {
	p.tb.Helper()
	p.kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.tb.Fatalf("%s: not gone 10 s after SIGKILL", p.name)
	}
}

// stop kills the process group if still running and waits for the
// process and its output readers (so nothing logs after the test ends).
func (p *Proc) stop() {
	p.timer.Stop()
	select {
	case <-p.done:
	default:
		p.kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.tb.Errorf("%s: not gone 10 s after SIGKILL to its process group", p.name)
		}
	}
}

// Send writes v as one JSON line on the script's stdin.
func (p *Proc) Send(v any) {
	p.tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		p.tb.Fatalf("%s: encode command: %v", p.name, err)
	}
	p.tb.Logf("%s stdin: %s", p.name, b)
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.tb.Fatalf("%s: write command: %v (process %s)", p.name, err, p.state())
	}
}

// state describes how the process ended, or "running".
func (p *Proc) state() string {
	select {
	case <-p.done:
	default:
		return "running"
	}
	p.mu.Lock()
	to := p.timedOut
	p.mu.Unlock()
	s := "exited"
	if p.waitErr != nil {
		s = p.waitErr.Error()
	}
	if to {
		s += " after its timeout killed it"
	}
	return s
}

// Expect waits up to within for the next event called name and returns it.
// Events of other names that arrive meanwhile are kept for later Expect
// calls, in order. An "error" event, the process ending first, or the wait
// running out fails the test.
func (p *Proc) Expect(name string, within time.Duration) Event {
	p.tb.Helper()
	ev, err := p.expect(name, within)
	if err != nil {
		p.tb.Fatal(err)
	}
	return ev
}

func (p *Proc) expect(name string, within time.Duration) (Event, error) {
	for i, ev := range p.backlog {
		if ev.Name == name {
			p.backlog = append(p.backlog[:i:i], p.backlog[i+1:]...)
			return ev, nil
		}
		if ev.Name == "error" {
			return Event{}, fmt.Errorf("%s: waiting for %q: script reported error: %s", p.name, name, ev.Raw)
		}
	}
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				<-p.done
				return Event{}, fmt.Errorf("%s: waiting for %q: process ended (%s)", p.name, name, p.state())
			}
			if ev.Name == name {
				return ev, nil
			}
			if ev.Name == "error" {
				return Event{}, fmt.Errorf("%s: waiting for %q: script reported error: %s", p.name, name, ev.Raw)
			}
			p.backlog = append(p.backlog, ev)
		case <-deadline.C:
			return Event{}, fmt.Errorf("%s: no %q event within %v (process %s)", p.name, name, within, p.state())
		}
	}
}

// Wait waits up to within for the process to exit and returns its exit
// error (nil for status 0). Events not yet consumed stay available to
// Expect. It fails the test if the process is still running at the bound.
func (p *Proc) Wait(within time.Duration) error {
	p.tb.Helper()
	_ = p.stdin.Close()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-p.events:
			if ok {
				p.backlog = append(p.backlog, ev)
				continue
			}
			<-p.done
			p.mu.Lock()
			to := p.timedOut
			p.mu.Unlock()
			if to {
				return fmt.Errorf("%s: killed by its timeout: %v", p.name, p.waitErr)
			}
			return p.waitErr
		case <-deadline.C:
			p.tb.Fatalf("%s: still running %v after Wait began", p.name, within)
		}
	}
}

// LockFixedPorts serializes, across processes and within one, the tests
// that bind the fixed ports 8883 and 443: it takes an exclusive flock on
// /tmp/hubwire-fixed-ports.lock (waiting at most fixedPortsWait) and
// releases it when the test ends. Call it before starting the emulator on
// the fixed ports.
func LockFixedPorts(tb testing.TB) {
	tb.Helper()
	f, err := os.OpenFile(fixedPortsLock, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		tb.Fatalf("fixed-ports lock: %v", err)
	}
	deadline := time.Now().Add(fixedPortsWait)
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			tb.Fatalf("fixed-ports lock %s: %v", fixedPortsLock, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			tb.Fatalf("fixed-ports lock %s still held by another test after %v", fixedPortsLock, fixedPortsWait)
		}
		if !logged {
			tb.Logf("waiting for %s (another test holds ports 8883/443)", fixedPortsLock)
			logged = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// writeTemp writes data to name in a per-test directory and returns the path
// (e.g. the emulator's CA PEM for NODE_EXTRA_CA_CERTS or paho's tls_set).
func writeTemp(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatalf("write %s: %v", path, err)
	}
	return path
}
