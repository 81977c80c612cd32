package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/hubwire/hubwire/internal/mosquitto"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// broker is a running broker child process.
type broker struct {
	name string
	addr string
	stop func()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitAccept(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting after %v: %w", addr, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startMosquitto starts Debian's mosquitto with internal/mosquitto (the
// tests' launcher) on a free loopback port, configured for throughput runs:
// no persistence, deep queues, 64 messages in flight towards each client.
func startMosquitto(dir string) (*broker, error) {
	bin, err := mosquitto.Path()
	if err != nil {
		return nil, err
	}
	m, err := mosquitto.New(bin, dir, mosquitto.Options{Extra: "max_inflight_messages 64"})
	if err != nil {
		return nil, err
	}
	if err := m.Start(); err != nil {
		return nil, err
	}
	return &broker{name: "mosquitto 2.0.11", addr: m.Addr, stop: func() { _ = m.Stop() }}, nil
}

// startMochi starts this program in mochi mode as a child process.
func startMochi() (*broker, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(os.Args[0], "-mochi", addr)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &broker{name: "mochi v2.7.9", addr: addr, stop: func() { stopProcess(cmd) }}
	if err := waitAccept(addr, 10*time.Second); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

// runMochi is the broker process: mochi v2.7.9 with one TCP listener that
// lets every client in. It runs until SIGTERM.
func runMochi(addr string) error {
	s := mochi.New(&mochi.Options{InlineClient: false, Logger: slog.New(slog.DiscardHandler)})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		return err
	}
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		return err
	}
	if err := s.Serve(); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return s.Close()
}

// stopProcess stops the child cmd by its pid: SIGTERM, then SIGKILL after a
// bound.
func stopProcess(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
