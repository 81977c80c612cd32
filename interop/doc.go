// Package interop holds hubwire's tests against real, unchanged third-party
// clients: the official Azure IoT Node SDKs from npm (device and service)
// and Debian's python3-paho-mqtt, each pointed at the emulator of
// iothub/emulator started in the Go test process.
//
// The package has no API of its own; everything is in its test files. The
// scripts the tests run live beside them: node/ (an npm project pinning the
// SDKs, installed by scripts/test with npm ci against the committed lock
// file) and python/. A script reads its connection strings, CA path and
// options from environment variables, writes one JSON object per line on
// stdout for every step it completes ("events" the Go test waits for), and
// may take commands as JSON lines on stdin. The Go side drives the hub
// through the emulator's Go API and checks what the hub saw.
//
// Tools missing (node, npm's node_modules, /usr/bin/python3 with paho-mqtt)
// make a test skip, unless CI is set: then they make it fail. The Node
// device SDK cannot be pointed at another port than 8883 (MQTT) and 443
// (MQTT over WebSocket), so those tests bind the fixed ports and take a
// cross-process lock (/tmp/hubwire-fixed-ports.lock) to run one at a time.
//
// The restart test needs a hub it can SIGKILL: TestMain turns the test
// binary itself into a durable hub process when HUBWIRE_INTEROP_HUB_DIR
// names a data directory, driven by JSON commands on its stdin.
package interop
