// Command clientbench compares MQTT client libraries — hubwire's mqtt,
// paho.mqtt.golang v1.5.1 and paho.golang v0.23.0 (autopaho) — against the
// same brokers in one run: Debian's mosquitto and mochi v2.7.9, each in its
// own process. Every client runs in its own child process (this program
// re-executed with -worker), so CPU time from getrusage, allocations from
// runtime.MemStats and write syscalls from /proc/self/io belong to that
// client alone. It prints markdown tables.
//
//	cd bench && go run ./client/cmd/clientbench
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"
)

var (
	flagWorker  = flag.Bool("worker", false, "internal: run one client measurement")
	flagMochi   = flag.String("mochi", "", "internal: run a mochi broker on this address")
	flagClient  = flag.String("client", "hubwire", "client library (worker)")
	flagBroker  = flag.String("broker", "", "broker address (worker)")
	flagMode    = flag.String("mode", "", "pub0, pub1, sub0, sub1, feed0, feed1, idle (worker)")
	flagN       = flag.Int("n", 0, "messages (worker)")
	flagTopic   = flag.String("topic", "bench", "topic (worker)")
	flagPub0    = flag.Int("pub0", 200_000, "QoS 0 messages to publish")
	flagPub1    = flag.Int("pub1", 50_000, "QoS 1 messages to publish")
	flagSub0    = flag.Int("sub0", 100_000, "QoS 0 messages to receive")
	flagSub1    = flag.Int("sub1", 50_000, "QoS 1 messages to receive")
	flagIdle    = flag.Int("idle", 50, "idle connections per client for the memory figure")
	flagModes   = flag.String("modes", "pub0,pub1,sub0,sub1,idle", "measurements to run")
	flagProfile = flag.String("cpuprofile", "", "write a CPU profile of each measured section (worker: to this file; orchestrator: to this prefix + client + mode)")
	flagRounds  = flag.Int("rounds", 3, "publish measurements per client and broker (the median is reported)")
	flagClients = flag.String("clients", strings.Join(clientNames, ","), "clients to compare")
	flagBrokers = flag.String("brokers", "mosquitto,mochi", "brokers to use")
)

const payloadSize = 256
const window = 64

func main() {
	flag.Parse()
	var err error
	switch {
	case *flagMochi != "":
		err = runMochi(*flagMochi)
	case *flagWorker:
		err = worker()
	default:
		err = orchestrate()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clientbench:", err)
		os.Exit(1)
	}
}

// result is one worker's measurement, printed as a JSON line.
type result struct {
	Client, Broker, Mode string
	N, Received          int
	Seconds              float64 // wall time of the measured section
	CPU                  float64 // user+system seconds of the process in it
	Allocs, Bytes        uint64  // runtime.MemStats deltas
	Writes               uint64  // write syscalls (/proc/self/io syscw)
	Switches             uint64  // context switches, voluntary and involuntary (getrusage)
	MemPerConn           float64 // idle: heap+stack bytes per connection
	GoroutinesPerConn    float64 // idle
	Err                  string
}

func (r result) perMsg(v uint64) float64 {
	if r.N == 0 {
		return 0
	}
	n := r.N
	if r.Received > 0 {
		n = r.Received
	}
	return float64(v) / float64(n)
}

func (r result) rate() float64 {
	n := r.N
	if r.Received > 0 {
		n = r.Received
	}
	if r.Seconds == 0 {
		return 0
	}
	return float64(n) / r.Seconds
}

func (r result) cpuPer100k() float64 {
	n := r.N
	if r.Received > 0 {
		n = r.Received
	}
	if n == 0 {
		return 0
	}
	return r.CPU * 100_000 / float64(n)
}

