package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hubwire/hubwire/iothub/service"
)

func deviceCommand() *command {
	return &command{
		name:    "device",
		summary: "the identity registry: add, list, show and delete devices and modules (back end)",
		long: "The identity registry, through IoT Hub's service REST API (package iothub/service), so these " +
			"commands work against the emulator and against a real hub. They need a service connection string " +
			"with registry rights: --connection-string or $" + envServiceConnStr + ".",
		subs:    []*command{deviceAddCommand(), deviceListCommand(), deviceShowCommand(), deviceDeleteCommand()},
		example: "hubwire device add dev1\nhubwire device list\nhubwire device show dev1\nhubwire device delete dev1",
	}
}

// identityConnectionString builds the connection string of a SAS device
// or module from its registry entry.
func identityConnectionString(host, deviceID, moduleID string, auth *service.Authentication) string {
	if auth == nil || auth.SymmetricKey == nil || auth.SymmetricKey.PrimaryKey == "" {
		return ""
	}
	cs := "HostName=" + host + ";DeviceId=" + deviceID
	if moduleID != "" {
		cs += ";ModuleId=" + moduleID
	}
	return cs + ";SharedAccessKey=" + auth.SymmetricKey.PrimaryKey
}

// redactKeys hides the SAS keys of an identity for printing.
func redactKeys(auth *service.Authentication) {
	if auth != nil && auth.SymmetricKey != nil {
		k := *auth.SymmetricKey
		if k.PrimaryKey != "" {
			k.PrimaryKey = "<redacted>"
		}
		if k.SecondaryKey != "" {
			k.SecondaryKey = "<redacted>"
		}
		auth.SymmetricKey = &k
	}
}

