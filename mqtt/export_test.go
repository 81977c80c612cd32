package mqtt

// InFlight returns the number of unacknowledged QoS 1/2 publishes.
func (c *Client) InFlight() int { return len(c.sem) }
