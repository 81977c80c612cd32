package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hubwire/hubwire/sas"
)

func sasCommand() *command {
	return &command{
		name:    "sas",
		summary: "shared access signature tokens",
		long:    "Shared access signature (SAS) tokens, made from a connection string's key without any network access.",
		subs:    []*command{sasTokenCommand()},
		example: "hubwire sas token --connection-string - --ttl 24h",
	}
}

func sasTokenCommand() *command {
	var (
		connStr  string
		ttl      = durationFlag(time.Hour)
		deviceID string
		moduleID string
		asJSON   bool
	)
	return &command{
		name:    "token",
		summary: "print a SAS token for the device, module or policy of a connection string",
		usage:   "[flags]",
		long: "Prints a shared access signature token signed with the key of a connection string: " +
			"the token Device Explorer and 'az iot hub generate-sas-token' give, to paste into an MQTT " +
			"client's password or an HTTP Authorization header. A device or module connection string gives " +
			"a token for that identity; a policy connection string (SharedAccessKeyName=…) gives a token for " +
			"the hub, or, with --device (and --module), a policy token scoped to that identity.\n\n" +
			"The connection string comes from --connection-string (\"-\" reads it from the standard input), " +
			"else $" + envDeviceConnStr + ", else $" + envServiceConnStr + ". " +
			"Only the token is written to the standard output.",
		example: "hubwire sas token --connection-string \"HostName=myhub.azure-devices.net;DeviceId=dev1;SharedAccessKey=…\" --ttl 24h\n" +
			"echo \"$IOTHUB_CONNECTION_STRING\" | hubwire sas token --connection-string - --device dev1 --ttl 1h",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&connStr, "connection-string", "", "device, module or policy connection `string` (\"-\": read from stdin)")
			fs.Var(ttl, "ttl", "how long the token is valid: 30m, 24h, 7d")
			fs.StringVar(&deviceID, "device", "", "with a policy connection string: scope the token to this device `id`")
			fs.StringVar(&moduleID, "module", "", "with --device: scope the token to this module `id`")
			fs.BoolVar(&asJSON, "json", false, "print a JSON object with the token, its resource, key name and expiry")
		},
		run: func(ctx context.Context, a *app, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			if ttl.d <= 0 {
				return usagef("--ttl must be positive")
			}
			raw, from, err := a.connectionString(connStr, envDeviceConnStr, envServiceConnStr)
			if err != nil {
				return err
			}
			cs, err := sas.ParseConnectionString(raw)
			if err != nil {
				return fmt.Errorf("%s: %w", from, err)
			}
			if cs.X509 {
				return fmt.Errorf("%s: uses X.509 (x509=true): there is no key to sign a token with", from)
			}
			if cs.SharedAccessKey() == "" {
				return fmt.Errorf("%s: holds a SharedAccessSignature, not a key: the token is already in it", from)
			}
			resource := cs.Resource()
			switch {
			case moduleID != "" && deviceID == "":
				return usagef("--module needs --device")
			case deviceID != "" && cs.SharedAccessKeyName == "":
				return usagef("--device needs a policy connection string (SharedAccessKeyName=…); this one is a device's")
			case deviceID != "" && moduleID != "":
				resource = sas.ModuleResource(cs.HostName, deviceID, moduleID)
			case deviceID != "":
				resource = sas.DeviceResource(cs.HostName, deviceID)
			}
			key, err := cs.Key()
			if err != nil {
				return fmt.Errorf("%s: %w", from, err)
			}
			expiry := time.Now().Add(ttl.d)
			tok := sas.NewToken(resource, key, cs.SharedAccessKeyName, expiry)
			if asJSON {
				return writeJSON(a.stdout, struct {
					Token    string    `json:"token"`
					Resource string    `json:"resource"`
					KeyName  string    `json:"keyName,omitempty"`
					Expiry   time.Time `json:"expiry"`
				}{tok.String(), resource, tok.KeyName, tok.Expiry})
			}
			_, err = fmt.Fprintln(a.stdout, tok.String())
			return err
		},
	}
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// durationValue is a flag.Value for a duration that also takes whole
// days ("7d"), since token lifetimes are often counted in days.
type durationValue struct{ d time.Duration }

func durationFlag(d time.Duration) *durationValue { return &durationValue{d} }

func (v *durationValue) String() string {
	if v == nil {
		return ""
	}
	switch d := v.d; {
	case d == 0:
		return "0s"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return v.d.String()
}

func (v *durationValue) Set(s string) error {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int64
		if _, err := fmt.Sscanf(days, "%d", &n); err != nil || fmt.Sprint(n) != days || n < 0 || n > 365*100 {
			return fmt.Errorf("not a number of days: %q", s)
		}
		v.d = time.Duration(n) * 24 * time.Hour
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration (like 90s, 30m, 24h or 7d): %q", s)
	}
	v.d = d
	return nil
}