func orchestrate() error {
	dir, err := os.MkdirTemp("", "clientbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("clientbench: %s, %s/%s, %d CPUs, %s\n\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	clients := strings.Split(*flagClients, ",")
	var all []result
	for _, bname := range strings.Split(*flagBrokers, ",") {
		var b *broker
		switch bname {
		case "mosquitto":
			b, err = startMosquitto(dir)
		case "mochi":
			b, err = startMochi()
		default:
			err = fmt.Errorf("unknown broker %q", bname)
		}
		if err != nil {
			return err
		}
		// Publish runs are repeated, clients interleaved, and the median
		// kept: the machine is shared and a single run is noisy.
		for _, mode := range []string{"pub0", "pub1"} {
			if !wanted(mode) {
				continue
			}
			for _, c := range clients {
				if receiveOnly[c] {
					continue
				}
				var rs []result
				for range *flagRounds {
					rs = append(rs, measure(b, c, mode))
				}
				all = append(all, median(rs))
			}
		}
		// Receive runs too are repeated with the clients interleaved, and
		// the median (by CPU per message) kept.
		for _, mode := range []string{"sub0", "sub1"} {
			if !wanted(mode) {
				continue
			}
			rs := map[string][]result{}
			for range *flagRounds {
				for _, c := range clients {
					rs[c] = append(rs[c], measure(b, c, mode))
				}
			}
			for _, c := range clients {
				all = append(all, medianCPU(rs[c]))
			}
		}
		if wanted("idle") {
			for _, c := range clients {
				if !receiveOnly[c] {
					all = append(all, measure(b, c, "idle"))
				}
			}
		}
		b.stop()
	}
	printTables(os.Stdout, all, clients)
	return nil
}

func wanted(mode string) bool {
	for m := range strings.SplitSeq(*flagModes, ",") {
		if m == mode {
			return true
		}
	}
	return false
}

func measure(b *broker, c, mode string) result {
	r := runOne(b, c, mode)
	r.Broker = b.name
	if r.Err != "" {
		fmt.Fprintf(os.Stderr, "%s %s %s: %s\n", b.name, c, mode, r.Err)
	}
	return r
}

// median returns the result with the median rate among the successful ones.
func median(rs []result) result {
	ok := rs[:0:0]
	for _, r := range rs {
		if r.Err == "" {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return rs[0]
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].rate() < ok[j].rate() })
	return ok[len(ok)/2]
}

// medianCPU returns the result with the median CPU per message among the
// successful ones.
func medianCPU(rs []result) result {
	ok := rs[:0:0]
	for _, r := range rs {
		if r.Err == "" {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return rs[0]
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].cpuPer100k() < ok[j].cpuPer100k() })
	return ok[len(ok)/2]
}

func modeN(mode string) int {
	switch mode {
	case "pub0":
		return *flagPub0
	case "pub1":
		return *flagPub1
	case "sub0":
		return *flagSub0
	case "sub1":
		return *flagSub1
	case "idle":
		return *flagIdle
	}
	return 0
}

func workerCmd(ctx context.Context, b *broker, client, mode string, n int, topic string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-worker", "-client", client, "-broker", b.addr, "-mode", mode,
		"-n", fmt.Sprint(n), "-topic", topic)
	if *flagProfile != "" && !strings.HasPrefix(mode, "feed") {
		// Profile the measured workers: one file per client and mode.
		cmd.Args = append(cmd.Args, "-cpuprofile", fmt.Sprintf("%s.%s.%s", *flagProfile, client, mode))
	}
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	return cmd
}

var runSeq int

// runOne runs one measurement in a child process (two for receive runs:
// the measured subscriber and a hubwire publisher feeding it).
func runOne(b *broker, client, mode string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	runSeq++
	topic := fmt.Sprintf("bench/%d", runSeq)
	n := modeN(mode)
	fail := func(err error) result { return result{Client: client, Mode: mode, N: n, Err: err.Error()} }
	cmd := workerCmd(ctx, b, client, mode, n, topic)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	sc := bufio.NewScanner(out)
	var feeder *exec.Cmd
	var res result
	got := false
	for sc.Scan() {
		line := sc.Text()
		if line == "READY" {
			feedMode := "feed0"
			if mode == "sub1" {
				feedMode = "feed1"
			}
			feeder = workerCmd(ctx, b, "hubwire", feedMode, n, topic)
			feeder.Stdout = io.Discard
			if err := feeder.Start(); err != nil {
				return fail(err)
			}
			continue
		}
		if err := json.Unmarshal([]byte(line), &res); err == nil {
			got = true
		}
	}
	werr := cmd.Wait()
	if feeder != nil {
		_ = feeder.Wait()
	}
	if !got {
		if werr == nil {
			werr = fmt.Errorf("no result")
		}
		return fail(werr)
	}
	return res
}
