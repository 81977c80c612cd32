package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/hubwire/hubwire/iothub/service"
)

func c2dCommand() *command {
	return &command{
		name:    "c2d",
		summary: "cloud-to-device messages (back end)",
		long: "Cloud-to-device messages. IoT Hub takes them over AMQP only; 'c2d send' uses the emulator's own " +
			"REST endpoint (package iothub/service, SendC2D), so it works against the emulator, not a real hub.",
		subs:    []*command{c2dSendCommand()},
		example: "hubwire c2d send dev1 'hello device' --property priority=high",
	}
}

func c2dSendCommand() *command {
	var (
		svc             serviceFlags
		props           propertyList
		messageID       string
		correlationID   string
		contentType     string
		contentEncoding string
		ack             string
		ttl             = durationFlag(0)
		timeout         = durationFlag(30 * time.Second)
	)
	return &command{
		name:    "send",
		summary: "queue a cloud-to-device message for a device (emulator)",
		usage:   "[flags] DEVICE-ID BODY",
		long: "Queues a cloud-to-device message for a device: BODY is the payload (\"-\" reads the standard " +
			"input, @FILE a file), with application properties and system properties from the flags. Prints the " +
			"message id. The device gets it when it is connected and subscribed, or when it next connects; the " +
			"queue holds at most 50 messages.",
		example: "hubwire c2d send dev1 '{\"command\":\"blink\"}' --property priority=high --ack full --ttl 10m",
		flags: func(fs *flag.FlagSet) {
			svc.register(fs)
			fs.Var(&props, "property", "application property `key=value` (repeatable)")
			fs.StringVar(&messageID, "message-id", "", "message `id` (default generated)")
			fs.StringVar(&correlationID, "correlation-id", "", "correlation `id`")
			fs.StringVar(&contentType, "content-type", "", "content `type`")
			fs.StringVar(&contentEncoding, "content-encoding", "", "content `encoding`")
			fs.StringVar(&ack, "ack", "", "feedback to ask for: none, positive, negative or `full`")
			fs.Var(ttl, "ttl", "time to live in the queue, at most 48h (default the hub's, 1h)")
			fs.Var(timeout, "timeout", "bound on the call")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := exactArgs(args, "DEVICE-ID", "BODY"); err != nil {
				return err
			}
			switch ack {
			case "", "none", "positive", "negative", "full":
			default:
				return usagef("--ack %q: want none, positive, negative or full", ack)
			}
			if ttl.d < 0 || ttl.d > 48*time.Hour {
				return usagef("--ttl %s: want up to 48h", ttl)
			}
			c, err := svc.client(a) // first: it may read a line of stdin
			if err != nil {
				return err
			}
			body, err := a.payloadArg(args[1])
			if err != nil {
				return err
			}
			if len(body) > service.MaxC2DSize {
				return usagef("BODY is %d bytes: at most %d", len(body), service.MaxC2DSize)
			}
			m := &service.C2DMessage{
				Body:            body,
				MessageID:       messageID,
				CorrelationID:   correlationID,
				ContentType:     contentType,
				ContentEncoding: contentEncoding,
				Ack:             service.AckMode(ack),
				TTL:             ttl.d,
			}
			if len(props) > 0 {
				m.Properties = map[string]string{}
				for _, kv := range props {
					m.Properties[kv[0]] = kv[1]
				}
			}
			ctx, cancel := context.WithTimeout(ctx, timeout.d)
			defer cancel()
			id, err := c.SendC2D(ctx, args[0], m)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "queued message %s for %s (%d bytes)\n", id, args[0], len(body))
			return err
		},
	}
}
