package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// result is what one invocation wrote and returned.
type result struct {
	stdout, stderr string
	code           int
}

// invocation describes one run of the command line in a test.
type invocation struct {
	env   map[string]string
	stdin string
	ctx   context.Context
	tty   bool // stdout is a terminal
}

// hubwire runs the command line in-process with no environment but env.
func (inv invocation) hubwire(t *testing.T, args ...string) result {
	t.Helper()
	ctx := inv.ctx
	if ctx == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
	}
	var stdout, stderr bytes.Buffer
	a := &app{
		stdin:  strings.NewReader(inv.stdin),
		stdout: &stdout,
		stderr: &stderr,
		lookupEnv: func(k string) (string, bool) {
			v, ok := inv.env[k]
			return v, ok
		},
	}
	if inv.tty {
		a.isTTY = func() bool { return true }
	}
	code := a.run(ctx, args)
	return result{stdout.String(), stderr.String(), code}
}

// hubwire runs the command line in-process with an empty environment.
func hubwire(t *testing.T, args ...string) result {
	t.Helper()
	return invocation{}.hubwire(t, args...)
}

// wantOneLineError checks a failed run: the exit code, a single line on
// stderr holding want, nothing on stdout.
func wantOneLineError(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr is not one line: %q", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not contain %q", r.stderr, want)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
}

// leaves walks the command tree and returns the argument paths of every
// runnable command ("device add").
func leaves(c *command, path []string) [][]string {
	if c.subs == nil {
		return [][]string{path}
	}
	var out [][]string
	for _, s := range c.subs {
		out = append(out, leaves(s, append(append([]string(nil), path...), s.name))...)
	}
	return out
}

func TestEveryCommandHasHelpWithAnExample(t *testing.T) {
	all := leaves(rootCommand(), nil)
	if len(all) == 0 {
		t.Fatal("no commands")
	}
	for _, path := range all {
		t.Run(strings.Join(path, "-"), func(t *testing.T) {
			r := hubwire(t, append(path, "--help")...)
			if r.code != 0 {
				t.Fatalf("exit code %d, stderr %q", r.code, r.stderr)
			}
			usage := "Usage: hubwire " + strings.Join(path, " ")
			if !strings.HasPrefix(r.stdout, usage) {
				t.Errorf("help does not start with %q:\n%s", usage, r.stdout)
			}
			ex := strings.Index(r.stdout, "\nExample:\n  ")
			if ex < 0 {
				t.Fatalf("help has no example:\n%s", r.stdout)
			}
			if !strings.Contains(r.stdout[ex:], "hubwire "+strings.Join(path, " ")) {
				t.Errorf("the example does not run the command:\n%s", r.stdout[ex:])
			}
			// "hubwire help device add" says the same.
			if h := hubwire(t, append([]string{"help"}, path...)...); h.stdout != r.stdout || h.code != 0 {
				t.Errorf("'hubwire help %s' differs from --help", strings.Join(path, " "))
			}
		})
	}
}

func TestGroupsListTheirCommands(t *testing.T) {
	r := hubwire(t, "--help")
	if r.code != 0 {
		t.Fatalf("exit code %d", r.code)
	}
	for _, s := range rootCommand().subs {
		if !strings.Contains(r.stdout, "\n  "+s.name+" ") {
			t.Errorf("hubwire --help does not list %q:\n%s", s.name, r.stdout)
		}
	}
	// No command: the list on stderr, exit 2.
	r = hubwire(t)
	if r.code != 2 || !strings.Contains(r.stderr, "Commands:") || r.stdout != "" {
		t.Errorf("no arguments: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestBadUsageIsOneLineAndExitTwo(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `hubwire: unknown command "frobnicate"`},
		{[]string{"--verbose"}, "flag --verbose before the command"},
		{[]string{"sas", "coin"}, `hubwire sas: unknown command "coin"`},
		{[]string{"sas", "token", "--bogus"}, "hubwire sas token: flag provided but not defined: -bogus (see 'hubwire sas token --help')"},
		{[]string{"sas", "token", "extra"}, `unexpected argument "extra"`},
		{[]string{"sas", "token", "--ttl", "soon"}, `invalid value "soon" for flag -ttl`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			wantOneLineError(t, hubwire(t, c.args...), 2, c.want)
		})
	}
}

func TestParseFlagsInterspersed(t *testing.T) {
	r := hubwire(t, "sas", "token", "--", "--json")
	wantOneLineError(t, r, 2, `unexpected argument "--json"`)
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\nb\r\n c "); got != "a b c" {
		t.Errorf("oneLine = %q", got)
	}
}
