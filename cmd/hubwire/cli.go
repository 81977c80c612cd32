package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// app is one invocation of the command line: where it reads and writes
// and how it sees the environment. Tests build their own.
type app struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	lookupEnv func(string) (string, bool)
	// isTTY reports whether stdout is a terminal (live progress lines);
	// nil means it is not.
	isTTY func() bool

	stdinBuf *bufio.Reader // over stdin, shared by every read of it
}

// stdinReader returns the one buffered reader of the standard input, so
// that a secret read as a line and a payload read after it ("send
// --connection-string - -") take their own parts of it.
func (a *app) stdinReader() *bufio.Reader {
	if a.stdinBuf == nil {
		a.stdinBuf = bufio.NewReader(a.stdin)
	}
	return a.stdinBuf
}

// command is a node of the command tree: a group with subcommands, or a
// leaf that runs.
type command struct {
	name    string // the word that selects it: "add" in "hubwire device add"
	summary string // one line in the parent's list
	usage   string // what follows the command path in the synopsis: "[flags] DEVICE-ID"
	long    string // a paragraph or more for --help
	example string // example invocations, one per line, for --help
	// flags registers the command's flags; nil means it has none.
	flags func(fs *flag.FlagSet)
	// run runs a leaf with its positional arguments.
	run  func(ctx context.Context, a *app, args []string) error
	subs []*command

	path string // "hubwire device add", set by dispatch
}

// usageError is bad input on the command line: a missing or extra
// argument, an unknown flag or command, a value out of range. It exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a *usageError.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errUsageShown exits 2 after the usage was printed.
var errUsageShown = errors.New("usage shown")

// errSilent ends a command with exit code 1 when it has already said why
// (the demo's transcript names the failing step).
var errSilent = errors.New("failed")

func (a *app) getenv(name string) string {
	if a.lookupEnv == nil {
		return ""
	}
	v, _ := a.lookupEnv(name)
	return v
}

func (a *app) run(ctx context.Context, args []string) int {
	root := rootCommand()
	root.path = "hubwire"
	cmd, err := a.dispatch(ctx, root, args)
	if err == nil {
		return 0
	}
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "%s: %s (see '%s --help')\n", cmd.path, oneLine(ue.msg), cmd.path)
		return 2
	case errors.Is(err, errUsageShown):
		return 2
	case errors.Is(err, errSilent):
		return 1
	default:
		fmt.Fprintf(a.stderr, "%s: %s\n", cmd.path, oneLine(err.Error()))
		return 1
	}
}

// oneLine joins the lines of a message so that every error is one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\r", " ")), " ")
}

// dispatch finds the command args name and runs it. It returns the
// command it reached, for the error message.
func (a *app) dispatch(ctx context.Context, cmd *command, args []string) (*command, error) {
	for cmd.subs != nil {
		if len(args) == 0 {
			a.printGroupHelp(a.stderr, cmd)
			return cmd, errUsageShown
		}
		switch args[0] {
		case "-h", "-help", "--help", "help":
			if args[0] == "help" && len(args) > 1 {
				// "hubwire help device add" is "hubwire device add --help".
				return a.dispatch(ctx, cmd, append(args[1:], "--help"))
			}
			a.printGroupHelp(a.stdout, cmd)
			return cmd, nil
		}
		var next *command
		for _, s := range cmd.subs {
			if s.name == args[0] {
				next = s
				break
			}
		}
		if next == nil {
			if strings.HasPrefix(args[0], "-") {
				return cmd, usagef("flag %s before the command: one of %s", args[0], subNames(cmd))
			}
			return cmd, usagef("unknown command %q: one of %s", args[0], subNames(cmd))
		}
		next.path = cmd.path + " " + next.name
		cmd, args = next, args[1:]
	}
	fs := flag.NewFlagSet(cmd.path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		a.printHelp(cmd, fs)
		return cmd, nil
	}
	if err != nil {
		return cmd, &usageError{msg: err.Error()}
	}
	return cmd, cmd.run(ctx, a, pos)
}

// parseFlags parses flags anywhere among the positional arguments
// ("device add dev1 --edge" as well as "device add --edge dev1"); an
// argument after "--" is always positional.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func subNames(cmd *command) string {
	names := make([]string, len(cmd.subs))
	for i, s := range cmd.subs {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}

