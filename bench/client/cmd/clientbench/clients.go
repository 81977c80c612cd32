package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	autopaho "github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	pahov1 "github.com/eclipse/paho.mqtt.golang"
	"github.com/hubwire/hubwire/mqtt"
	"github.com/hubwire/hubwire/packet"
)

// client is what a worker process drives: one connection of one library.
type client interface {
	// publish0 sends n QoS 0 messages, then one QoS 1 marker, and returns
	// when the marker is acknowledged: the broker has read everything.
	publish0(ctx context.Context, topic string, payload []byte, n int) error
	// publish1 sends n QoS 1 messages keeping window unacknowledged, and
	// returns when all are acknowledged.
	publish1(ctx context.Context, topic string, payload []byte, n, window int) error
	// subscribe calls onMsg for every message on topic.
	subscribe(ctx context.Context, topic string, qos byte, onMsg func()) error
	close()
}

var clientNames = []string{"hubwire", "paho.mqtt.golang", "paho.golang", "raw"}

// receiveOnly names the clients measured only in the receive modes.
var receiveOnly = map[string]bool{"raw": true}

func dial(ctx context.Context, lib, addr, id string) (client, error) {
	switch lib {
	case "hubwire":
		return dialHubwire(ctx, addr, id)
	case "paho.mqtt.golang":
		return dialPahoV1(addr, id)
	case "paho.golang":
		return dialAutopaho(ctx, addr, id)
	case "raw":
		return dialRaw(ctx, addr, id)
	}
	return nil, fmt.Errorf("unknown client %q", lib)
}

// hubwire

type hubwireClient struct {
	c     *mqtt.Client
	onMsg func()
}

func dialHubwire(ctx context.Context, addr, id string) (client, error) {
	h := &hubwireClient{}
	c, err := mqtt.NewClient(mqtt.Config{
		URL: "tcp://" + addr, ClientID: id, CleanSession: true, InFlight: 64,
		OnMessage: func(*mqtt.Message) {
			if h.onMsg != nil {
				h.onMsg()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	if _, err := c.Connect(ctx); err != nil {
		return nil, err
	}
	h.c = c
	return h, nil
}

func (h *hubwireClient) publish0(ctx context.Context, topic string, payload []byte, n int) error {
	m := &mqtt.Message{Topic: []byte(topic), Payload: payload}
	for range n {
		if err := h.c.Publish(ctx, m); err != nil {
			return err
		}
	}
	m.QoS = packet.QoS1
	return h.c.Publish(ctx, m)
}

func (h *hubwireClient) publish1(ctx context.Context, topic string, payload []byte, n, window int) error {
	var acked atomic.Int64
	all := make(chan struct{})
	var firstErr atomic.Value
	done := func(err error) {
		if err != nil {
			firstErr.CompareAndSwap(nil, err)
		}
		if acked.Add(1) == int64(n) {
			close(all)
		}
	}
	m := &mqtt.Message{Topic: []byte(topic), Payload: payload, QoS: packet.QoS1}
	for range n {
		if err := h.c.PublishAsync(ctx, m, done); err != nil {
			return err
		}
	}
	select {
	case <-all:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return nil
}

func (h *hubwireClient) subscribe(ctx context.Context, topic string, qos byte, onMsg func()) error {
	h.onMsg = onMsg
	_, err := h.c.Subscribe(ctx, mqtt.Subscription{Filter: topic, QoS: packet.QoS(qos)})
	return err
}

func (h *hubwireClient) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.c.Close(ctx)
}

// paho.mqtt.golang v1.5.1

type pahoV1Client struct {
	c     pahov1.Client
	onMsg func()
}

func dialPahoV1(addr, id string) (client, error) {
	p := &pahoV1Client{}
	opts := pahov1.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(false).
		SetDefaultPublishHandler(func(pahov1.Client, pahov1.Message) {
			if p.onMsg != nil {
				p.onMsg()
			}
		})
	p.c = pahov1.NewClient(opts)
	t := p.c.Connect()
	if !t.WaitTimeout(10 * time.Second) {
		return nil, errors.New("paho: connect timeout")
	}
	if err := t.Error(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pahoV1Client) publish0(ctx context.Context, topic string, payload []byte, n int) error {
	for range n {
		// paho queues QoS 0 publishes; their tokens complete once written.
		p.c.Publish(topic, 0, false, payload)
	}
	return waitToken(ctx, p.c.Publish(topic, 1, false, payload))
}

func (p *pahoV1Client) publish1(ctx context.Context, topic string, payload []byte, n, window int) error {
	// paho has no in-flight limit: keep a ring of the last window tokens
	// and wait for the oldest before publishing the next.
	ring := make([]pahov1.Token, window)
	for i := range n {
		if t := ring[i%window]; t != nil {
			if err := waitToken(ctx, t); err != nil {
				return err
			}
		}
		ring[i%window] = p.c.Publish(topic, 1, false, payload)
	}
	for _, t := range ring {
		if t != nil {
			if err := waitToken(ctx, t); err != nil {
				return err
			}
		}
	}
	return nil
}

func waitToken(ctx context.Context, t pahov1.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pahoV1Client) subscribe(ctx context.Context, topic string, qos byte, onMsg func()) error {
	p.onMsg = onMsg
	return waitToken(ctx, p.c.Subscribe(topic, qos, nil))
}

func (p *pahoV1Client) close() { p.c.Disconnect(100) }

// paho.golang v0.23.0 (autopaho, MQTT v5)

type autopahoClient struct {
	cm    *autopaho.ConnectionManager
	onMsg atomic.Pointer[func()]
}

func dialAutopaho(ctx context.Context, addr, id string) (client, error) {
	u, err := url.Parse("mqtt://" + addr)
	if err != nil {
		return nil, err
	}
	a := &autopahoClient{}
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     60,
		CleanStartOnInitialConnection: true,
		ReconnectBackoff:              func(int) time.Duration { return time.Second },
		ClientConfig: paho.ClientConfig{
			ClientID: id,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(paho.PublishReceived) (bool, error) {
				if f := a.onMsg.Load(); f != nil {
					(*f)()
				}
				return true, nil
			}},
		},
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := cm.AwaitConnection(ctx); err != nil {
		return nil, err
	}
	a.cm = cm
	return a, nil
}

func (a *autopahoClient) publish0(ctx context.Context, topic string, payload []byte, n int) error {
	p := &paho.Publish{Topic: topic, Payload: payload}
	for range n {
		if _, err := a.cm.Publish(ctx, p); err != nil {
			return err
		}
	}
	_, err := a.cm.Publish(ctx, &paho.Publish{Topic: topic, Payload: payload, QoS: 1})
	return err
}

func (a *autopahoClient) publish1(ctx context.Context, topic string, payload []byte, n, window int) error {
	// autopaho's Publish blocks until the PUBACK: window goroutines keep
	// window messages in flight.
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range window {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := a.cm.Publish(ctx, &paho.Publish{Topic: topic, Payload: payload, QoS: 1}); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return nil
}

func (a *autopahoClient) subscribe(ctx context.Context, topic string, qos byte, onMsg func()) error {
	a.onMsg.Store(&onMsg)
	_, err := a.cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: qos}}})
	return err
}

func (a *autopahoClient) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.cm.Disconnect(ctx)
}
