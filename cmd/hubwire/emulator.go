package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator"
)

// defaultDataDir is where "hubwire emulator" keeps its state unless told
// otherwise: {os.UserConfigDir}/hubwire/emulator.
func defaultDataDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no default data directory (%w): give --data-dir or --in-memory", err)
	}
	return filepath.Join(dir, "hubwire", "emulator"), nil
}

// bytesValue is a flag.Value for a size in bytes: a number with an
// optional unit (B, KB, MB, GB, TB, or KiB, MiB, GiB, TiB).
type bytesValue struct{ n int64 }

func bytesFlag(n int64) *bytesValue { return &bytesValue{n} }

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

func (v *bytesValue) String() string {
	if v == nil {
		return ""
	}
	for _, u := range byteUnits[:4] {
		if v.n >= u.mult && v.n%u.mult == 0 && (u.mult == 1<<40 || v.n%(u.mult<<10) != 0) {
			return fmt.Sprintf("%d%s", v.n/u.mult, u.suffix)
		}
	}
	return fmt.Sprint(v.n)
}

func (v *bytesValue) Set(s string) error {
	num, mult := s, int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("not a size (like 512MB or 2GiB): %q", s)
	}
	v.n = n * mult
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	*l = append(*l, s)
	return nil
}

// logFlags selects where the emulator's structured logs go.
type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(fs *flag.FlagSet, level string) {
	fs.StringVar(&l.level, "log-level", level, "emulator log `level`: debug, info, warn, error or off")
	fs.StringVar(&l.format, "log-format", "text", "emulator log `format`: text or json")
}

