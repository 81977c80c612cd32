package mqtt

// Pings returns the number of PINGREQ packets the client has sent.
func (c *Client) Pings() uint64 { return c.pings.Load() }

// InFlight returns the number of unacknowledged QoS 1/2 publishes.
func (c *Client) InFlight() int { return len(c.sem) }
