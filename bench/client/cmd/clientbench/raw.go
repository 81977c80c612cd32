package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hubwire/hubwire/packet"
)

// rawClient is a hand-written MQTT 3.1.1 subscriber, the floor a client
// engine is measured against: one goroutine reads the socket with
// packet.Reader, calls the handler inline and answers the QoS 1 messages of
// each read burst with one write. It has no delivery queue, no keep-alive,
// no reconnection and no Store, and it cannot publish.
type rawClient struct {
	nc   net.Conn
	r    *packet.Reader
	done chan struct{}
}

var errRawReceiveOnly = errors.New("raw: receive only")

func dialRaw(ctx context.Context, addr, id string) (client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	connect := packet.Connect{CleanSession: true, KeepAlive: 0, ClientID: []byte(id)}
	b, err := connect.MarshalBinary()
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(b); err != nil {
		nc.Close()
		return nil, err
	}
	r := packet.NewReader(nc, 1<<20)
	f, err := r.Next()
	if err != nil {
		nc.Close()
		return nil, err
	}
	var ack packet.Connack
	if err := ack.Decode(f); err != nil || ack.ReturnCode != packet.ConnackAccepted {
		nc.Close()
		return nil, fmt.Errorf("raw: CONNACK %v %v", err, ack.ReturnCode)
	}
	_ = nc.SetDeadline(time.Time{})
	return &rawClient{nc: nc, r: r, done: make(chan struct{})}, nil
}

func (c *rawClient) publish0(context.Context, string, []byte, int) error { return errRawReceiveOnly }

func (c *rawClient) publish1(context.Context, string, []byte, int, int) error {
	return errRawReceiveOnly
}

func (c *rawClient) subscribe(ctx context.Context, topic string, qos byte, onMsg func()) error {
	sub := packet.Subscribe{ID: 1, Filters: []packet.Subscription{{Filter: []byte(topic), QoS: packet.QoS(qos)}}}
	b, err := sub.MarshalBinary()
	if err != nil {
		return err
	}
	if _, err := c.nc.Write(b); err != nil {
		return err
	}
	f, err := c.r.Next()
	if err != nil {
		return err
	}
	var ack packet.Suback
	if err := ack.Decode(f); err != nil {
		return err
	}
	go c.read(onMsg)
	return nil
}

// read handles PUBLISH packets until the connection closes: the PUBACKs of
// one read burst leave in one write, in arrival order.
func (c *rawClient) read(onMsg func()) {
	defer close(c.done)
	var p packet.Publish
	acks := make([]byte, 0, 4096)
	for {
		f, err := c.r.Next()
		if err != nil {
			return
		}
		if f.Type() == packet.TypePublish && p.Decode(f) == nil {
			onMsg()
			if p.QoS == packet.QoS1 {
				acks, _ = (&packet.Puback{ID: p.ID}).AppendBinary(acks)
			}
		}
		if len(acks) > 0 && c.r.Buffered() == 0 {
			if _, err := c.nc.Write(acks); err != nil {
				return
			}
			acks = acks[:0]
		}
	}
}

func (c *rawClient) close() {
	_, _ = c.nc.Write([]byte{byte(packet.TypeDisconnect) << 4, 0})
	c.nc.Close()
	<-c.done
}