// logger returns the slog logger writing to w, or nil for "off".
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch l.level {
	case "off":
		return nil, nil
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, usagef("--log-level %q: want debug, info, warn, error or off", l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", l.format)
}

func emulatorCommand() *command {
	var (
		mqttAddr, httpsAddr string
		dataDir             string
		inMemory            bool
		hostName            string
		certNames           stringList
		devices             stringList
		ownerKey            string
		certFile, keyFile   string
		caFile              string
		retention           = durationFlag(24 * time.Hour)
		retentionBytes      = bytesFlag(1 << 30)
		twinOps             int
		logs                logFlags
	)
	return &command{
		name:    "emulator",
		summary: "run a local IoT Hub (MQTT/TLS on 8883, WSS and REST on 443)",
		usage:   "[flags]",
		long: "Runs a local IoT Hub that the official device SDKs use unchanged: MQTT over TLS on 127.0.0.1:8883, " +
			"MQTT over WebSocket at wss://127.0.0.1:443/$iothub/websocket and the service REST API on the same port. " +
			"State (registry, twins, C2D queues, telemetry, the CA) is kept in --data-dir, by default " +
			"{user config dir}/hubwire/emulator, and survives restarts; --in-memory keeps nothing.\n\n" +
			"It prints the addresses, the CA certificate's path, the service connection string, a device " +
			"connection string for each --device (registered if missing) and how to trust the CA from Node, " +
			"Python, C# and Go, then serves until SIGINT (Ctrl-C) or SIGTERM.\n\n" +
			"Port 443 needs root or CAP_NET_BIND_SERVICE; on other ports the official SDKs cannot reach the " +
			"hub (they dial 8883 and 443), but hubwire's own commands and Go client can.",
		example: "hubwire emulator\n" +
			"hubwire emulator --in-memory --mqtt-addr 127.0.0.1:18883 --https-addr 127.0.0.1:8443 --device dev1",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&mqttAddr, "mqtt-addr", emulator.DefaultMQTTAddr, "MQTT over TLS listen `address` (\"off\" disables it)")
			fs.StringVar(&httpsAddr, "https-addr", emulator.DefaultHTTPSAddr, "HTTPS (WebSocket and REST) listen `address` (\"off\" disables it)")
			fs.StringVar(&dataDir, "data-dir", "", "`directory` of the hub's durable state (default {user config dir}/hubwire/emulator)")
			fs.BoolVar(&inMemory, "in-memory", false, "keep all state in memory: nothing survives a restart")
			fs.StringVar(&hostName, "host-name", emulator.DefaultHostName, "the hub's host `name` in connection strings, token scopes and its certificate")
			fs.Var(&certNames, "cert-name", "extra DNS `name` or IP address for the server certificate (repeatable)")
			fs.StringVar(&certFile, "cert-file", "", "PEM `file` of the server certificate chain to use instead of a generated one (with --key-file)")
			fs.StringVar(&keyFile, "key-file", "", "PEM `file` of the server certificate's key")
			fs.StringVar(&caFile, "ca-file", "", "with --cert-file: PEM `file` of the CA clients should trust (default the chain's last certificate)")
			fs.Var(retention, "retention", "how long telemetry is kept")
			fs.Var(retentionBytes, "retention-size", "how much telemetry is kept, oldest dropped first: a `size` such as 512MB or 2GiB")
			fs.IntVar(&twinOps, "twin-ops-per-second", 0, "throttle device twin requests hub-wide to this `rate` per second, answering 429 beyond it, as IoT Hub does over its quota (0: none)")
			fs.Var(&devices, "device", "register device `id` if missing and print its connection string (repeatable)")
			fs.StringVar(&ownerKey, "owner-key", "", "base64 `key` of the iothubowner policy when first created, for a fixed service connection string (\"-\": read from stdin)")
			logs.register(fs, "info")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			if inMemory && dataDir != "" {
				return usagef("--in-memory and --data-dir exclude each other")
			}
			if retention.d <= 0 || retentionBytes.n <= 0 || twinOps < 0 {
				return usagef("--retention and --retention-size must be positive, --twin-ops-per-second not negative")
			}
			if (certFile == "") != (keyFile == "") {
				return usagef("--cert-file and --key-file go together")
			}
			if caFile != "" && certFile == "" {
				return usagef("--ca-file needs --cert-file and --key-file")
			}
			log, err := logs.logger(a.stderr)
			if err != nil {
				return err
			}
			if !inMemory && dataDir == "" {
				if dataDir, err = defaultDataDir(); err != nil {
					return err
				}
			}
			key, err := a.readSecret(ownerKey)
			if err != nil {
				return err
			}
			cfg := emulator.Config{
				HostName:  hostName,
				MQTTAddr:  mqttAddr,
				HTTPSAddr: httpsAddr,
				DataDir:   dataDir,
				CertNames: certNames,
				OwnerKey:  key,
				CertFile:  certFile,
				KeyFile:   keyFile,
				CAFile:    caFile,
				Logger:    log,

				TelemetryRetention: retention.d,
				TelemetryMaxBytes:  retentionBytes.n,
				TwinOpsPerSecond:   twinOps,
			}
			hub, err := emulator.Start(ctx, cfg)
			if err != nil {
				return startError(err)
			}
			defer hub.Close()
			caFile := hub.CAFile()
			if caFile == "" {
				// In memory: the CA still has to be somewhere a client can
				// read it; a temporary file, removed on exit.
				f, err := os.CreateTemp("", "hubwire-emulator-ca-*.pem")
				if err != nil {
					return err
				}
				caFile = f.Name()
				defer os.Remove(caFile)
				_, err = f.Write(hub.CAPEM())
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return fmt.Errorf("writing the CA certificate: %w", err)
				}
			}
			var deviceStrings [][2]string
			for _, id := range devices {
				if _, err := hub.GetDevice(id); errors.Is(err, emulator.ErrDeviceNotFound) {
					if _, err := hub.CreateDevice(ctx, emulator.Device{DeviceID: id}); err != nil {
						return fmt.Errorf("registering device %q: %w", id, err)
					}
				}
				cs, err := hub.DeviceConnectionString(id)
				if err != nil {
					return fmt.Errorf("device %q: %w", id, err)
				}
				deviceStrings = append(deviceStrings, [2]string{id, cs})
			}
			printBanner(a.stdout, hub, dataDir, caFile, deviceStrings)
			<-ctx.Done()
			fmt.Fprintln(a.stdout, "Stopping.")
			if err := hub.Close(); err != nil {
				return fmt.Errorf("closing the hub: %w", err)
			}
			fmt.Fprintln(a.stdout, "Stopped.")
			return nil
		},
	}
}

