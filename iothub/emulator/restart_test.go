package emulator_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub"
	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
	"github.com/hubwire/hubwire/sas"
	"github.com/hubwire/hubwire/transport"
)

// childEnv makes the test binary run an emulator instead of the tests: a
// subprocess the restart test can SIGKILL.
const childEnv = "HUBWIRE_EMULATOR_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChild(dir, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// runChild serves a hub on dir and a line protocol on stdin: each command
// is answered by one line "OK …" or "ERR …".
//
//	device ID            → OK primaryKey (created when missing)
//	c2d ID BODY          → OK messageId
//	desired ID JSON      → OK version
//	twin ID              → OK twinJSON
//	telemetry ID         → OK ["body",…]
func runChild(dir string, in io.Reader, out io.Writer) int {
	ctx := context.Background()
	h, err := emulator.Start(ctx, emulator.Config{DataDir: dir, MQTTAddr: "127.0.0.1:0", HTTPSAddr: "off"})
	if err != nil {
		fmt.Fprintln(out, "ERR", err)
		return 1
	}
	defer h.Close()
	fmt.Fprintln(out, "READY", h.MQTTAddr())
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 3)
		reply, err := childCommand(ctx, h, f)
		if err != nil {
			fmt.Fprintln(out, "ERR", err)
		} else {
			fmt.Fprintln(out, "OK", reply)
		}
	}
	return 0
}

func childCommand(ctx context.Context, h *emulator.Hub, f []string) (string, error) {
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	switch f[0] {
	case "device":
		d, err := h.GetDevice(arg(1))
		if err != nil {
			d, err = h.CreateDevice(ctx, emulator.Device{DeviceID: arg(1)})
		}
		return d.Authentication.SymmetricKey.PrimaryKey, err
	case "c2d":
		return h.SendC2D(ctx, arg(1), emulator.C2DMessage{Body: []byte(arg(2))})
	case "desired":
		v, err := h.UpdateDesired(ctx, arg(1), "", []byte(arg(2)))
		return strconv.FormatInt(v, 10), err
	case "twin":
		tw, err := h.GetTwin(arg(1), "")
		b, _ := json.Marshal(tw)
		return string(b), err
	case "telemetry":
		ms, err := h.ReadTelemetry(emulator.Earliest, 1<<20)
		var bodies []string
		for _, m := range ms {
			if m.DeviceID == arg(1) {
				bodies = append(bodies, string(m.Body))
			}
		}
		b, _ := json.Marshal(bodies)
		return string(b), err
	}
	return "", fmt.Errorf("unknown command %q", f[0])
}

// child is a running emulator subprocess.
type child struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	addr string
}

func startChild(t *testing.T, dir string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, cmd: cmd, in: in, out: bufio.NewReader(outp)}
	t.Cleanup(func() { c.kill() })
	line := c.line()
	addr, ok := strings.CutPrefix(line, "READY ")
	if !ok {
		t.Fatalf("child: %s", line)
	}
	c.addr = addr
	return c
}

// line reads one line from the child, bounded by the wait.
func (c *child) line() string {
	c.t.Helper()
	ch := make(chan string, 1)
	go func() {
		s, _ := c.out.ReadString('\n')
		ch <- strings.TrimSpace(s)
	}()
	select {
	case s := <-ch:
		return s
	case <-time.After(wait):
		c.t.Fatal("child did not answer")
		return ""
	}
}

func (c *child) do(cmd string) string {
	c.t.Helper()
	fmt.Fprintln(c.in, cmd)
	s := c.line()
	r, ok := strings.CutPrefix(s, "OK ")
	if !ok && s != "OK" {
		c.t.Fatalf("%s: %s", cmd, s)
	}
	return r
}

