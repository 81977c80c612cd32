// Package emulator is a local Azure IoT Hub that the official device SDKs
// (C, C#, Java, Node, Python, Go) use unchanged: MQTT 3.1.1 over TLS on
// port 8883 and over WebSocket (wss://…:443/$iothub/websocket), device and
// module identities with SAS and X.509 authentication, telemetry kept in a
// retained log, cloud-to-device messages with feedback, device twins and
// direct methods, all durable across restarts. The service REST API is
// served on the same HTTPS listener. The contract it implements is
// shared/iothub-mqtt.md (cited as §n).
//
// # Starting a hub
//
//	hub, err := emulator.Start(ctx, emulator.Config{DataDir: "./hubdata"})
//	if err != nil { … }          // e.g. port 8883 or 443 not bindable: the error says how to pick others
//	defer hub.Close()
//	_, err = hub.CreateDevice(ctx, emulator.Device{DeviceID: "dev1"}) // keys generated
//	cs, _ := hub.DeviceConnectionString("dev1")
//	// HostName=localhost;DeviceId=dev1;SharedAccessKey=…
//
// The zero Config listens on 127.0.0.1:8883 (MQTT over TLS) and
// 127.0.0.1:443 (HTTPS: MQTT over WebSocket and the REST API), names the
// hub "localhost" and keeps state in memory. With DataDir set, the registry,
// shared access policies, twins, C2D queues, feedback, sessions, telemetry
// and the TLS certificates live there, and nothing acknowledged (a PUBACK
// sent, an API call returned) is lost if the process is killed.
//
// In Go tests, package emulatortest starts one on free loopback ports in
// one line: hub := emulatortest.New(t).
//
// # Pointing an official SDK at it
//
// On first start the hub makes a CA and a server certificate (ECDSA
// P-256) for localhost, 127.0.0.1, ::1, HostName and Config.CertNames, and
// logs the CA's path (DataDir/certs/ca.pem; CAPEM returns it too). Give the
// SDK the device connection string and make it trust that CA:
//
//   - Node: NODE_EXTRA_CA_CERTS=hubdata/certs/ca.pem, or
//     client.setOptions({ca: fs.readFileSync(…)}); transports Mqtt (8883)
//     and MqttWs (443) both work.
//   - Python: IoTHubDeviceClient.create_from_connection_string(cs,
//     server_verification_cert=open(ca).read()); websockets=True for 443.
//   - C: IoTHubDeviceClient_LL_SetOption(h, OPTION_TRUSTED_CERT, caPEM).
//   - C#: trust the CA in the system store (or use a custom
//     RemoteCertificateValidationCallback).
//   - Go (this module): iothub/device with the CA in tls.Config.RootCAs
//     (hub.CertPool()).
//
// The official SDKs always dial port 8883 or 443, so run the hub on the
// default ports (root or CAP_NET_BIND_SERVICE for 443) when testing them;
// tests of our own client may use any port.
//
// # The back-end side
//
// Hub methods drive what a service would: the registry (CreateDevice,
// UpdateDevice, DeleteDevice, CreateModule, …, with etags), shared access
// policies (iothubowner, service, device, registryRead, registryReadWrite;
// ServiceConnectionString, VerifyServiceToken), twins (GetTwin, UpdateTwin,
// ReplaceTwin with $metadata and versions), InvokeMethod, SendC2D with
// feedback (ReceiveFeedback), ReadTelemetry and Telemetry (a live stream
// from the earliest, the latest or a sequence number), and
// WatchConnections. Errors are typed (ErrDeviceNotFound,
// ErrPreconditionFailed, ErrQueueFull, ErrDeviceNotOnline, ErrTimeout, …)
// for errors.Is.
//
// # What it checks
//
// CONNECT as §1–2 say: client id against the username (both forms, any
// api-version), SAS with the HMAC over the raw sr, segment-prefix scope and
// 5 minutes of skew, policy tokens with DeviceConnect, X.509 by registered
// thumbprint or registered CA with CN = device id; every failure is CONNACK
// 5 and a logged reason. One live connection per identity; a live
// connection is closed when its token expires; the idle timeout is
// min(1.5×KeepAlive, 1767 s); only the documented topics and filters (at
// most 5) are accepted, and any violation closes that connection with a
// logged reason.
//
// # Knobs for tests
//
// Config.Now moves the hub's clock (token expiry, TTLs, retention);
// Config.SASSkew set negative makes a connection close exactly at its
// token's se; Config.TwinOpsPerSecond throttles twin operations (res/429);
// Hub.FailTwin makes the next n twin requests of an identity fail with a
// chosen status; Config.OwnerKey fixes the service connection string.
//
// # Differences from IoT Hub
//
// No throttling unless Config.TwinOpsPerSecond is set, no quotas, no
// message routing: all telemetry goes to the one built-in log. There is no
// AMQP endpoint; C2D is sent and feedback read through this API (and the
// emulator's REST endpoints).
//
// # Concurrency
//
// A Hub is safe for concurrent use by multiple goroutines.
package emulator
