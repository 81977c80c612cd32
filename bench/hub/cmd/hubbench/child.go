package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/hubwire/hubwire/sas"
)

// hostName is the hub name every identity is scoped to.
const hostName = "localhost"

// deviceKey and deviceKey2 are the primary and secondary SAS keys of every
// bench device (fixed, so the runner, servers and clients agree without
// talking).
var (
	deviceKey  = base64.StdEncoding.EncodeToString([]byte("hubbench primary device key 32B!"))
	deviceKey2 = base64.StdEncoding.EncodeToString([]byte("hubbench second device key 32B!!"))
)

func deviceID(i int) string { return "d" + strconv.Itoa(i) }

// username is the IoT Hub MQTT username of a device.
func username(id string) string { return hostName + "/" + id + "/?api-version=2021-04-12" }

// token is the device's SAS token expiring at the Unix time se: the
// password sent to every server (mochi and mosquitto hold it in their user
// tables; the emulator verifies its HMAC).
func token(id string, se int64) string {
	key, _ := base64.StdEncoding.DecodeString(deviceKey)
	return sas.NewToken(sas.DeviceResource(hostName, id), key, "", time.Unix(se, 0)).String()
}

// child is a child process spoken to by lines on stdin and JSON lines on
// stdout.
type child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan []byte
}

// startChild runs name args as a child in its own process group, stderr
// passed through.
func startChild(name string, args ...string) (*child, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, in: in, lines: make(chan []byte, 16)}
	go func() {
		br := bufio.NewReaderSize(out, 1<<16)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				c.lines <- line
			}
			if err != nil {
				close(c.lines)
				return
			}
		}
	}()
	return c, nil
}

// readJSON decodes the child's next stdout line into v, waiting at most d.
func (c *child) readJSON(v any, d time.Duration) error {
	select {
	case line, ok := <-c.lines:
		if !ok {
			return errors.New("child exited")
		}
		return json.Unmarshal(line, v)
	case <-time.After(d):
		return fmt.Errorf("child %d: no answer within %v", c.cmd.Process.Pid, d)
	}
}

// send writes one line to the child's stdin.
func (c *child) send(line string) error {
	_, err := io.WriteString(c.in, line+"\n")
	return err
}

// stop closes the child's stdin (its signal to finish) and waits, bounded;
// then SIGKILL by pid.
func (c *child) stop() {
	_ = c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
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
