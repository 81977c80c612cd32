package device

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// BenchmarkNodeSDKTelemetry is the reference figure of the official Azure
// IoT Node device SDK (azure-iot-device-mqtt, pinned in interop/node) on
// the same emulator and the same workload as BenchmarkTelemetry: wall and
// CPU time per message of the node process. The SDK dials the fixed port
// 8883, so the emulator child listens there, under the fixed-ports lock
// the interop tests use. Skipped without node or interop/node/node_modules.
func BenchmarkNodeSDKTelemetry(b *testing.B) {
	modules, _ := filepath.Abs("../../interop/node/node_modules")
	if _, err := os.Stat(modules); err != nil {
		b.Skip("interop/node/node_modules missing (npm ci in interop/node)")
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		b.Skip("node not installed")
	}
	lock, err := os.OpenFile("/tmp/hubwire-fixed-ports.lock", os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		b.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		b.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), "HUBWIRE_BENCH_EMULATOR=1", "HUBWIRE_BENCH_MQTT_ADDR=127.0.0.1:8883", "HUBWIRE_BENCH_DEVICES=1")
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("emulator child on 8883: %v", err)
	}
	var info hubInfo
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		b.Fatal(err)
	}
	caFile := filepath.Join(b.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte(info.CA), 0o600); err != nil {
		b.Fatal(err)
	}

	// The node process sends a fixed number of messages (b.N only counts
	// this function's calls).
	const n = 5000
	for b.Loop() {
	}
	node := exec.Command(nodeBin, "node/telemetry.js")
	node.Env = append(os.Environ(), "DEVICE_CS="+info.CS[0], "N="+strconv.Itoa(n), "INFLIGHT=64",
		"NODE_EXTRA_CA_CERTS="+caFile, "NODE_PATH="+modules)
	node.Stderr = os.Stderr
	out, err := node.Output()
	if err != nil {
		b.Fatalf("node: %v: %s", err, out)
	}
	var res struct {
		Event   string
		N       int
		WallNS  float64 `json:"wall_ns"`
		CPUNS   float64 `json:"cpu_ns"`
		Message string
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Event != "done" {
		b.Fatalf("node said %s (%v)", out, err)
	}
	b.ReportMetric(res.WallNS/float64(res.N), "wall-ns/msg")
	b.ReportMetric(res.CPUNS/float64(res.N), "cpu-ns/msg")
}
