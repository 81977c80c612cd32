package main

import "strings"

// Environment variables the commands read. The connection string names
// are the ones the Azure IoT SDK samples use, so a shell set up for them
// works here unchanged.
const (
	// envServiceConnStr is a service (shared access policy) connection
	// string: device, twin, method, c2d and monitor commands.
	envServiceConnStr = "IOTHUB_CONNECTION_STRING"
	// envDeviceConnStr is a device or module connection string: send,
	// listen, twin get and twin report.
	envDeviceConnStr = "IOTHUB_DEVICE_CONNECTION_STRING"
	// envCAFile is a PEM file of certificate authorities to trust besides
	// the system's: the emulator's CA.
	envCAFile = "HUBWIRE_CA_FILE"
	// envServiceEndpoint is the base URL of the service API when it is not
	// https://{HostName} (an emulator on a port other than 443).
	envServiceEndpoint = "HUBWIRE_SERVICE_ENDPOINT"
	// envDeviceAddress is the host:port device commands dial when it is not
	// {HostName}:8883 (or :443 for mqtt-ws).
	envDeviceAddress = "HUBWIRE_DEVICE_ADDRESS"
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