// startError adds the command line's way out to a bind failure.
func startError(err error) error {
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w; e.g. hubwire emulator --mqtt-addr 127.0.0.1:18883 --https-addr 127.0.0.1:8443", err)
	}
	return err
}

// port returns the port of a bound address, or "".
func port(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	_, p, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	return p
}

// printBanner says where the hub is and how to use it.
func printBanner(w io.Writer, hub *emulator.Hub, dataDir, caFile string, devices [][2]string) {
	state := "in memory: nothing is kept after it stops"
	if dataDir != "" {
		state = "data in " + dataDir
	}
	fmt.Fprintf(w, "IoT Hub emulator %q is running (%s).\n\n", hub.HostName(), state)
	if a := hub.MQTTAddr(); a != nil {
		fmt.Fprintf(w, "  MQTT over TLS      %s\n", a)
	}
	if a := hub.HTTPSAddr(); a != nil {
		fmt.Fprintf(w, "  MQTT over WSS      %s\n", hub.WebSocketURL())
		fmt.Fprintf(w, "  Service REST API   https://%s\n", a)
	}
	fmt.Fprintf(w, "  CA certificate     %s\n", caFile)
	fmt.Fprintf(w, "\nService connection string (policy iothubowner):\n  %s\n", hub.ServiceConnectionString())
	for _, d := range devices {
		fmt.Fprintf(w, "\nDevice %s connection string:\n  %s\n", d[0], d[1])
	}

	fmt.Fprintf(w, "\nhubwire commands in another shell:\n")
	fmt.Fprintf(w, "  export %s=%s\n", envServiceConnStr, shellQuote(hub.ServiceConnectionString()))
	fmt.Fprintf(w, "  export %s=%s\n", envCAFile, shellQuote(caFile))
	defaults := port(hub.MQTTAddr()) == "8883" && port(hub.HTTPSAddr()) == "443"
	if a := hub.HTTPSAddr(); a != nil && port(a) != "443" {
		fmt.Fprintf(w, "  export %s=https://%s\n", envServiceEndpoint, a)
	}
	if a := hub.MQTTAddr(); a != nil && port(a) != "8883" {
		fmt.Fprintf(w, "  export %s=%s\n", envMQTTAddress, a)
	}
	if a := hub.HTTPSAddr(); a != nil && port(a) != "443" {
		fmt.Fprintf(w, "  export %s=%s\n", envWSSAddress, a)
	}
	if len(devices) > 0 {
		fmt.Fprintf(w, "  export %s=%s\n", envDeviceConnStr, shellQuote(devices[0][1]))
	}

	fmt.Fprintf(w, "\nTrust the CA:\n")
	fmt.Fprintf(w, "  Node    NODE_EXTRA_CA_CERTS=%s node app.js\n", shellQuote(caFile))
	fmt.Fprintf(w, "  Python  IoTHubDeviceClient.create_from_connection_string(cs, server_verification_cert=open(%q).read())\n", caFile)
	fmt.Fprintf(w, "  C#      add it to the system's roots: sudo cp %s /usr/local/share/ca-certificates/hubwire-emulator.crt && sudo update-ca-certificates\n", shellQuote(caFile))
	fmt.Fprintf(w, "  Go      pool := x509.NewCertPool(); pool.AppendCertsFromPEM(caPEM); device.Config{RootCAs: pool, ...}\n")
	if !defaults {
		fmt.Fprintf(w, "\nNot on ports 8883 and 443: the official SDKs dial those and cannot reach this hub; hubwire's commands and Go client can.\n")
	}
	fmt.Fprintf(w, "\nReady. Press Ctrl-C to stop.\n")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
