package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hubwire/hubwire/iothub/device"
	"github.com/hubwire/hubwire/iothub/service"
)

// Environment variables the commands read. The connection string names
// are the ones the Azure IoT SDK samples use, so a shell set up for them
// works here unchanged.
const (
	// envServiceConnStr is a service (shared access policy) connection
	// string: device, twin show|set-desired, method, c2d and monitor.
	envServiceConnStr = "IOTHUB_CONNECTION_STRING"
	// envDeviceConnStr is a device or module connection string: send,
	// listen, twin get|report.
	envDeviceConnStr = "IOTHUB_DEVICE_CONNECTION_STRING"
	// envCAFile is a PEM file of certificate authorities to trust besides
	// the system's: the emulator's CA.
	envCAFile = "HUBWIRE_CA_FILE"
	// envServiceEndpoint is the base URL of the service API when it is not
	// https://{HostName} (an emulator on a port other than 443).
	envServiceEndpoint = "HUBWIRE_SERVICE_ENDPOINT"
	// envMQTTAddress is the host:port device commands dial for MQTT over
	// TLS when it is not {HostName}:8883.
	envMQTTAddress = "HUBWIRE_MQTT_ADDRESS"
	// envWSSAddress is the host:port device commands dial for MQTT over
	// WebSocket when it is not {HostName}:443.
	envWSSAddress = "HUBWIRE_WSS_ADDRESS"
)

// connectionString returns the connection string given by a flag value
// ("-" reads the standard input), else by the first of the environment
// variables that is set, and says where it came from (for errors, which
// never quote it).
func (a *app) connectionString(flagValue string, envs ...string) (value, from string, err error) {
	if flagValue != "" {
		v, err := a.readSecret(flagValue)
		return v, "--connection-string", err
	}
	for _, e := range envs {
		if v := a.getenv(e); v != "" {
			return v, "$" + e, nil
		}
	}
	return "", "", usagef("no connection string: give --connection-string or set $%s", strings.Join(envs, " or $"))
}

// orEnv returns v, or the value of the environment variable env when v is
// empty.
func (a *app) orEnv(v, env string) string {
	if v != "" {
		return v
	}
	return a.getenv(env)
}

// rootCAs returns the system's roots plus the certificates in file (the
// emulator's CA), or nil (the system's roots) when file is "".
func rootCAs(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// serviceFlags are the flags of the commands that act as a back end,
// through package iothub/service.
type serviceFlags struct {
	connStr  string
	caFile   string
	endpoint string
}

func (s *serviceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.connStr, "connection-string", "", "service (policy) connection `string`; \"-\" reads it from stdin (default $"+envServiceConnStr+")")
	fs.StringVar(&s.caFile, "ca", "", "PEM `file` of a CA to trust besides the system's, e.g. the emulator's (default $"+envCAFile+")")
	fs.StringVar(&s.endpoint, "endpoint", "", "service API base `URL` when not https://{HostName} (default $"+envServiceEndpoint+")")
}

// client returns a service client for the flags and the environment.
func (s *serviceFlags) client(a *app) (*service.Client, error) {
	raw, from, err := a.connectionString(s.connStr, envServiceConnStr)
	if err != nil {
		return nil, err
	}
	pool, err := rootCAs(a.orEnv(s.caFile, envCAFile))
	if err != nil {
		return nil, err
	}
	c, err := service.New(raw, &service.Options{
		Endpoint:  a.orEnv(s.endpoint, envServiceEndpoint),
		RootCAs:   pool,
		UserAgent: "hubwire-cli",
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return c, nil
}

// deviceFlags are the flags of the commands that act as a device, through
// package iothub/device.
type deviceFlags struct {
	connStr   string
	caFile    string
	address   string
	transport string
	modelID   string
}

func (d *deviceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.connStr, "connection-string", "", "device or module connection `string`; \"-\" reads it from stdin (default $"+envDeviceConnStr+")")
	fs.StringVar(&d.caFile, "ca", "", "PEM `file` of a CA to trust besides the system's, e.g. the emulator's (default $"+envCAFile+")")
	fs.StringVar(&d.address, "address", "", "`host:port` to dial when not the HostName on 8883 (mqtt) or 443 (mqtt-ws) (default $"+envMQTTAddress+" or $"+envWSSAddress+")")
	fs.StringVar(&d.transport, "transport", device.TransportMQTT, "`transport`: mqtt (TLS, 8883) or mqtt-ws (WebSocket, 443)")
	fs.StringVar(&d.modelID, "model-id", "", "IoT Plug and Play model `id` (DTMI) to announce")
}

// config returns the device client configuration for the flags and the
// environment; the caller adds handlers.
func (d *deviceFlags) config(a *app) (device.Config, error) {
	var cfg device.Config
	addrEnv := envMQTTAddress
	switch d.transport {
	case device.TransportMQTT:
	case device.TransportMQTTWebSocket:
		addrEnv = envWSSAddress
	default:
		return cfg, usagef("--transport %q: want mqtt or mqtt-ws", d.transport)
	}
	raw, from, err := a.connectionString(d.connStr, envDeviceConnStr)
	if err != nil {
		return cfg, err
	}
	pool, err := rootCAs(a.orEnv(d.caFile, envCAFile))
	if err != nil {
		return cfg, err
	}
	cfg = device.Config{
		ConnectionString: raw,
		Transport:        d.transport,
		Address:          a.orEnv(d.address, addrEnv),
		RootCAs:          pool,
		ModelID:          d.modelID,
		ClientType:       "hubwire-cli",
	}
	if _, err := device.New(cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", from, err)
	}
	return cfg, nil
}

// propertyList is a repeatable key=value flag.
type propertyList [][2]string

func (p *propertyList) String() string {
	var parts []string
	for _, kv := range *p {
		parts = append(parts, kv[0]+"="+kv[1])
	}
	return strings.Join(parts, ",")
}

func (p *propertyList) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	*p = append(*p, [2]string{k, v})
	return nil
}

// maxPayloadArg bounds a payload read from the standard input.
const maxPayloadArg = 1 << 20

// payloadArg returns the payload given as an argument, "-" for the
// standard input, or "@file" for a file's contents.
func (a *app) payloadArg(s string) ([]byte, error) {
	switch {
	case s == "-":
		if a.stdin == nil {
			return nil, usagef("no standard input")
		}
		b, err := io.ReadAll(io.LimitReader(a.stdinReader(), maxPayloadArg+1))
		if err != nil {
			return nil, fmt.Errorf("reading the standard input: %w", err)
		}
		if len(b) > maxPayloadArg {
			return nil, usagef("the standard input holds more than 1 MiB")
		}
		return b, nil
	case strings.HasPrefix(s, "@"):
		b, err := os.ReadFile(s[1:])
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	return []byte(s), nil
}
