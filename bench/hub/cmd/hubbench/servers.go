package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hubwire/hubwire/internal/mosquitto"
	"github.com/hubwire/hubwire/iothub/emulator"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Server names as they appear in the results.
const (
	srvEmulator  = "emulator"
	srvMochi     = "mochi v2.7.9"
	srvMosquitto = "mosquitto 2.0.11"
)

// serverInfo is what a server child prints once it is listening.
type serverInfo struct {
	Addr string `json:"addr"`
	CA   string `json:"ca,omitempty"` // PEM; the emulator makes its own CA
	Err  string `json:"err,omitempty"`
}

// goStats is a Go server's own view of its memory, after two GCs.
type goStats struct {
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	Goroutines int    `json:"goroutines"`
}

// serveOpts configures a server child (flags -serve …).
type serveOpts struct {
	kind     string // "emulator" or "mochi"
	devices  int
	expiry   int64 // se of every device token (mochi's ledger holds the tokens)
	dataDir  string
	certFile string
	keyFile  string
}

// runServe is a server child process: it starts the emulator or mochi on a
// free loopback TLS port, prints a serverInfo line, then answers "stats"
// lines on stdin with a goStats line, and stops at end of stdin.
func runServe(o serveOpts) error {
	out := json.NewEncoder(os.Stdout)
	var stop func() error
	var info serverInfo
	switch o.kind {
	case "emulator":
		h, err := startEmulator(o)
		if err != nil {
			_ = out.Encode(serverInfo{Err: err.Error()})
			return err
		}
		stop = h.Close
		info = serverInfo{Addr: h.MQTTAddr().String(), CA: string(h.CAPEM())}
	case "mochi":
		s, addr, err := startMochi(o)
		if err != nil {
			_ = out.Encode(serverInfo{Err: err.Error()})
			return err
		}
		stop = s.Close
		info = serverInfo{Addr: addr}
	default:
		return fmt.Errorf("unknown server %q", o.kind)
	}
	if err := out.Encode(info); err != nil {
		return err
	}
	sc := bufio.NewScanner(os.Stdin)
	var cpuProf *os.File
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		var reply any = struct{}{}
		switch cmd {
		case "stats":
			runtime.GC()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			reply = goStats{HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Goroutines: runtime.NumGoroutine()}
		case "heap": // write a heap profile (after a GC) to arg
			runtime.GC()
			if f, err := os.Create(arg); err == nil {
				_ = pprof.WriteHeapProfile(f)
				_ = f.Close()
			}
		case "cpu": // start a CPU profile into arg
			if f, err := os.Create(arg); err == nil {
				if pprof.StartCPUProfile(f) == nil {
					cpuProf = f
				} else {
					_ = f.Close()
				}
			}
		case "cpu-stop":
			if cpuProf != nil {
				pprof.StopCPUProfile()
				_ = cpuProf.Close()
				cpuProf = nil
			}
		}
		if err := out.Encode(reply); err != nil {
			break
		}
	}
	return stop()
}

// startEmulator starts the hub on a free TLS port (WebSocket/HTTPS off) and
// registers devices d0… with the bench's fixed key.
func startEmulator(o serveOpts) (*emulator.Hub, error) {
	ctx := context.Background()
	h, err := emulator.Start(ctx, emulator.Config{
		MQTTAddr: "127.0.0.1:0", HTTPSAddr: "off", DataDir: o.dataDir,
	})
	if err != nil {
		return nil, err
	}
	for i := range o.devices {
		_, err := h.CreateDevice(ctx, emulator.Device{
			DeviceID: deviceID(i),
			Authentication: emulator.Authentication{
				Type:         emulator.AuthSAS,
				SymmetricKey: emulator.SymmetricKey{PrimaryKey: deviceKey, SecondaryKey: deviceKey2},
			},
		})
		if err != nil && !strings.Contains(err.Error(), "exists") {
			_ = h.Close()
			return nil, err
		}
	}
	return h, nil
}

// startMochi starts mochi with one TLS listener and a user ledger holding
// every device's username and token (mochi compares passwords as strings).
func startMochi(o serveOpts) (*mochi.Server, string, error) {
	cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
	if err != nil {
		return nil, "", err
	}
	users := make(auth.Users, o.devices)
	for i := range o.devices {
		u := username(deviceID(i))
		users[u] = auth.UserRule{Username: auth.RString(u), Password: auth.RString(token(deviceID(i), o.expiry))}
	}
	s := mochi.New(&mochi.Options{InlineClient: false, Logger: slog.New(slog.DiscardHandler)})
	if err := s.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{Users: users}}); err != nil {
		return nil, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "tls", Address: addr, TLSConfig: tc})); err != nil {
		return nil, "", err
	}
	if err := s.Serve(); err != nil {
		return nil, "", err
	}
	return s, addr, waitAccept(addr, 10*time.Second)
}

