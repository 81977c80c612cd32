package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator"
)

// startupResult is what a -startup child prints.
type startupResult struct {
	StartMS float64 `json:"start_ms"`
	Err     string  `json:"err,omitempty"`
}

// runStartup times one emulator.Start on dataDir in this fresh process
// (free loopback ports, HTTPS listener on as by default), then closes the
// hub.
func runStartup(dataDir string) error {
	t0 := time.Now()
	h, err := emulator.Start(context.Background(), emulator.Config{
		MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", DataDir: dataDir,
	})
	res := startupResult{StartMS: float64(time.Since(t0).Microseconds()) / 1000}
	if err != nil {
		res.Err = err.Error()
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return err
	}
	if h != nil {
		return h.Close()
	}
	return nil
}

// testStartup: cfg.startups times, a fresh data dir started cold (CA and
// server certificate generated, stores created), then warm on the same
// dir; each start in a new process. ProcessMS is from exec to the result
// line (it includes the Go runtime's start and the Close of nothing).
func (r *runner) testStartup() {
	for i := range r.cfg.startups {
		dir := filepath.Join(r.tmp, "startup", time.Now().Format("150405.000000"))
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			r.add(record{Test: "startup-cold", Round: i, Err: err.Error()})
			return
		}
		for _, kind := range []string{"startup-cold", "startup-warm"} {
			rec := record{Test: kind, Server: srvEmulator, Round: i, LoadStart: loadavg()}
			t0 := time.Now()
			c, err := startChild(os.Args[0], "-startup", "-datadir", dir)
			if err != nil {
				rec.Err = err.Error()
				r.add(rec)
				continue
			}
			var res startupResult
			if err := c.readJSON(&res, time.Minute); err != nil {
				rec.Err = err.Error()
			}
			rec.ProcessMS = float64(time.Since(t0).Microseconds()) / 1000
			c.stop()
			rec.StartMS = res.StartMS
			if rec.Err == "" {
				rec.Err = res.Err
			}
			rec.LoadEnd = loadavg()
			r.add(rec)
		}
		_ = os.RemoveAll(dir)
	}
}
