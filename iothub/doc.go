// Package iothub is hubwire's Azure IoT Hub layer: the vocabulary that the
// device client and the local emulator share. This part is plain,
// network-free Go; it imports neither mqtt nor transport.
//
// # What it owns
//
//   - Topics (topics.go): append-style builders for every topic a device
//     publishes or subscribes to and every topic the hub publishes, one
//     parser (ParseTopic) that classifies any topic from either direction
//     into a Route, and ParseFilter, which recognises the only SUBSCRIBE
//     filters IoT Hub accepts (those of the contract and the few more the
//     official SDKs send); Filter.AllowedFor and Route.PublishableBy check
//     them against the connection's identity, with SameID accepting the
//     Python SDK's percent-encoded ids.
//   - Identity strings (username.go): the CONNECT username, built and parsed
//     (current and legacy forms).
//   - Property bags (properties.go): percent-encoding with %20 for space and
//     '+' kept literal, system properties ($.mid, $.cid, …, iothub-ack) as
//     named fields of Properties, application properties in order, and an
//     allocation-free BagIter for hot paths. Properties.Parse reads hub →
//     device bags, Properties.ParseD2C a device's telemetry bag (where
//     iothub-ack is an application property).
//   - Twins (twin.go, twin_device.go, twin_hub.go): the document model with
//     JSON merge-patch semantics and the contract's limits; DeviceTwin, the
//     device-side state machine ($version ordering, GET on (re)connect and
//     on gaps, $rid correlation); HubTwin, the hub side.
//   - Direct methods (methods.go): MethodMux for the device, MethodTable for
//     the hub.
//   - Request ids (requests.go): Correlator, the single request-id → waiter
//     mechanism with deadlines and cancellation used by all of the above.
//
// The contract for every behaviour is shared/iothub-mqtt.md (sections are
// cited as §n in comments).
//
// # State machines do no I/O
//
// DeviceTwin, HubTwin, MethodMux and MethodTable never publish anything
// themselves. They return Actions (topic + payload, published at QoS 0) and
// Waiters; the caller owns the connection. A typical device wiring:
//
//	route, err := iothub.ParseTopic(pub.Topic)
//	switch route.Kind {
//	case iothub.RouteTwinResponse, iothub.RouteTwinDesired:
//		fx, err := twin.Handle(&route, pub.Payload) // publish fx.Publish, deliver fx.Updates
//	case iothub.RouteMethodRequest:
//		req, _ := iothub.ParseMethodRequest(&route, pub.Payload)
//		go func() { reply := mux.Dispatch(ctx, req) /* publish reply */ }()
//	case iothub.RouteC2D:
//		var props iothub.Properties
//		err = props.Parse(route.Bag)
//	}
//
// # Aliasing
//
// Parsers return views: the []byte fields of Route, Filter and Pair alias
// the input and are valid as long as it is. Properties.Parse, ParseTwin and
// the state machines copy what they keep. Builders named Append… append to
// dst and do not allocate when cap(dst) suffices; functions that allocate
// say so.
//
// # Errors
//
// Bad input gives typed errors, never a panic: ErrUnknownTopic,
// ErrMalformedTopic, ErrUnsupportedFilter, ErrMalformedBag and
// ErrMalformedUsername (wrapped in *TopicError); *TwinError for invalid twin
// documents (errors.Is ErrBadRequest); *StatusError for failure statuses in
// reply topics, matching ErrBadRequest, ErrUnauthorized, ErrDeviceNotFound,
// ErrPreconditionFailed, ErrThrottled and ErrServerError; ErrTimeout,
// ErrDeviceNotOnline and ErrConnectionLost for requests that got no reply.
// StatusOf maps any of them back to the status IoT Hub would use.
//
// # Concurrency
//
// Correlator, DeviceTwin, HubTwin, MethodMux, MethodTable and ManualClock
// are safe for concurrent use. Properties and Route are plain values.
package iothub