// server is a running server process seen from the runner.
type server struct {
	name  string
	addr  string
	caPEM []byte
	pid   int
	child *child            // Go servers: stats over stdin/stdout
	mosq  *mosquitto.Broker // mosquitto
	stop  func()
}

// command sends a profiling command to a Go server and waits for its
// reply; mosquitto ignores them.
func (s *server) command(line string) {
	if s.child == nil {
		return
	}
	var v struct{}
	if s.child.send(line) == nil {
		_ = s.child.readJSON(&v, time.Minute)
	}
}

// stats asks a Go server for its heap and stack; mosquitto has none.
func (s *server) stats() (goStats, bool) {
	if s.child == nil {
		return goStats{}, false
	}
	var st goStats
	if err := s.child.send("stats"); err != nil {
		return goStats{}, false
	}
	if err := s.child.readJSON(&st, 30*time.Second); err != nil {
		return goStats{}, false
	}
	return st, true
}

// startServer starts one server process for a test.
//   - devices: identities the server knows (emulator registry, mochi
//     ledger, mosquitto password file);
//   - dataDir: the emulator's DataDir ("" = in memory); for mosquitto a
//     non-empty dataDir turns persistence on.
func (r *runner) startServer(name string, devices int, dataDir string) (*server, error) {
	switch name {
	case srvEmulator, srvMochi:
		kind := "emulator"
		if name == srvMochi {
			kind = "mochi"
		}
		c, err := startChild(os.Args[0], "-serve", kind, "-devices", strconv.Itoa(devices),
			"-expiry", strconv.FormatInt(r.expiry, 10), "-datadir", dataDir,
			"-cert", r.files.CertFile, "-key", r.files.KeyFile)
		if err != nil {
			return nil, err
		}
		var info serverInfo
		if err := c.readJSON(&info, 5*time.Minute); err != nil {
			c.stop()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if info.Err != "" {
			c.stop()
			return nil, fmt.Errorf("%s: %s", name, info.Err)
		}
		ca := []byte(info.CA)
		if len(ca) == 0 {
			ca = r.ca.RootPEM()
		}
		return &server{name: name, addr: info.Addr, caPEM: ca, pid: c.cmd.Process.Pid, child: c, stop: c.stop}, nil
	case srvMosquitto:
		bin, err := mosquitto.Path()
		if err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp(r.tmp, "mosquitto-")
		if err != nil {
			return nil, err
		}
		pw, err := r.passwordFile(devices)
		if err != nil {
			return nil, err
		}
		m, err := mosquitto.New(bin, dir, mosquitto.Options{
			TLS:         &mosquitto.TLSFiles{CAFile: r.files.CAFile, CertFile: r.files.CertFile, KeyFile: r.files.KeyFile},
			Persistence: dataDir != "",
			Extra:       "password_file " + pw + "\nset_tcp_nodelay true\nmax_keepalive 65535\n",
		})
		if err != nil {
			return nil, err
		}
		if err := m.Start(); err != nil {
			return nil, fmt.Errorf("mosquitto: %w (log: %s)", err, m.LogTail(500))
		}
		return &server{name: name, addr: m.TLSAddr, caPEM: r.ca.RootPEM(), pid: m.Pid(), mosq: m,
			stop: func() { _ = m.Stop() }}, nil
	}
	return nil, fmt.Errorf("unknown server %q", name)
}

// passwordFile writes (once per device count) mosquitto's password file:
// every device's username and token, hashed by mosquitto_passwd -U
// (PBKDF2-SHA512, mosquitto's own format).
func (r *runner) passwordFile(devices int) (string, error) {
	path := fmt.Sprintf("%s/passwd-%d", r.tmp, devices)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	var b strings.Builder
	for i := range devices {
		id := deviceID(i)
		b.WriteString(username(id) + ":" + token(id, r.expiry) + "\n")
	}
	if err := os.WriteFile(path+".tmp", []byte(b.String()), 0o600); err != nil {
		return "", err
	}
	cmd := exec.Command("mosquitto_passwd", "-U", path+".tmp")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("mosquitto_passwd: %v: %s", err, out)
	}
	return path, os.Rename(path+".tmp", path)
}

// procRSS returns a process's resident set size in bytes.
func procRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return -1
}

// procCPU returns a process's user + system CPU time so far.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// raiseNoFile raises RLIMIT_NOFILE to the hard limit; children inherit it.
func raiseNoFile() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	l.Cur = l.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Cur
}
