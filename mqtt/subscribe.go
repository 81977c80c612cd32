package mqtt

import (
	"context"
	"slices"

	"github.com/hubwire/hubwire/packet"
)

// Subscribe sends one SUBSCRIBE for subs and waits, within ctx, for the
// SUBACK. It returns the QoS granted to each filter, in order; a refused
// filter gets SubackFailure and makes the error a *SubscribeError (the
// other filters are subscribed). Handlers are registered before the
// SUBSCRIBE leaves, so retained messages sent right after it reach them.
// Subscriptions are restored by the client when it reconnects to a broker
// that kept no session.
func (c *Client) Subscribe(ctx context.Context, subs ...Subscription) ([]packet.QoS, error) {
	if len(subs) == 0 {
		return nil, invalid("subscribe: no subscriptions", nil)
	}
	sp := packet.Subscribe{Filters: make([]packet.Subscription, len(subs))}
	filters := make([]string, len(subs))
	for i, s := range subs {
		if err := packet.ValidateTopicFilter([]byte(s.Filter)); err != nil {
			return nil, invalid("subscribe: filter "+s.Filter, err)
		}
		if !s.QoS.Valid() {
			return nil, invalid("subscribe: QoS must be 0, 1 or 2", nil)
		}
		sp.Filters[i] = packet.Subscription{Filter: []byte(s.Filter), QoS: s.QoS}
		filters[i] = s.Filter
	}
	req := make(chan []byte, 1)

	c.mu.Lock()
	cn := c.cur
	switch {
	case c.closing:
		c.mu.Unlock()
		return nil, ErrClosed
	case cn == nil || cn.closing: // closing: Reconnect queued DISCONNECT
		c.mu.Unlock()
		return nil, ErrNotConnected
	}
	var ok bool
	if sp.ID, ok = c.allocIDLocked(); !ok {
		c.mu.Unlock()
		return nil, errNoPacketID
	}
	bp := c.bufLocked(cn)
	var err error
	if *bp, err = sp.AppendBinary(*bp); err != nil {
		c.mu.Unlock()
		return nil, invalid("subscribe", err)
	}
	for _, s := range subs {
		c.addRouteLocked(route{filter: s.Filter, qos: s.QoS, handler: s.Handler})
	}
	pe := c.newPendingLocked()
	pe.kind, pe.req, pe.filters = kindSubscribe, req, filters
	c.pending[sp.ID] = pe
	c.mu.Unlock()

	select {
	case codes, ok := <-req:
		if !ok {
			return nil, ErrConnectionLost
		}
		granted := make([]packet.QoS, len(codes))
		var refused []string
		for i, code := range codes {
			granted[i] = packet.QoS(code)
			if code == packet.SubackFailure && i < len(filters) {
				refused = append(refused, filters[i])
			}
		}
		if refused != nil {
			return granted, &SubscribeError{Filters: refused}
		}
		return granted, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Unsubscribe sends one UNSUBSCRIBE for filters and waits, within ctx, for
// the UNSUBACK; then their handlers are removed.
func (c *Client) Unsubscribe(ctx context.Context, filters ...string) error {
	if len(filters) == 0 {
		return invalid("unsubscribe: no filters", nil)
	}
	up := packet.Unsubscribe{Filters: make([][]byte, len(filters))}
	for i, f := range filters {
		if err := packet.ValidateTopicFilter([]byte(f)); err != nil {
			return invalid("unsubscribe: filter "+f, err)
		}
		up.Filters[i] = []byte(f)
	}
	req := make(chan []byte, 1)
	c.mu.Lock()
	cn := c.cur
	switch {
	case c.closing:
		c.mu.Unlock()
		return ErrClosed
	case cn == nil || cn.closing: // closing: Reconnect queued DISCONNECT
		c.mu.Unlock()
		return ErrNotConnected
	}
	var ok bool
	if up.ID, ok = c.allocIDLocked(); !ok {
		c.mu.Unlock()
		return errNoPacketID
	}
	bp := c.bufLocked(cn)
	var err error
	if *bp, err = up.AppendBinary(*bp); err != nil {
		c.mu.Unlock()
		return invalid("unsubscribe", err)
	}
	pe := c.newPendingLocked()
	pe.kind, pe.req, pe.filters = kindUnsubscribe, req, slices.Clone(filters)
	c.pending[up.ID] = pe
	c.mu.Unlock()

	select {
	case _, ok := <-req:
		if !ok {
			return ErrConnectionLost
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onSuback completes a SUBSCRIBE. codes aliases the reader's frame.
func (c *Client) onSuback(id packet.ID, codes []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pe := c.pending[id]
	if pe == nil || pe.kind != kindSubscribe {
		return
	}
	delete(c.pending, id)
	var refused []string
	for i, code := range codes {
		if code == packet.SubackFailure && i < len(pe.filters) {
			refused = append(refused, pe.filters[i])
		}
	}
	if refused != nil {
		c.removeRoutesLocked(refused)
		c.log.Warn("mqtt: subscription refused", "filters", refused)
	}
	if pe.req != nil {
		pe.req <- slices.Clone(codes)
	}
}

// addRouteLocked adds or replaces the subscription for r.filter.
func (c *Client) addRouteLocked(r route) {
	i := slices.IndexFunc(c.subs, func(x route) bool { return x.filter == r.filter })
	subs := slices.Clone(c.subs)
	if i >= 0 {
		subs[i] = r
	} else {
		subs = append(subs, r)
	}
	c.subs = subs
	c.routes.Store(&subs)
}

func (c *Client) removeRoutesLocked(filters []string) {
	subs := slices.DeleteFunc(slices.Clone(c.subs), func(x route) bool { return slices.Contains(filters, x.filter) })
	c.subs = subs
	c.routes.Store(&subs)
}
