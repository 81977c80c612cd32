// Command hubbench measures the IoT Hub emulator (iothub/emulator) side by
// side with mochi v2.7.9 and Debian's mosquitto 2.0.11, in one run, each
// server in its own process and every client in another:
//
//   - idle: server memory per idle TLS device connection (RSS delta of the
//     server process, and heap + stack delta for the Go servers, divided by
//     the connections held);
//   - connect: TLS connects per second with authentication (SAS for the
//     emulator, the same username and token checked as a password by mochi
//     and mosquitto);
//   - ingest: QoS 1 telemetry msgs/s, one device and many, through
//     hubwire's mqtt client with raw topics;
//   - startup: emulator.Start, cold (first start, CA generated) and warm.
//
// Usage (from bench/):
//
//	go run ./hub/cmd/hubbench                  # everything, ~10 minutes on 2 cores
//	go run ./hub/cmd/hubbench -tests connect,ingest -rounds 3
//	go run ./hub/cmd/hubbench -o ../bench/results -name hub
//
// See bench/hub/README.md for the method.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hubwire/hubwire/internal/testcert"
)

func main() {
	var (
		serve   = flag.String("serve", "", "internal: run a server child (emulator|mochi)")
		client  = flag.String("client", "", "internal: run a client child (idle|connect|ingest)")
		startup = flag.Bool("startup", false, "internal: time one emulator.Start on -datadir")

		devices = flag.Int("devices", 0, "internal: identities")
		expiry  = flag.Int64("expiry", 0, "internal: se of the device tokens")
		dataDir = flag.String("datadir", "", "internal: emulator DataDir")
		cert    = flag.String("cert", "", "internal: server certificate file")
		key     = flag.String("key", "", "internal: server key file")
		addr    = flag.String("addr", "", "internal: server address")
		caFile  = flag.String("ca", "", "internal: CA file")
		n       = flag.Int("n", 0, "internal: count")
		workers = flag.Int("workers", 0, "internal: concurrent dialers")

		tests      = flag.String("tests", "startup,idle,connect,ingest", "tests to run")
		servers    = flag.String("servers", "emulator,mochi,mosquitto", "servers to measure")
		rounds     = flag.Int("rounds", 3, "rounds of connect and ingest (servers interleaved)")
		idleRounds = flag.Int("idle-rounds", 1, "rounds of the idle test")
		idleConns  = flag.Int("idle", 10000, "idle connections held per server")
		connects   = flag.Int("connects", 3000, "connects per round")
		connWork   = flag.Int("connect-workers", 16, "concurrent dialers for connect")
		msgs       = flag.Int("msgs", 50000, "QoS 1 messages per ingest measurement")
		many       = flag.Int("many", 100, "devices of the many-device ingest")
		window     = flag.Int("window", 64, "QoS 1 messages in flight per connection")
		startups   = flag.Int("startups", 5, "cold and warm emulator starts")
		outDir     = flag.String("o", "", "directory for the raw and markdown results (empty: stdout only)")
		name       = flag.String("name", "hub", "results file name suffix")
		profile    = flag.String("profile", "", "directory for the Go servers' profiles: heap after idle, CPU during connect and ingest")
	)
	flag.Parse()
	raiseNoFile()
	var err error
	switch {
	case *serve != "":
		err = runServe(serveOpts{kind: *serve, devices: *devices, expiry: *expiry, dataDir: *dataDir, certFile: *cert, keyFile: *key})
	case *client != "":
		err = runClient(clientOpts{mode: *client, addr: *addr, caFile: *caFile, n: *n, devices: *devices,
			workers: *workers, expiry: *expiry, window: *window, payload: 256})
	case *startup:
		err = runStartup(*dataDir)
	default:
		_, err = runAll(config{
			tests: split(*tests), servers: serverNames(split(*servers)), rounds: *rounds, idleRounds: *idleRounds,
			idleConns: *idleConns, connects: *connects, connWorkers: *connWork, msgs: *msgs, many: *many,
			window: *window, startups: *startups, outDir: *outDir, name: *name, profile: *profile,
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hubbench:", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func serverNames(short []string) []string {
	var out []string
	for _, s := range short {
		switch s {
		case "emulator":
			out = append(out, srvEmulator)
		case "mochi":
			out = append(out, srvMochi)
		case "mosquitto":
			out = append(out, srvMosquitto)
		}
	}
	return out
}

// config is the runner's configuration.
type config struct {
	tests, servers                            []string
	rounds, idleRounds, idleConns, connects   int
	connWorkers, msgs, many, window, startups int
	outDir, name, profile                     string
}

// runner holds what the tests share: certificates for mochi and mosquitto,
// a scratch directory, the token expiry.
type runner struct {
	cfg    config
	tmp    string
	ca     *testcert.CA
	files  testcert.Files
	expiry int64
	recs   []record
	raw    *os.File
}

// record is one measurement (one raw JSON line).
type record struct {
	Test    string  `json:"test"`
	Server  string  `json:"server,omitempty"`
	Round   int     `json:"round"`
	Devices int     `json:"devices,omitempty"`
	N       int     `json:"n,omitempty"`
	OK      int     `json:"ok,omitempty"`
	Failed  int     `json:"failed,omitempty"`
	Secs    float64 `json:"secs,omitempty"`
	Rate    float64 `json:"rate,omitempty"`
	// ServerCPU is the server process's user+system CPU seconds over the
	// measured section.
	ServerCPU float64 `json:"server_cpu,omitempty"`
	// ClientCPU is the client process's CPU seconds (the whole client run).
	ClientCPU float64 `json:"client_cpu,omitempty"`
	// TLS and BadTokenRefused: see clientResult (connect).
	TLS             string `json:"tls,omitempty"`
	BadTokenRefused bool   `json:"bad_token_refused,omitempty"`
	RSSBefore       int64  `json:"rss_before,omitempty"`
	RSSAfter        int64  `json:"rss_after,omitempty"`
	// HeapStack* are HeapInuse+StackInuse of a Go server after two GCs.
	HeapStackBefore int64   `json:"heapstack_before,omitempty"`
	HeapStackAfter  int64   `json:"heapstack_after,omitempty"`
	StackBefore     int64   `json:"stack_before,omitempty"`
	StackAfter      int64   `json:"stack_after,omitempty"`
	GoroutinesAfter int     `json:"goroutines_after,omitempty"`
	GoroutinesBase  int     `json:"goroutines_before,omitempty"`
	StartMS         float64 `json:"start_ms,omitempty"`   // startup: emulator.Start
	ProcessMS       float64 `json:"process_ms,omitempty"` // startup: exec to ready line
	LoadStart       string  `json:"load_start,omitempty"`
	LoadEnd         string  `json:"load_end,omitempty"`
	Err             string  `json:"err,omitempty"`
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func (r *runner) add(rec record) {
	r.recs = append(r.recs, rec)
	b, _ := json.Marshal(rec)
	fmt.Fprintln(os.Stderr, string(b))
	if r.raw != nil {
		fmt.Fprintln(r.raw, string(b))
	}
}

// runAll runs the configured tests and returns their records.
func runAll(cfg config) ([]record, error) {
	tmp, err := os.MkdirTemp("", "hubbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	ca, err := testcert.NewCA(testcert.Options{Validity: 48 * time.Hour})
	if err != nil {
		return nil, err
	}
	srv, err := ca.Server()
	if err != nil {
		return nil, err
	}
	files, err := ca.WriteFiles(tmp, "server", srv)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, tmp: tmp, ca: ca, files: files, expiry: time.Now().Add(24 * time.Hour).Unix()}
	stamp := time.Now().UTC()
	var rawPath, mdPath string
	if cfg.outDir != "" {
		base := filepath.Join(cfg.outDir, stamp.Format("2006-01-02-1504")+"-"+cfg.name)
		rawPath, mdPath = base+"-raw.jsonl", base+".md"
		if r.raw, err = os.Create(rawPath); err != nil {
			return nil, err
		}
		defer r.raw.Close()
	}
	r.add(record{Test: "run", LoadStart: loadavg(), Err: ""})
	for _, t := range cfg.tests {
		switch t {
		case "startup":
			r.testStartup()
		case "idle":
			r.testIdle()
		case "connect":
			r.testConnect()
		case "ingest":
			r.testIngest()
		default:
			return nil, fmt.Errorf("unknown test %q", t)
		}
	}
	r.add(record{Test: "end", LoadEnd: loadavg()})
	md := report(r.recs, cfg, stamp)
	fmt.Print(md)
	if mdPath != "" {
		if err := os.WriteFile(mdPath, []byte(md), 0o644); err != nil {
			return nil, err
		}
		fmt.Fprintln(os.Stderr, "wrote", rawPath, "and", mdPath)
	}
	return r.recs, nil
}

// order rotates the servers by round so that no server always goes first.
func (r *runner) order(round int) []string {
	s := r.cfg.servers
	out := make([]string, 0, len(s))
	for i := range s {
		out = append(out, s[(i+round)%len(s)])
	}
	return out
}

// profPath names a profile file in cfg.profile.
func (r *runner) profPath(what, server string, round int) string {
	short, _, _ := strings.Cut(server, " ")
	return filepath.Join(r.cfg.profile, fmt.Sprintf("%s-%s-%d.pprof", what, short, round))
}

func (r *runner) clientCA(s *server) (string, error) {
	path := filepath.Join(r.tmp, fmt.Sprintf("ca-%d.pem", s.pid))
	return path, os.WriteFile(path, s.caPEM, 0o644)
}

// testIdle: per server, a fresh server process (emulator in memory), the
// baseline, cfg.idleConns connections opened by one client process and held,
// a 3 s settle, then the server's RSS (and heap + stack) again.
func (r *runner) testIdle() {
	for round := range r.cfg.idleRounds {
		for _, name := range r.order(round) {
			rec := record{Test: "idle", Server: name, Round: round, N: r.cfg.idleConns, LoadStart: loadavg()}
			func() {
				s, err := r.startServer(name, r.cfg.idleConns, "")
				if err != nil {
					rec.Err = err.Error()
					return
				}
				defer s.stop()
				ca, err := r.clientCA(s)
				if err != nil {
					rec.Err = err.Error()
					return
				}
				time.Sleep(time.Second)
				if st, ok := s.stats(); ok {
					rec.HeapStackBefore = int64(st.HeapInuse + st.StackInuse)
					rec.StackBefore = int64(st.StackInuse)
					rec.GoroutinesBase = st.Goroutines
				}
				rec.RSSBefore = procRSS(s.pid)
				c, err := startChild(os.Args[0], "-client", "idle", "-addr", s.addr, "-ca", ca,
					"-n", fmt.Sprint(r.cfg.idleConns), "-workers", "16", "-expiry", fmt.Sprint(r.expiry))
				if err != nil {
					rec.Err = err.Error()
					return
				}
				defer c.stop()
				var res clientResult
				if err := c.readJSON(&res, 10*time.Minute); err != nil {
					rec.Err = err.Error()
					return
				}
				rec.OK, rec.Failed, rec.Secs, rec.Err, rec.ClientCPU = res.OK, res.Failed, res.Secs, res.FirstErr, res.CPU
				time.Sleep(3 * time.Second)
				rec.RSSAfter = procRSS(s.pid)
				if st, ok := s.stats(); ok {
					rec.HeapStackAfter = int64(st.HeapInuse + st.StackInuse)
					rec.StackAfter = int64(st.StackInuse)
					rec.GoroutinesAfter = st.Goroutines
				}
				if r.cfg.profile != "" {
					s.command("heap " + r.profPath("idle-heap", name, round))
				}
			}()
			rec.LoadEnd = loadavg()
			r.add(rec)
		}
	}
}

// connectDevices is how many identities the connect test cycles through.
const connectDevices = 1024

// testConnect: per round and server, a fresh server process (the emulator
// with a DataDir on disk), then cfg.connects sessions by cfg.connWorkers
// concurrent dialers in one client process.
func (r *runner) testConnect() {
	for round := range r.cfg.rounds {
		for _, name := range r.order(round) {
			rec := record{Test: "connect", Server: name, Round: round, Devices: connectDevices, N: r.cfg.connects, LoadStart: loadavg()}
			func() {
				dir, err := os.MkdirTemp(r.tmp, "data-")
				if err != nil {
					rec.Err = err.Error()
					return
				}
				defer os.RemoveAll(dir)
				s, err := r.startServer(name, connectDevices, dir)
				if err != nil {
					rec.Err = err.Error()
					return
				}
				defer s.stop()
				ca, err := r.clientCA(s)
				if err != nil {
					rec.Err = err.Error()
					return
				}
				if r.cfg.profile != "" {
					s.command("cpu " + r.profPath("connect-cpu", name, round))
					defer s.command("cpu-stop")
				}
				cpu0 := procCPU(s.pid)
				c, err := startChild(os.Args[0], "-client", "connect", "-addr", s.addr, "-ca", ca,
					"-n", fmt.Sprint(r.cfg.connects), "-devices", fmt.Sprint(connectDevices),
					"-workers", fmt.Sprint(r.cfg.connWorkers), "-expiry", fmt.Sprint(r.expiry))
				if err != nil {
					rec.Err = err.Error()
					return
				}
				defer c.stop()
				var res clientResult
				if err := c.readJSON(&res, 10*time.Minute); err != nil {
					rec.Err = err.Error()
					return
				}
				rec.ServerCPU = (procCPU(s.pid) - cpu0).Seconds()
				rec.OK, rec.Failed, rec.Secs, rec.Err, rec.ClientCPU = res.OK, res.Failed, res.Secs, res.FirstErr, res.CPU
				rec.TLS, rec.BadTokenRefused = res.TLS, res.BadTokenRefused
				if res.Secs > 0 {
					rec.Rate = float64(res.OK) / res.Secs
				}
			}()
			rec.LoadEnd = loadavg()
			r.add(rec)
		}
	}
}

// testIngest: per round and server, a fresh server process (the emulator
// with a DataDir on disk, mosquitto with persistence), then QoS 1 ingest
// from one device and from cfg.many devices.
func (r *runner) testIngest() {
	for round := range r.cfg.rounds {
		for _, name := range r.order(round) {
			func() {
				dir, err := os.MkdirTemp(r.tmp, "data-")
				if err != nil {
					r.add(record{Test: "ingest", Server: name, Round: round, Err: err.Error()})
					return
				}
				defer os.RemoveAll(dir)
				s, err := r.startServer(name, r.cfg.many, dir)
				if err != nil {
					r.add(record{Test: "ingest", Server: name, Round: round, Err: err.Error()})
					return
				}
				defer s.stop()
				ca, err := r.clientCA(s)
				if err != nil {
					r.add(record{Test: "ingest", Server: name, Round: round, Err: err.Error()})
					return
				}
				for _, devs := range []int{1, r.cfg.many} {
					rec := record{Test: "ingest", Server: name, Round: round, Devices: devs, N: r.cfg.msgs, LoadStart: loadavg()}
					if r.cfg.profile != "" {
						s.command(fmt.Sprintf("cpu %s", r.profPath(fmt.Sprintf("ingest%d-cpu", devs), name, round)))
					}
					cpu0 := procCPU(s.pid)
					c, err := startChild(os.Args[0], "-client", "ingest", "-addr", s.addr, "-ca", ca,
						"-n", fmt.Sprint(r.cfg.msgs), "-devices", fmt.Sprint(devs),
						"-window", fmt.Sprint(r.cfg.window), "-expiry", fmt.Sprint(r.expiry))
					if err != nil {
						rec.Err = err.Error()
						r.add(rec)
						continue
					}
					var res clientResult
					if err := c.readJSON(&res, 10*time.Minute); err != nil {
						rec.Err = err.Error()
					}
					c.stop()
					rec.ServerCPU = (procCPU(s.pid) - cpu0).Seconds()
					if r.cfg.profile != "" {
						s.command("cpu-stop")
					}
					rec.OK, rec.Failed, rec.Secs, rec.ClientCPU = res.OK, res.Failed, res.Secs, res.CPU
					if rec.Err == "" {
						rec.Err = res.FirstErr
					}
					if res.Secs > 0 {
						rec.Rate = float64(res.OK) / res.Secs
					}
					rec.LoadEnd = loadavg()
					r.add(rec)
				}
			}()
		}
	}
}
