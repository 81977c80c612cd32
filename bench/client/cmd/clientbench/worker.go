package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// snapshot is the process's resource counters at one instant.
type snapshot struct {
	t      time.Time
	cpu    time.Duration
	allocs uint64
	bytes  uint64
	writes uint64
	csw    uint64
}

func take() snapshot {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return snapshot{
		t:      time.Now(),
		cpu:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		allocs: ms.Mallocs,
		bytes:  ms.TotalAlloc,
		writes: syscw(),
		csw:    uint64(ru.Nvcsw + ru.Nivcsw),
	}
}

// syscw returns the process's write-like system calls from /proc/self/io.
func syscw() uint64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("syscw: ")); ok {
			n, _ := strconv.ParseUint(string(v), 10, 64)
			return n
		}
	}
	return 0
}

func (r *result) fill(a, b snapshot) {
	r.Seconds = b.t.Sub(a.t).Seconds()
	r.CPU = (b.cpu - a.cpu).Seconds()
	r.Allocs = b.allocs - a.allocs
	r.Bytes = b.bytes - a.bytes
	r.Writes = b.writes - a.writes
	r.Switches = b.csw - a.csw
}

// worker runs one measurement and prints its result as JSON.
func worker() error {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	r := result{Client: *flagClient, Mode: *flagMode, N: *flagN}
	payload := bytes.Repeat([]byte{'x'}, payloadSize)
	id := fmt.Sprintf("cb-%s-%d", *flagMode, os.Getpid())
	var err error
	switch *flagMode {
	case "pub0", "pub1":
		err = measurePublish(ctx, &r, id, payload)
	case "sub0", "sub1":
		err = measureReceive(ctx, &r, id)
	case "feed0", "feed1":
		err = feed(ctx, id, payload)
	case "idle":
		err = measureIdle(ctx, &r, id)
	default:
		err = fmt.Errorf("unknown mode %q", *flagMode)
	}
	if err != nil {
		r.Err = err.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

func measurePublish(ctx context.Context, r *result, id string, payload []byte) error {
	c, err := dial(ctx, *flagClient, *flagBroker, id)
	if err != nil {
		return err
	}
	defer c.close()
	// Warm up pools and buffers outside the measurement.
	if *flagMode == "pub0" {
		err = c.publish0(ctx, *flagTopic+"/warm", payload, 2000)
	} else {
		err = c.publish1(ctx, *flagTopic+"/warm", payload, 2000, window)
	}
	if err != nil {
		return err
	}
	runtime.GC()
	if *flagProfile != "" {
		f, err := os.Create(*flagProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	a := take()
	if *flagMode == "pub0" {
		err = c.publish0(ctx, *flagTopic, payload, *flagN)
	} else {
		err = c.publish1(ctx, *flagTopic, payload, *flagN, window)
	}
	b := take()
	r.fill(a, b)
	return err
}

// measureReceive subscribes, prints READY (the parent then starts a
// publisher) and counts messages until it has N or none came for 2 s.
func measureReceive(ctx context.Context, r *result, id string) error {
	c, err := dial(ctx, *flagClient, *flagBroker, id)
	if err != nil {
		return err
	}
	defer c.close()
	var count atomic.Int64
	var first, last atomic.Int64 // unix nanoseconds
	n := int64(*flagN)
	all := make(chan struct{})
	onMsg := func() {
		now := time.Now().UnixNano()
		k := count.Add(1)
		if k == 1 {
			first.Store(now)
		}
		last.Store(now)
		if k == n {
			close(all)
		}
	}
	qos := byte(0)
	if *flagMode == "sub1" {
		qos = 1
	}
	if err := c.subscribe(ctx, *flagTopic, qos, onMsg); err != nil {
		return err
	}
	runtime.GC()
	if *flagProfile != "" {
		f, err := os.Create(*flagProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	a := take()
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "READY")
	w.Flush()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	prev, idleSince := int64(0), time.Now()
wait:
	for {
		select {
		case <-all:
			break wait
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			k := count.Load()
			if k != prev {
				prev, idleSince = k, time.Now()
			} else if time.Since(idleSince) > time.Second && (k > 0 || time.Since(idleSince) > 20*time.Second) {
				break wait
			}
		}
	}
	b := take()
	r.fill(a, b)
	r.Received = int(min(count.Load(), n)) // a QoS 0 feed ends with one QoS 1 marker
	if r.Received > 1 {
		r.Seconds = time.Duration(last.Load() - first.Load()).Seconds()
	}
	return nil
}

// feed publishes N messages with hubwire as fast as it can.
func feed(ctx context.Context, id string, payload []byte) error {
	c, err := dial(ctx, "hubwire", *flagBroker, id)
	if err != nil {
		return err
	}
	defer c.close()
	if *flagMode == "feed0" {
		return c.publish0(ctx, *flagTopic, payload, *flagN)
	}
	return c.publish1(ctx, *flagTopic, payload, *flagN, window)
}

// measureIdle opens N idle connections and reports heap and stack bytes and
// goroutines per connection.
func measureIdle(ctx context.Context, r *result, id string) error {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc + ms.StackInuse
	g0 := runtime.NumGoroutine()
	conns := make([]client, 0, *flagN)
	defer func() {
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(c.close)
		}
		wg.Wait()
	}()
	for i := range *flagN {
		c, err := dial(ctx, *flagClient, *flagBroker, fmt.Sprintf("%s-%d", id, i))
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	time.Sleep(300 * time.Millisecond)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	after := ms.HeapAlloc + ms.StackInuse
	r.MemPerConn = (float64(after) - float64(before)) / float64(*flagN)
	r.GoroutinesPerConn = float64(runtime.NumGoroutine()-g0) / float64(*flagN)
	runtime.KeepAlive(conns)
	return nil
}
