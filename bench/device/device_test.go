// Package device compares hubwire's IoT Hub device client
// (github.com/hubwire/hubwire/iothub/device) with
// github.com/amenzhinsky/iothub v0.9.1 (on paho.mqtt.golang), side by side
// in one run, against the emulator.
//
// The emulator runs in a child process (this test binary re-executed), so
// the benchmark process holds only the clients: its CPU time
// (CLOCK_PROCESS_CPUTIME_ID), its allocations and its heap are the
// clients' own.
//
//	go test -run '^$' -bench . -benchtime 20000x ./device/   (from bench/)
package device

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	amzdevice "github.com/amenzhinsky/iothub/iotdevice"
	amzmqtt "github.com/amenzhinsky/iothub/iotdevice/transport/mqtt"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubwire/hubwire/iothub/device"
	"github.com/hubwire/hubwire/iothub/emulator"
)

// hubInfo is what the emulator child tells the benchmark process.
type hubInfo struct {
	MQTT string   // host:port of the TLS listener
	Host string   // the hub name (username, SAS resource, SNI)
	CA   string   // PEM of the CA
	CS   []string // device connection strings d0, d1, …
}

// fleetSize is the number of devices of BenchmarkFleet
// (HUBWIRE_FLEET overrides it).
var fleetSize = func() int {
	if n, err := strconv.Atoi(os.Getenv("HUBWIRE_FLEET")); err == nil && n > 0 {
		return n
	}
	return 5000
}()

// devices is how many devices the emulator child registers.
var devices = 1200 + fleetSize

func TestMain(m *testing.M) {
	if os.Getenv("HUBWIRE_BENCH_EMULATOR") == "1" {
		os.Exit(runEmulator())
	}
	os.Exit(m.Run())
}

// runEmulator serves an in-memory emulator until stdin closes.
func runEmulator() int {
	ctx := context.Background()
	addr := "127.0.0.1:0"
	if a := os.Getenv("HUBWIRE_BENCH_MQTT_ADDR"); a != "" {
		addr = a
	}
	count := devices
	if n, err := strconv.Atoi(os.Getenv("HUBWIRE_BENCH_DEVICES")); err == nil {
		count = n
	}
	h, err := emulator.Start(ctx, emulator.Config{MQTTAddr: addr, HTTPSAddr: "127.0.0.1:0", TelemetryMaxBytes: 256 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer h.Close()
	info := hubInfo{MQTT: h.MQTTAddr().String(), Host: h.HostName(), CA: string(h.CAPEM())}
	for i := range count {
		id := "d" + strconv.Itoa(i)
		if _, err := h.CreateDevice(ctx, emulator.Device{DeviceID: id}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cs, _ := h.DeviceConnectionString(id)
		info.CS = append(info.CS, cs)
	}
	b, _ := json.Marshal(info)
	fmt.Println(string(b))
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	return 0
}

var (
	hubOnce sync.Once
	hub     hubInfo
	hubPool *x509.CertPool
	hubErr  error
	// hubStdin is held for the life of the process: the child ends when
	// it closes (at exit; a dropped pipe would be closed by its finalizer).
	hubStdin io.WriteCloser
	next     atomic.Int32
)

// startHub starts the emulator child once per benchmark process.
func startHub(tb testing.TB) {
	hubOnce.Do(func() {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
		cmd.Env = append(os.Environ(), "HUBWIRE_BENCH_EMULATOR=1")
		cmd.Stderr = os.Stderr
		hubStdin, _ = cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if hubErr = cmd.Start(); hubErr != nil {
			return
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			hubErr = fmt.Errorf("emulator child: %w", err)
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			return
		}
		if hubErr = json.Unmarshal([]byte(line), &hub); hubErr != nil {
			return
		}
		hubPool = x509.NewCertPool()
		hubPool.AppendCertsFromPEM([]byte(hub.CA))
	})
	if hubErr != nil {
		tb.Fatal(hubErr)
	}
}

// nextDevice returns a connection string no other client of this process
// has used.
func nextDevice(tb testing.TB) string {
	i := int(next.Add(1)) - 1
	if i >= len(hub.CS) {
		tb.Fatalf("out of devices (%d)", len(hub.CS))
	}
	return hub.CS[i]
}

// ours connects a hubwire client with the given queue (in-flight window).
func ours(tb testing.TB, queue int) *device.Client {
	c, err := device.New(device.Config{ConnectionString: nextDevice(tb), Address: hub.MQTT, RootCAs: hubPool, NoProxy: true, QueueSize: queue})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		tb.Fatal(err)
	}
	return c
}

// theirs connects an amenzhinsky/iothub client to the emulator: its broker
// URL and TLS roots are replaced, the rest of its options kept.
func theirs(tb testing.TB) *amzdevice.Client {
	tr := amzmqtt.New(amzmqtt.WithClientOptionsConfig(func(o *paho.ClientOptions) {
		u, _ := url.Parse("tls://" + hub.MQTT)
		o.Servers = []*url.URL{u}
		cfg := o.TLSConfig
		if cfg == nil {
			cfg = &tls.Config{}
		}
		cfg.RootCAs = hubPool
		cfg.ServerName = hub.Host
		o.SetTLSConfig(cfg)
	}))
	c, err := amzdevice.NewFromConnectionString(tr, nextDevice(tb))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		tb.Fatal(err)
	}
	return c
}

// processCPU returns the CPU time this process has used, in nanoseconds.
func processCPU() int64 {
	var ts syscall.Timespec
	const clockProcessCPUTimeID = 2
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return -1
	}
	return ts.Nano()
}

const inFlight = 64

