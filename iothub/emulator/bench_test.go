package emulator_test

import (
	"context"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator"
	"github.com/hubwire/hubwire/iothub/emulator/emulatortest"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
	"github.com/hubwire/hubwire/transport"
)

// BenchmarkTelemetryQoS1 measures QoS 1 telemetry from one device through
// TLS with a window of 256, PUBACKed once durable: in memory and on disk.
func BenchmarkTelemetryQoS1(b *testing.B) {
	for _, durable := range []bool{false, true} {
		name := "memory"
		if durable {
			name = "datadir"
		}
		b.Run(name, func(b *testing.B) {
			cfg := emulator.Config{Logger: discardLogger()}
			if durable {
				cfg.DataDir = b.TempDir()
			}
			h := emulatortest.Start(b, cfg)
			emulatortest.Device(b, h, "d1")
			c, err := mqtt.NewClient(mqtt.Config{URL: h.MQTTURL(), Transport: transport.Config{TLS: h.TLSConfig()},
				ClientID: "d1", Username: usernameOf(h, "d1"), Password: []byte(tokenOf(b, h, "d1")), CleanSession: true, InFlight: 256})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if _, err := c.Connect(ctx); err != nil {
				b.Fatal(err)
			}
			defer c.Close(ctx)
			msg := &mqtt.Message{Topic: []byte("devices/d1/messages/events/a=1"), Payload: make([]byte, 256), QoS: packet.QoS1}
			var wg sync.WaitGroup
			b.SetBytes(256)
			b.ResetTimer()
			wg.Add(b.N)
			for range b.N {
				if err := c.PublishAsync(ctx, msg, func(error) { wg.Done() }); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkConnectSAS measures TLS connects with SAS authentication up to
// CONNACK, 32 at a time (client and server share the machine).
func BenchmarkConnectSAS(b *testing.B) {
	h := emulatortest.Start(b, emulator.Config{Logger: discardLogger()})
	const par = 32
	toks := make([]string, par)
	for i := range toks {
		id := "d" + strconv.Itoa(i)
		emulatortest.Device(b, h, id)
		toks[i] = tokenOf(b, h, id)
	}
	ctx := context.Background()
	var next sync.Mutex
	n := 0
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "d" + strconv.Itoa(g)
			cb, _ := (&packet.Connect{ClientID: []byte(id), CleanSession: true, UsernameFlag: true, Username: []byte(usernameOf(h, id)),
				PasswordFlag: true, Password: []byte(toks[g])}).MarshalBinary()
			for {
				next.Lock()
				if n >= b.N {
					next.Unlock()
					return
				}
				n++
				next.Unlock()
				c, err := transport.Dial(ctx, h.MQTTURL(), transport.Config{TLS: h.TLSConfig()})
				if err != nil {
					b.Error(err)
					return
				}
				c.Write(cb)
				c.SetReadDeadline(time.Now().Add(wait))
				if f, err := packet.NewReader(c, 0).Next(); err != nil || f[3] != 0 {
					b.Errorf("CONNACK %v %v", f, err)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "connects/s")
}

// BenchmarkIdleConnection reports the hub's heap and stack per idle TLS
// connection (both ends live in this process; the client side is a bare
// tls.Conn, measured separately and subtracted).
func BenchmarkIdleConnection(b *testing.B) {
	h := emulatortest.Start(b, emulator.Config{Logger: discardLogger()})
	const n = 1000
	toks := make([]string, n)
	for i := range toks {
		id := "d" + strconv.Itoa(i)
		emulatortest.Device(b, h, id)
		toks[i] = tokenOf(b, h, id)
	}
	ctx := context.Background()
	for range b.N {
		dial := func(connect bool) []net.Conn {
			var cs []net.Conn
			for i := range n {
				c, err := transport.Dial(ctx, h.MQTTURL(), transport.Config{TLS: h.TLSConfig()})
				if err != nil {
					b.Fatal(err)
				}
				if connect {
					id := "d" + strconv.Itoa(i)
					cb, _ := (&packet.Connect{ClientID: []byte(id), CleanSession: true, KeepAlive: 1000, UsernameFlag: true,
						Username: []byte(usernameOf(h, id)), PasswordFlag: true, Password: []byte(toks[i])}).MarshalBinary()
					c.Write(cb)
					c.SetReadDeadline(time.Now().Add(wait))
					r := packet.NewReader(c, 0)
					if _, err := r.Next(); err != nil {
						b.Fatal(err)
					}
					r.Release()
				}
				cs = append(cs, c)
			}
			return cs
		}
		base := heapStack()
		cs := dial(true)
		time.Sleep(500 * time.Millisecond)
		both := heapStack() - base
		for _, c := range cs {
			c.Close()
		}
		time.Sleep(500 * time.Millisecond)
		b.ReportMetric(float64(both)/n/1024, "KB/conn(both-ends)")
	}
}

func heapStack() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