func deviceAddCommand() *command {
	var (
		svc                     serviceFlags
		moduleID                string
		edge, disabled          bool
		primary, secondary      string
		thumbprint, thumbprint2 string
		certAuthority           bool
		asJSON, showKeys        bool
		timeout                 = durationFlag(30 * time.Second)
	)
	return &command{
		name:    "add",
		summary: "register a device (or a module) and print its connection string",
		usage:   "[flags] DEVICE-ID",
		long: "Registers a device, or with --module a module of an existing device. SAS keys are generated " +
			"unless given; --x509-thumbprint or --x509-ca registers an X.509 identity instead. The new identity's " +
			"connection string (SAS only) is printed on the standard output, so that " +
			"CS=$(hubwire device add dev1) works; --json prints the registry entry instead (keys redacted " +
			"unless --show-keys).",
		example: "hubwire device add dev1\nhubwire device add dev1 --module telemetry\nhubwire device add cam7 --x509-thumbprint 6E1A…",
		flags: func(fs *flag.FlagSet) {
			svc.register(fs)
			fs.StringVar(&moduleID, "module", "", "register module `id` on the device instead")
			fs.BoolVar(&edge, "edge", false, "the device is an IoT Edge device")
			fs.BoolVar(&disabled, "disabled", false, "register the device disabled")
			fs.StringVar(&primary, "primary-key", "", "base64 primary SAS `key` (default generated; \"-\" reads it from stdin)")
			fs.StringVar(&secondary, "secondary-key", "", "base64 secondary SAS `key` (default generated)")
			fs.StringVar(&thumbprint, "x509-thumbprint", "", "authenticate with the X.509 certificate of this SHA-1 or SHA-256 `thumbprint`")
			fs.StringVar(&thumbprint2, "x509-secondary-thumbprint", "", "secondary X.509 `thumbprint`")
			fs.BoolVar(&certAuthority, "x509-ca", false, "authenticate with an X.509 certificate signed by a registered CA")
			fs.BoolVar(&asJSON, "json", false, "print the registry entry as JSON instead of the connection string")
			fs.BoolVar(&showKeys, "show-keys", false, "with --json: show the SAS keys")
			fs.Var(timeout, "timeout", "bound on the call")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := exactArgs(args, "DEVICE-ID"); err != nil {
				return err
			}
			key, err := a.readSecret(primary)
			if err != nil {
				return err
			}
			auth := &service.Authentication{Type: service.AuthSAS, SymmetricKey: &service.SymmetricKey{PrimaryKey: key, SecondaryKey: secondary}}
			switch {
			case (thumbprint != "" || thumbprint2 != "") && certAuthority:
				return usagef("--x509-thumbprint and --x509-ca exclude each other")
			case (thumbprint != "" || thumbprint2 != "" || certAuthority) && (key != "" || secondary != ""):
				return usagef("SAS keys and X.509 exclude each other")
			case thumbprint2 != "" && thumbprint == "":
				return usagef("--x509-secondary-thumbprint needs --x509-thumbprint")
			case thumbprint != "":
				auth = &service.Authentication{Type: service.AuthSelfSigned, X509Thumbprint: &service.X509Thumbprint{PrimaryThumbprint: thumbprint, SecondaryThumbprint: thumbprint2}}
			case certAuthority:
				auth = &service.Authentication{Type: service.AuthCertificateAuthority}
			}
			if moduleID != "" && (edge || disabled) {
				return usagef("--edge and --disabled are for devices, not modules")
			}
			c, err := svc.client(a)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, timeout.d)
			defer cancel()
			var (
				entry   any
				gotAuth *service.Authentication
				what    = "device " + args[0]
			)
			if moduleID != "" {
				m, err := c.CreateModule(ctx, &service.Module{DeviceID: args[0], ModuleID: moduleID, Authentication: auth})
				if err != nil {
					return err
				}
				entry, gotAuth, what = m, m.Authentication, "module "+args[0]+"/"+moduleID
			} else {
				d := &service.Device{DeviceID: args[0], Authentication: auth, Status: service.StatusEnabled}
				if disabled {
					d.Status = service.StatusDisabled
				}
				if edge {
					d.Capabilities = &service.Capabilities{IotEdge: true}
				}
				got, err := c.CreateDevice(ctx, d)
				if err != nil {
					return err
				}
				entry, gotAuth = got, got.Authentication
			}
			cs := identityConnectionString(c.HostName(), args[0], moduleID, gotAuth)
			if asJSON {
				if !showKeys {
					redactKeys(gotAuth)
				}
				return writeJSON(a.stdout, entry)
			}
			if cs == "" {
				_, err := fmt.Fprintf(a.stdout, "registered %s (X.509: no connection string with a key)\n", what)
				return err
			}
			fmt.Fprintf(a.stderr, "registered %s\n", what)
			_, err = fmt.Fprintln(a.stdout, cs)
			return err
		},
	}
}

func deviceListCommand() *command {
	var (
		svc     serviceFlags
		top     int
		asJSON  bool
		timeout = durationFlag(30 * time.Second)
	)
	return &command{
		name:    "list",
		summary: "list the registered devices",
		usage:   "[flags]",
		long:    "Lists the registered devices with their status, connection state, authentication, queued C2D messages and last activity; --json prints the registry entries (keys redacted).",
		example: "hubwire device list\nhubwire device list --json --top 10",
		flags: func(fs *flag.FlagSet) {
			svc.register(fs)
			fs.IntVar(&top, "top", 0, "list at most this `number` of devices (0: the hub's maximum, 1000)")
			fs.BoolVar(&asJSON, "json", false, "print the registry entries as JSON")
			fs.Var(timeout, "timeout", "bound on the call")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			if top < 0 || top > 1000 {
				return usagef("--top %d: want 0 to 1000", top)
			}
			c, err := svc.client(a)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, timeout.d)
			defer cancel()
			devices, err := c.ListDevices(ctx, top)
			if err != nil {
				return err
			}
			for i := range devices {
				redactKeys(devices[i].Authentication)
			}
			if asJSON {
				if devices == nil {
					devices = []service.Device{}
				}
				return writeJSON(a.stdout, devices)
			}
			return printDeviceTable(a.stdout, devices)
		},
	}
}

