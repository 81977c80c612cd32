// Package service is a Go client of Azure IoT Hub's service REST API:
// the identity registry (devices and modules, one by one or in bulk),
// twins, queries, direct methods and cloud-to-device feedback, plus the
// emulator's own endpoints for sending cloud-to-device messages and
// reading telemetry and connection events.
//
// # Connecting
//
// New takes a shared access policy's connection string, as the portal
// shows it:
//
//	c, err := service.New("HostName=myhub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=…", nil)
//
// Every request carries a fresh SAS token signed for the hub's host name
// (valid Options.TokenTTL, an hour by default), so a long-lived Client
// never sends an expired token. For the emulator of package
// iothub/emulator, set Options.Endpoint to its HTTPS address and
// Options.RootCAs to its CA (or pass an *http.Client of your own).
//
// # What speaks IoT Hub's API and what is the emulator's
//
// Registry, twin, query, method, purge and feedback calls use IoT Hub's
// own REST shapes and api-version 2021-04-12, so they work against a real
// hub and against the emulator alike. IoT Hub sends cloud-to-device
// messages and serves telemetry over AMQP only; SendC2D, Telemetry and
// ConnectionEvents call endpoints under /emulator/ that only the emulator
// serves:
//
//	POST /emulator/devices/{id}/messages/devicebound   body = message; iothub-messageid, iothub-correlationid,
//	                                                   iothub-userid, iothub-contenttype, iothub-contentencoding,
//	                                                   iothub-ack, iothub-expiry (RFC 3339) or iothub-ttl (seconds),
//	                                                   iothub-app-<name> headers; answers {"messageId"}
//	GET  /emulator/telemetry?from=earliest|latest|<seq>&deviceId=&moduleId=&follow=true|false
//	GET  /emulator/events?…                            the same for connection events
//
// The two streams answer NDJSON (one JSON object a line) or, with Accept:
// text/event-stream, server-sent events.
//
// # Errors
//
// A reply with an error status is an *Error carrying the status, the
// iothub-errorcode name, the numeric code and the hub's message; errors.Is
// matches it against the sentinels (ErrDeviceNotFound,
// ErrPreconditionFailed, ErrUnauthorized, ErrThrottled, ErrDeviceNotOnline,
// ErrTimeout, ErrQueueFull, …), decided by the iothub-errorcode header,
// then the envelope, then the status. Transport failures and context
// errors are returned wrapped, so errors.Is(err, context.DeadlineExceeded)
// holds.
//
// # Paging
//
// Query, QueryTwins, Telemetry and ConnectionEvents return iter.Seq2
// sequences: range over them, and an error is the last element. Query
// fetches the next page (x-ms-continuation) only when the loop gets there.
//
// # Concurrency
//
// A Client is safe for concurrent use by multiple goroutines; a sequence
// may be ranged over by one goroutine at a time.
package service
