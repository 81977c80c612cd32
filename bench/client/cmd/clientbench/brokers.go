package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// broker is a running broker child process.
type broker struct {
	name string
	addr string
	cmd  *exec.Cmd
}

func (b *broker) stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
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

func mosquittoPath() (string, error) {
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto", nil
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	return "", errors.New("mosquitto not found (apt-get install mosquitto)")
}

// startMosquitto starts Debian's mosquitto on a free loopback port with a
// configuration suited to throughput runs: no persistence, deep queues, 64
// messages in flight towards each client.
func startMosquitto(dir string) (*broker, error) {
	bin, err := mosquittoPath()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	conf := "listener " + port + " 127.0.0.1\nallow_anonymous true\npersistence false\n" +
		"max_inflight_messages 64\nmax_queued_messages 1000000\nmax_queued_bytes 0\nlog_type error\n"
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", path)
	// mosquitto prints a warning when run as root; errors go to its log_dest.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &broker{name: "mosquitto 2.0.11", addr: addr, cmd: cmd}
	if err := waitAccept(addr, 10*time.Second); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
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
	b := &broker{name: "mochi v2.7.9", addr: addr, cmd: cmd}
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
