package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal a command shuts down cleanly; a second
		// one gets the default behaviour and ends the process at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args (without the program name) and returns
// the process exit code: 0 on success, 1 when the command failed, 2 for
// bad usage. Environment variables are read with os.LookupEnv and the
// standard input is os.Stdin; tests that need other ones build an app.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{
		stdin:     os.Stdin,
		stdout:    stdout,
		stderr:    stderr,
		lookupEnv: os.LookupEnv,
		isTTY:     func() bool { return isTerminal(stdout) },
	}
	return a.run(ctx, args)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
