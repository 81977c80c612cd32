package iothub

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// TestDeviceTwinConverges drives a DeviceTwin against a HubTwin over a lossy
// "network" that drops, duplicates and reorders messages and disconnects
// at random. Whatever happens, once the network is reliable again and one
// more desired change is delivered, the device's desired state must equal
// the hub's, version included.
func TestDeviceTwinConverges(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		simulateTwin(t, seed)
	}
}

func simulateTwin(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	clk := NewManualClock(epoch)
	dev := NewDeviceTwin(DeviceTwinConfig{Clock: clk, Timeout: time.Second, MaxBuffered: 4})
	hub := NewHubTwin()
	var toDevice, toHub []Action
	lossy := true

	randomPatch := func() []byte {
		m := map[string]any{}
		for range 1 + rng.IntN(3) {
			k := string(rune('a' + rng.IntN(5)))
			switch rng.IntN(4) {
			case 0:
				m[k] = nil
			case 1:
				m[k] = map[string]any{string(rune('x' + rng.IntN(3))): rng.IntN(10)}
			default:
				m[k] = rng.IntN(100)
			}
		}
		b, _ := json.Marshal(m)
		return b
	}
	handle := func(fx TwinEffects) { toHub = append(toHub, fx.Publish...) }
	deliverDevice := func() {
		if len(toDevice) == 0 {
			return
		}
		i := 0
		if lossy && len(toDevice) > 1 && rng.IntN(4) == 0 {
			i = 1 // reorder
		}
		a := toDevice[i]
		if !lossy || rng.IntN(5) != 0 { // drop one in five
			r, err := ParseTopic(a.Topic)
			if err != nil {
				t.Fatal(err)
			}
			fx, _ := dev.Handle(&r, a.Payload)
			handle(fx)
		}
		if lossy && rng.IntN(8) == 0 {
			return // duplicate: keep it for another delivery
		}
		toDevice = append(toDevice[:i], toDevice[i+1:]...)
	}
	deliverHub := func() {
		if len(toHub) == 0 {
			return
		}
		a := toHub[0]
		toHub = toHub[1:]
		if lossy && rng.IntN(5) == 0 {
			return // dropped request
		}
		r, err := ParseTopic(a.Topic)
		if err != nil {
			t.Fatal(err)
		}
		reply, ok := hub.HandleRequest(&r, a.Payload)
		if !ok {
			t.Fatalf("hub refused %q", a.Topic)
		}
		toDevice = append(toDevice, reply)
	}
	connect := func() {
		get, _ := dev.Get()
		toHub = append(toHub, get)
	}

	connect()
	for range 300 {
		switch rng.IntN(10) {
		case 0, 1, 2:
			a, _, err := hub.UpdateDesired(randomPatch())
			if err != nil {
				t.Fatal(err)
			}
			toDevice = append(toDevice, a)
		case 3, 4, 5:
			deliverDevice()
		case 6, 7:
			deliverHub()
		case 8:
			clk.Advance(300 * time.Millisecond)
		case 9:
			if rng.IntN(4) == 0 {
				dev.Disconnected()
				toDevice, toHub = nil, nil
				connect()
			}
		}
	}

	// Heal the network and drain it.
	lossy = false
	clk.Advance(2 * time.Second) // requests lost on the way time out
	drain := func() {
		for n := 0; len(toDevice)+len(toHub) > 0; n++ {
			if n > 10000 {
				t.Fatalf("seed %d: no quiescence", seed)
			}
			deliverHub()
			deliverDevice()
		}
	}
	drain()
	a, _, _ := hub.UpdateDesired([]byte(`{"final":true}`))
	toDevice = append(toDevice, a)
	drain()

	want := hub.Snapshot().Desired
	v, props, ok := dev.Desired()
	if !ok || v != want.Version || js(t, props) != js(t, want.Props) {
		t.Fatalf("seed %d: device v%d %s (ok=%v), hub v%d %s", seed, v, js(t, props), ok, want.Version, js(t, want.Props))
	}
	if dev.Pending() != 0 {
		t.Fatalf("seed %d: %d requests still pending", seed, dev.Pending())
	}
}
