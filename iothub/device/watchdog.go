package device

import (
	"sync"
	"time"
)

// dogTick is how often the watchdog looks at every connection. The checks
// are a few atomic loads each; one goroutine serves every Client of the
// process, so an idle fleet of thousands of devices costs one timer.
const dogTick = 250 * time.Millisecond

// dogs is the set of clients the watchdog checks.
var dogs struct {
	mu      sync.Mutex
	clients map[*Client]struct{}
	running bool
}

// watch adds c to the watchdog, starting its goroutine if needed.
func (c *Client) watch() {
	if c.cfg.KeepAlive <= 0 {
		return // keep-alive off: no dead-link detection either
	}
	dogs.mu.Lock()
	defer dogs.mu.Unlock()
	if dogs.clients == nil {
		dogs.clients = make(map[*Client]struct{})
	}
	dogs.clients[c] = struct{}{}
	if !dogs.running {
		dogs.running = true
		go dogLoop()
	}
}

// unwatch removes c; the goroutine ends once no client is left.
func (c *Client) unwatch() {
	dogs.mu.Lock()
	delete(dogs.clients, c)
	dogs.mu.Unlock()
}

func dogLoop() {
	t := time.NewTicker(dogTick)
	defer t.Stop()
	var batch []*Client
	for now := range t.C {
		dogs.mu.Lock()
		if len(dogs.clients) == 0 {
			dogs.running = false
			dogs.mu.Unlock()
			return
		}
		batch = batch[:0]
		for c := range dogs.clients {
			batch = append(batch, c)
		}
		dogs.mu.Unlock()
		for _, c := range batch {
			c.checkLink(now)
		}
		clear(batch)
	}
}

// checkLink finds a dead link the engine's keep-alive cannot see (see
// wireConn.check).
func (c *Client) checkLink(now time.Time) {
	c.mu.Lock()
	live := c.connected
	c.mu.Unlock()
	w := c.wire.Load()
	if !live || w == nil {
		return
	}
	pt := c.cfg.PingTimeout
	if pt <= 0 {
		pt = min(c.cfg.KeepAlive, 10*time.Second)
	}
	if w.check(now, c.cfg.KeepAlive, pt) {
		c.log.Info("device: dead link: no data within the ping timeout; reconnecting")
	}
}
