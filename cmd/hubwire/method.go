package main

import (
	"context"
	"encoding/json"
	"flag"
	"time"

	"github.com/hubwire/hubwire/iothub/service"
)

func methodCommand() *command {
	return &command{
		name:    "method",
		summary: "direct methods (back end)",
		long:    "Direct methods, invoked through IoT Hub's service REST API with a service connection string ($" + envServiceConnStr + ").",
		subs:    []*command{methodInvokeCommand()},
		example: "hubwire method invoke dev1 reboot '{\"delay\":5}'",
	}
}

func methodInvokeCommand() *command {
	var (
		svc            serviceFlags
		moduleID       string
		timeout        = durationFlag(service.DefaultMethodResponseTimeout)
		connectTimeout = durationFlag(0)
	)
	return &command{
		name:    "invoke",
		summary: "call a direct method on a device or module and print its answer",
		usage:   "[flags] DEVICE-ID METHOD [PAYLOAD]",
		long: "Calls direct method METHOD on a device (or, with --module, a module) with PAYLOAD, a JSON value " +
			"(\"-\" reads the standard input, @FILE a file; default null), and prints the device's answer as " +
			"{\"status\":…,\"payload\":…}. The status is the device's own; the command fails only when the hub " +
			"does (the device is offline, unknown, or did not answer within --timeout).",
		example: "hubwire method invoke dev1 reboot '{\"delay\":5}' --timeout 10s\nhubwire method invoke dev1 getConfig --module agent --connect-timeout 30s",
		flags: func(fs *flag.FlagSet) {
			svc.register(fs)
			fs.StringVar(&moduleID, "module", "", "call the method on module `id` of the device")
			fs.Var(timeout, "timeout", "how long the hub waits for the device's answer, 5s to 300s")
			fs.Var(connectTimeout, "connect-timeout", "how long the hub waits for an offline device to connect, up to 300s")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if len(args) == 3 {
				if err := exactArgs(args, "DEVICE-ID", "METHOD", "PAYLOAD"); err != nil {
					return err
				}
			} else if err := exactArgs(args, "DEVICE-ID", "METHOD"); err != nil {
				return err
			}
			if timeout.d < service.MinMethodResponseTimeout || timeout.d > service.MaxMethodTimeout {
				return usagef("--timeout %s: want 5s to 300s", timeout)
			}
			if connectTimeout.d < 0 || connectTimeout.d > service.MaxMethodTimeout {
				return usagef("--connect-timeout %s: want 0 to 300s", connectTimeout)
			}
			c, err := svc.client(a) // first: it may read a line of stdin
			if err != nil {
				return err
			}
			payload := json.RawMessage("null")
			if len(args) == 3 {
				b, err := a.payloadArg(args[2])
				if err != nil {
					return err
				}
				if !json.Valid(b) {
					return usagef("PAYLOAD is not JSON (quote a string: '\"text\"')")
				}
				payload = b
			}
			call := service.MethodCall{Name: args[1], Payload: payload, ResponseTimeout: timeout.d, ConnectTimeout: connectTimeout.d}
			ctx, cancel := context.WithTimeout(ctx, timeout.d+connectTimeout.d+15*time.Second)
			defer cancel()
			var res *service.MethodResult
			if moduleID != "" {
				res, err = c.InvokeModuleMethod(ctx, args[0], moduleID, call)
			} else {
				res, err = c.InvokeMethod(ctx, args[0], call)
			}
			if err != nil {
				return err
			}
			return writeJSON(a.stdout, res)
		},
	}
}