// BenchmarkTelemetry sends 256-byte messages with two application
// properties at QoS 1 with 64 in flight. Metrics: ns/op is wall time per
// message (msgs/s = 1e9 / ns/op), cpu-ns/msg the client process's CPU per
// message, allocs/op the client's allocations per message.
func BenchmarkTelemetry(b *testing.B) {
	startHub(b)
	payload := make([]byte, 256)
	b.Run("client=hubwire", func(b *testing.B) {
		c := ours(b, inFlight)
		defer c.Close(context.Background())
		ctx := context.Background()
		m := &device.Message{Payload: payload}
		m.Properties.Add("sensor", "temp")
		m.Properties.Add("unit", "C")
		var acked atomic.Int64
		var failed atomic.Int64
		allDone := make(chan struct{}, 1)
		var target atomic.Int64
		done := func(err error) {
			if err != nil {
				failed.Add(1)
			}
			if acked.Add(1) == target.Load() {
				allDone <- struct{}{}
			}
		}
		target.Store(-1)
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		cpu := processCPU()
		b.ResetTimer()
		n := 0
		for b.Loop() {
			n++
			if err := c.SendAsync(ctx, m, done); err != nil {
				b.Fatal(err)
			}
		}
		target.Store(int64(n))
		if acked.Load() < int64(n) {
			<-allDone
		}
		b.StopTimer()
		b.ReportMetric(float64(processCPU()-cpu)/float64(n), "cpu-ns/msg")
		if failed.Load() > 0 {
			b.Fatalf("%d sends failed", failed.Load())
		}
	})
	b.Run("client=amenzhinsky", func(b *testing.B) {
		c := theirs(b)
		defer c.Close()
		ctx := context.Background()
		var wg sync.WaitGroup
		var failed atomic.Int64
		work := make(chan struct{}, inFlight)
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		for range inFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					if err := c.SendEvent(ctx, payload, amzdevice.WithSendProperty("sensor", "temp"), amzdevice.WithSendProperty("unit", "C")); err != nil {
						failed.Add(1)
					}
				}
			}()
		}
		cpu := processCPU()
		b.ResetTimer()
		n := 0
		for b.Loop() {
			n++
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(processCPU()-cpu)/float64(n), "cpu-ns/msg")
		if failed.Load() > 0 {
			b.Fatalf("%d sends failed", failed.Load())
		}
	})
}

// heapNow returns the heap and stack the process holds after a GC.
func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// idleCost opens conns idle TLS device connections with open and returns
// the client memory (heap and goroutine stacks) each one holds.
func idleCost[C any](b *testing.B, open func(testing.TB) C, closeAll func([]C)) float64 {
	const conns = 200
	before := heapNow()
	cs := make([]C, conns)
	for i := range cs {
		cs[i] = open(b)
	}
	time.Sleep(500 * time.Millisecond) // let connect-time exchanges (twin sync) finish
	after := heapNow()
	closeAll(cs)
	return float64(int64(after)-int64(before)) / conns
}

var idle = map[string]float64{}

// BenchmarkIdleConnection reports the client memory an idle TLS device
// connection holds (B/conn), measured once per client over 200
// connections (run it with -benchtime 1x; later iterations report the
// same figure).
func BenchmarkIdleConnection(b *testing.B) {
	startHub(b)
	b.Run("client=hubwire", func(b *testing.B) {
		if _, ok := idle["hubwire"]; !ok {
			idle["hubwire"] = idleCost(b, func(tb testing.TB) *device.Client { return ours(tb, 0) }, func(cs []*device.Client) {
				for _, c := range cs {
					c.Close(context.Background())
				}
			})
		}
		for b.Loop() {
		}
		b.ReportMetric(idle["hubwire"], "B/conn")
	})
	b.Run("client=amenzhinsky", func(b *testing.B) {
		if _, ok := idle["amenzhinsky"]; !ok {
			idle["amenzhinsky"] = idleCost(b, theirs, func(cs []*amzdevice.Client) {
				for _, c := range cs {
					c.Close()
				}
			})
		}
		for b.Loop() {
		}
		b.ReportMetric(idle["amenzhinsky"], "B/conn")
	})
}

// BenchmarkFleet connects fleetSize devices from this one process (64
// connecting at a time), then has every device send 256-byte QoS 1
// messages for a few seconds. Metrics: connects/s, B/device (client heap
// and stacks), msgs/s (all devices together).
func BenchmarkFleet(b *testing.B) {
	startHub(b)
	if fleetSize > len(hub.CS)-int(next.Load()) {
		b.Skip("not enough devices left in this process; run BenchmarkFleet on its own")
	}
	var connRate, perDevice, msgRate float64
	for b.Loop() {
		if connRate != 0 {
			continue
		}
		before := heapNow()
		cs := make([]*device.Client, fleetSize)
		start := time.Now()
		var wg sync.WaitGroup
		idx := make(chan int)
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range idx {
					cs[i] = ours(b, 8)
				}
			}()
		}
		for i := range cs {
			idx <- i
		}
		close(idx)
		wg.Wait()
		connRate = float64(fleetSize) / time.Since(start).Seconds()
		time.Sleep(time.Second)
		perDevice = float64(int64(heapNow())-int64(before)) / float64(fleetSize)

		var sent atomic.Int64
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start = time.Now()
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := &device.Message{Payload: make([]byte, 256)}
				for ctx.Err() == nil {
					if c.Send(ctx, m) == nil {
						sent.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		msgRate = float64(sent.Load()) / time.Since(start).Seconds()
		cancel()
		for _, c := range cs {
			c.Close(context.Background())
		}
	}
	b.ReportMetric(connRate, "connects/s")
	b.ReportMetric(perDevice, "B/device")
	b.ReportMetric(msgRate, "msgs/s")
}