func (a *app) printGroupHelp(w io.Writer, cmd *command) {
	if cmd.long != "" {
		fmt.Fprintf(w, "%s\n\n", wrap(cmd.long))
	}
	fmt.Fprintf(w, "Usage: %s <command> [flags] [args]\n\nCommands:\n", cmd.path)
	width := 0
	for _, s := range cmd.subs {
		width = max(width, len(s.name))
	}
	for _, s := range cmd.subs {
		fmt.Fprintf(w, "  %-*s  %s\n", width, s.name, s.summary)
	}
	if cmd.example != "" {
		fmt.Fprintf(w, "\nExamples:\n%s\n", indent(cmd.example))
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's flags and an example.\n", cmd.path)
}

func (a *app) printHelp(cmd *command, fs *flag.FlagSet) {
	w := a.stdout
	fmt.Fprintf(w, "Usage: %s %s\n\n", cmd.path, cmd.usage)
	text := cmd.long
	if text == "" {
		text = cmd.summary
	}
	fmt.Fprintf(w, "%s\n", wrap(text))
	type row struct{ name, usage string }
	var rows []row
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		if _, ok := f.Value.(*durationValue); ok && kind == "value" {
			kind = "duration"
		}
		if _, ok := f.Value.(*bytesValue); ok && kind == "value" {
			kind = "size"
		}
		name := "--" + f.Name
		if kind != "" {
			name += " " + kind
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		rows = append(rows, row{name, usage})
	})
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	if len(rows) > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		width := 0
		for _, r := range rows {
			width = max(width, len(r.name))
		}
		for _, r := range rows {
			fmt.Fprintf(w, "  %-*s  %s\n", width, r.name, r.usage)
		}
	}
	if cmd.example != "" {
		fmt.Fprintf(w, "\nExample:\n%s\n", indent(cmd.example))
	}
}

// wrap folds paragraphs (separated by blank lines) at 78 columns; lines
// starting with a space are kept as they are.
func wrap(s string) string {
	var out []string
	for _, para := range strings.Split(strings.TrimSpace(s), "\n\n") {
		if strings.HasPrefix(para, " ") {
			out = append(out, para)
			continue
		}
		var b strings.Builder
		col := 0
		for _, word := range strings.Fields(para) {
			if col > 0 && col+1+len(word) > 78 {
				b.WriteByte('\n')
				col = 0
			} else if col > 0 {
				b.WriteByte(' ')
				col++
			}
			b.WriteString(word)
			col += len(word)
		}
		out = append(out, b.String())
	}
	return strings.Join(out, "\n\n")
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

// readSecret resolves a secret given as a flag value: "-" reads one line
// from the standard input, so that it stays out of the shell history and
// the process list.
func (a *app) readSecret(v string) (string, error) {
	if v != "-" {
		return v, nil
	}
	if a.stdin == nil {
		return "", usagef("no standard input to read the secret from")
	}
	line, err := a.stdinReader().ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the standard input: %w", err)
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return "", usagef("the standard input holds no secret")
	}
	return line, nil
}

// exactArgs checks the number of positional arguments.
func exactArgs(args []string, names ...string) error {
	switch {
	case len(args) < len(names):
		return usagef("missing %s", strings.Join(names[len(args):], " "))
	case len(args) > len(names):
		return usagef("unexpected argument %q", args[len(names)])
	}
	return nil
}

// rootCommand builds the command tree, fresh for every invocation so that
// flag values never leak from one run to the next.
func rootCommand() *command {
	return &command{
		name: "hubwire",
		long: "hubwire talks Azure IoT Hub's device protocol and runs a local IoT Hub emulator.",
		subs: []*command{
			demoCommand(),
			emulatorCommand(),
			deviceCommand(),
			twinCommand(),
			methodCommand(),
			c2dCommand(),
			monitorCommand(),
			sendCommand(),
			listenCommand(),
			sasCommand(),
			simulateCommand(),
		},
		example: "go run ./cmd/hubwire demo\nhubwire emulator --in-memory\nhubwire sas token --connection-string \"$IOTHUB_DEVICE_CONNECTION_STRING\" --ttl 24h",
	}
}