func printDeviceTable(w io.Writer, devices []service.Device) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tSTATUS\tCONNECTION\tAUTH\tC2D QUEUED\tLAST ACTIVITY")
	for _, d := range devices {
		auth := ""
		if d.Authentication != nil {
			auth = string(d.Authentication.Type)
		}
		if d.Capabilities != nil && d.Capabilities.IotEdge {
			auth += ", edge"
		}
		last := "-"
		if !d.LastActivityTime.IsZero() && d.LastActivityTime.Year() > 1 {
			last = d.LastActivityTime.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", d.DeviceID, d.Status, orDash(d.ConnectionState), orDash(auth), d.CloudToDeviceMessageCount, last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d device%s\n", len(devices), plural(len(devices)))
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func deviceShowCommand() *command {
	var (
		svc      serviceFlags
		moduleID string
		showKeys bool
		connStr  bool
		timeout  = durationFlag(30 * time.Second)
	)
	return &command{
		name:    "show",
		summary: "print a device's (or module's) registry entry",
		usage:   "[flags] DEVICE-ID",
		long: "Prints the registry entry of a device, with the ids of its modules, or with --module of a module, " +
			"as JSON. Keys are redacted unless --show-keys; --print-connection-string prints just the identity's " +
			"connection string.",
		example: "hubwire device show dev1\nhubwire device show dev1 --module telemetry --print-connection-string",
		flags: func(fs *flag.FlagSet) {
			svc.register(fs)
			fs.StringVar(&moduleID, "module", "", "show module `id` of the device")
			fs.BoolVar(&showKeys, "show-keys", false, "show the SAS keys")
			fs.BoolVar(&connStr, "print-connection-string", false, "print only the identity's connection string")
			fs.Var(timeout, "timeout", "bound on the calls")
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
			var (
				entry any
				auth  *service.Authentication
			)
			if moduleID != "" {
				m, err := c.GetModule(ctx, args[0], moduleID)
				if err != nil {
					return err
				}
				entry, auth = m, m.Authentication
			} else {
				d, err := c.GetDevice(ctx, args[0])
				if err != nil {
					return err
				}
				auth = d.Authentication
				if !connStr {
					mods, err := c.ListModules(ctx, args[0])
					if err != nil {
						return err
					}
					ids := []string{}
					for _, m := range mods {
						ids = append(ids, m.ModuleID)
					}
					if !showKeys {
						redactKeys(d.Authentication)
					}
					b, err := json.Marshal(d)
					if err != nil {
						return err
					}
					var obj map[string]any
					if err := json.Unmarshal(b, &obj); err != nil {
						return err
					}
					obj["modules"] = ids
					return writeJSON(a.stdout, obj)
				}
			}
			if connStr {
				cs := identityConnectionString(c.HostName(), args[0], moduleID, auth)
				if cs == "" {
					return fmt.Errorf("%s uses X.509: it has no connection string with a key", strings.TrimSpace(args[0]+" "+moduleID))
				}
				_, err := fmt.Fprintln(a.stdout, cs)
				return err
			}
			if !showKeys {
				redactKeys(auth)
			}
			return writeJSON(a.stdout, entry)
		},
	}
}

func deviceDeleteCommand() *command {
	var (
		svc      serviceFlags
		moduleID string
		etag     string
		timeout  = durationFlag(30 * time.Second)
	)
	return &command{
		name:    "delete",
		summary: "delete a device (with its modules, twin and queued messages) or a module",
		usage:   "[flags] DEVICE-ID",
		long:    "Deletes a device with its modules, twin and queued C2D messages, or with --module only that module. A connected identity is disconnected.",
		example: "hubwire device delete dev1\nhubwire device delete dev1 --module telemetry",
		flags: func(fs *flag.FlagSet) {
			svc.register(fs)
			fs.StringVar(&moduleID, "module", "", "delete module `id` of the device instead")
			fs.StringVar(&etag, "etag", "", "delete only if the identity's etag is this `etag`")
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
			what := "device " + args[0]
			if moduleID != "" {
				err = c.DeleteModule(ctx, args[0], moduleID, etag)
				what = "module " + args[0] + "/" + moduleID
			} else {
				err = c.DeleteDevice(ctx, args[0], etag)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "deleted %s\n", what)
			return err
		},
	}
}
