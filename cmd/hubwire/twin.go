package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/hubwire/hubwire/iothub/service"
)

func twinCommand() *command {
	return &command{
		name:    "twin",
		summary: "device twins: show and set desired (back end), get and report (device)",
		long: "Device and module twins. 'show' and 'set-desired' act as the back end with a service connection " +
			"string ($" + envServiceConnStr + "); 'get' and 'report' act as the device with its own connection string " +
			"($" + envDeviceConnStr + ").",
		subs:    []*command{twinShowCommand(), twinSetDesiredCommand(), twinGetCommand(), twinReportCommand()},
		example: "hubwire twin show dev1\nhubwire twin set-desired dev1 '{\"interval\":5}'\nhubwire twin report '{\"firmware\":\"1.4.2\"}'",
	}
}

// jsonObjectArg parses a JSON object given as an argument ("-": stdin,
// "@file": a file).
func (a *app) jsonObjectArg(what, s string) (map[string]any, error) {
	b, err := a.payloadArg(s)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, usagef("%s is not a JSON object", what)
	}
	return m, nil
}

func twinShowCommand() *command {
	var (
		svc      serviceFlags
		moduleID string
		timeout  = durationFlag(30 * time.Second)
	)
	return &command{
		name:    "show",
		summary: "print a device's or module's twin (back end)",
		usage:   "[flags] DEVICE-ID",
		long:    "Prints the twin of a device (or, with --module, of a module) as the service API returns it: tags, desired and reported properties with $metadata and $version.",
		example: "hubwire twin show dev1\nhubwire twin show dev1 --module mod1",
		flags: func(fs *flag.FlagSet) {
			svc.register(fs)
			fs.StringVar(&moduleID, "module", "", "module `id`")
			fs.Var(timeout, "timeout", "bound on the call")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := exactArgs(args, "DEVICE-ID"); err != nil {
				return err
			}
			c, err := svc.client(a)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, timeout.d)
			defer cancel()
			var twin *service.Twin
			if moduleID != "" {
				twin, err = c.GetModuleTwin(ctx, args[0], moduleID)
			} else {
				twin, err = c.GetTwin(ctx, args[0])
			}
			if err != nil {
				return err
			}
			return writeJSON(a.stdout, twin)
		},
	}
}

func twinSetDesiredCommand() *command {
	var (
		svc      serviceFlags
		moduleID string
		etag     string
		tags     string
		timeout  = durationFlag(30 * time.Second)
	)
	return &command{
		name:    "set-desired",
		summary: "merge a patch into a twin's desired properties (back end)",
		usage:   "[flags] DEVICE-ID PATCH",
		long: "Merges PATCH, a JSON object (\"-\" reads the standard input, @FILE a file), into the desired " +
			"properties of a device's (or module's) twin; a null member deletes that property. A connected device " +
			"is notified. Prints the new desired $version.",
		example: "hubwire twin set-desired dev1 '{\"telemetryInterval\":5,\"oldSetting\":null}'",
		flags: func(fs *flag.FlagSet) {
			svc.register(fs)
			fs.StringVar(&moduleID, "module", "", "module `id`")
			fs.StringVar(&etag, "etag", "", "apply only if the twin's etag is this `etag`")
			fs.StringVar(&tags, "tags", "", "also merge this JSON `object` into the twin's tags")
			fs.Var(timeout, "timeout", "bound on the call")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := exactArgs(args, "DEVICE-ID", "PATCH"); err != nil {
				return err
			}
			c, err := svc.client(a) // first: it may read a line of stdin
			if err != nil {
				return err
			}
			desired, err := a.jsonObjectArg("PATCH", args[1])
			if err != nil {
				return err
			}
			patch := &service.Twin{Properties: service.TwinProperties{Desired: desired}}
			if tags != "" {
				if patch.Tags, err = a.jsonObjectArg("--tags", tags); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(ctx, timeout.d)
			defer cancel()
			var twin *service.Twin
			if moduleID != "" {
				twin, err = c.UpdateModuleTwin(ctx, args[0], moduleID, patch, etag)
			} else {
				twin, err = c.UpdateTwin(ctx, args[0], patch, etag)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "desired $version %d (twin etag %s)\n", twin.DesiredVersion(), twin.ETag)
			return err
		},
	}
}

func twinGetCommand() *command {
	var (
		dev     deviceFlags
		timeout = durationFlag(30 * time.Second)
	)
	return &command{
		name:    "get",
		summary: "read the twin as the device (desired and reported)",
		usage:   "[flags]",
		long:    "Connects as the device (or module) of a connection string, reads its twin over MQTT and prints the desired and reported sections with their $version.",
		example: "hubwire twin get --connection-string \"$IOTHUB_DEVICE_CONNECTION_STRING\"",
		flags: func(fs *flag.FlagSet) {
			dev.register(fs)
			fs.Var(timeout, "timeout", "bound on connecting and on the request")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			cfg, err := dev.config(a)
			if err != nil {
				return err
			}
			c, err := connectDevice(ctx, cfg, timeout.d)
			if err != nil {
				return err
			}
			defer closeDevice(c)
			ctx, cancel := context.WithTimeout(ctx, timeout.d)
			defer cancel()
			twin, err := c.GetTwin(ctx)
			if err != nil {
				return err
			}
			section := func(v int64, props map[string]any) map[string]any {
				out := map[string]any{"$version": v}
				for k, p := range props {
					out[k] = p
				}
				return out
			}
			return writeJSON(a.stdout, map[string]any{
				"desired":  section(twin.Desired.Version, twin.Desired.Props),
				"reported": section(twin.Reported.Version, twin.Reported.Props),
			})
		},
	}
}

func twinReportCommand() *command {
	var (
		dev     deviceFlags
		timeout = durationFlag(30 * time.Second)
	)
	return &command{
		name:    "report",
		summary: "send a reported-properties patch as the device",
		usage:   "[flags] PATCH",
		long:    "Connects as the device (or module) of a connection string and sends PATCH, a JSON object (\"-\" reads the standard input, @FILE a file), as a reported-properties patch; a null member deletes that property. Prints the new reported $version.",
		example: "hubwire twin report '{\"firmware\":\"1.4.2\",\"battery\":0.93}'",
		flags: func(fs *flag.FlagSet) {
			dev.register(fs)
			fs.Var(timeout, "timeout", "bound on connecting and on the request")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := exactArgs(args, "PATCH"); err != nil {
				return err
			}
			cfg, err := dev.config(a) // first: it may read a line of stdin
			if err != nil {
				return err
			}
			patch, err := a.jsonObjectArg("PATCH", args[0])
			if err != nil {
				return err
			}
			c, err := connectDevice(ctx, cfg, timeout.d)
			if err != nil {
				return err
			}
			defer closeDevice(c)
			ctx, cancel := context.WithTimeout(ctx, timeout.d)
			defer cancel()
			v, err := c.ReportProperties(ctx, patch)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "reported $version %d\n", v)
			return err
		},
	}
}