// kill sends SIGKILL to the child's pid and reaps it.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// childDevice connects to a child hub with our mqtt client.
func childDevice(t *testing.T, c *child, dir, id, key string, clean bool) (*dev, bool) {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dir, "certs", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tok, err := sas.NewTokenBase64(sas.DeviceResource("localhost", id), key, "", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	d := &dev{t: t, ch: make(chan struct{}, 1024)}
	cl, err := mqtt.NewClient(mqtt.Config{
		URL:            "tls://" + c.addr,
		Transport:      transport.Config{TLS: &tls.Config{RootCAs: pool, ServerName: "localhost"}},
		ClientID:       id,
		Username:       (&iothub.Username{Host: "localhost", DeviceID: id}).String(),
		Password:       []byte(tok.String()),
		CleanSession:   clean,
		Reconnect:      mqtt.Backoff{Disabled: true},
		OnMessage:      d.record,
		ConnectTimeout: wait,
	})
	if err != nil {
		t.Fatal(err)
	}
	present, err := cl.Connect(testCtx(t))
	if err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	d.c = cl
	t.Cleanup(func() { cl.Close(context.Background()) })
	return d, present
}

func TestRestartAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	dir := t.TempDir()
	c1 := startChild(t, dir)
	key1 := c1.do("device dev1")
	key2 := c1.do("device dev2")

	// dev1: a persistent session with a desired subscription and a
	// reported patch, then offline.
	d1, _ := childDevice(t, c1, dir, "dev1", key1, false)
	d1.sub(iothub.TwinResponseFilter, iothub.TwinDesiredFilter)
	m := d1.twinReq("$iothub/twin/PATCH/properties/reported/?$rid=r1", "r1", []byte(`{"boot":1}`))
	rep, _ := iothub.ParseTopic(m.Topic)
	if rep.Status != 204 {
		t.Fatalf("reported patch: %s", m.Topic)
	}
	d1.c.Close(testCtx(t))

	// While dev1 is offline: a C2D message and a desired update.
	c1.do("c2d dev1 hello-after-restart")
	desiredV := c1.do(`desired dev1 {"fw":"2.0"}`)

	// dev2 streams QoS 1 telemetry; the hub is killed mid-stream.
	d2, _ := childDevice(t, c1, dir, "dev2", key2, true)
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			body := "t" + strconv.Itoa(i)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := d2.c.Publish(ctx, &mqtt.Message{Topic: []byte("devices/dev2/messages/events/"), Payload: []byte(body), QoS: packet.QoS1})
			cancel()
			if err != nil {
				return
			}
			mu.Lock()
			acked = append(acked, body)
			mu.Unlock()
		}
	}()
	waitFor(t, "telemetry flowing", func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 50 })
	c1.kill()
	close(stop)
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("publisher did not stop")
	}
	mu.Lock()
	sent := append([]string(nil), acked...)
	mu.Unlock()

	c2 := startChild(t, dir)
	var stored []string
	if err := json.Unmarshal([]byte(c2.do("telemetry dev2")), &stored); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, b := range stored {
		have[b] = true
	}
	for _, b := range sent {
		if !have[b] {
			t.Errorf("PUBACKed telemetry %s lost (%d acked, %d stored)", b, len(sent), len(stored))
		}
	}
	var tw emulator.Twin
	if err := json.Unmarshal([]byte(c2.do("twin dev1")), &tw); err != nil {
		t.Fatal(err)
	}
	if v := fmt.Sprint(tw.Properties.Desired["$version"]); v != desiredV || tw.Properties.Desired["fw"] != "2.0" {
		t.Errorf("desired after restart: %v (want $version %s)", tw.Properties.Desired, desiredV)
	}
	if v := fmt.Sprint(tw.Properties.Reported["$version"]); v != strconv.FormatInt(rep.Version, 10) || fmt.Sprint(tw.Properties.Reported["boot"]) != "1" {
		t.Errorf("reported after restart: %v (want $version %d)", tw.Properties.Reported, rep.Version)
	}

	// dev1 resumes its session and gets the queued message without
	// subscribing again.
	d1b, present := childDevice(t, c2, dir, "dev1", key1, false)
	if !present {
		t.Error("session not present after restart")
	}
	if got := d1b.next("devices/dev1/messages/devicebound/"); string(got.Payload) != "hello-after-restart" {
		t.Fatalf("C2D after restart: %s", got.Payload)
	}
	t.Logf("%d telemetry messages acknowledged before SIGKILL, %d stored", len(sent), len(stored))
}
