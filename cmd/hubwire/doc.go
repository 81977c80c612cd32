// Command hubwire runs a local Azure IoT Hub emulator, drives a hub (the
// emulator or a real one) from the back end and from a device, and makes
// SAS tokens.
//
//	hubwire demo                    the whole device flow against an in-process emulator
//	hubwire emulator                a local IoT Hub on 8883 (MQTT/TLS) and 443 (WSS, REST)
//	hubwire device add|list|show|delete, twin show|set-desired, method invoke,
//	        c2d send, monitor       the back end, through package iothub/service
//	hubwire send, listen, twin get|report
//	                                a device, through package iothub/device
//	hubwire sas token               a SAS token for a device, module or policy
//	hubwire simulate                a fleet of devices from one process
//
// Every command has --help with an example. Connection strings come from
// --connection-string ("-" reads one line from the standard input, which
// keeps it out of the process list) or from the environment:
// IOTHUB_CONNECTION_STRING for a service (policy) string and
// IOTHUB_DEVICE_CONNECTION_STRING for a device or module string, the names
// the Azure IoT SDK samples use. HUBWIRE_CA_FILE names a CA to trust (the
// emulator's); HUBWIRE_SERVICE_ENDPOINT, HUBWIRE_MQTT_ADDRESS and
// HUBWIRE_WSS_ADDRESS point the commands at an emulator on other ports
// ("hubwire emulator" prints the export lines). Secrets are never echoed in
// errors. Bad usage exits 2 with one line on the standard error; a failed
// command exits 1.
//
// The command holds no logic a library user would want: it wires the
// packages of this module together.
package main
