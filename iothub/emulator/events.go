package emulator

import (
	"context"
	"sync"
	"time"
)

// EventType says what a ConnectionEvent reports.
type EventType string

// Connection event types.
const (
	EventConnected    EventType = "deviceConnected"
	EventDisconnected EventType = "deviceDisconnected"
)

// ConnectionEvent reports a device or module connecting or disconnecting.
type ConnectionEvent struct {
	Type         EventType
	DeviceID     string
	ModuleID     string // empty for a device
	ConnectionID uint64 // the id the logs use for the connection
	Transport    string // "mqtts" or "wss"
	Time         time.Time
	Reason       string // why it disconnected
}

// eventHub fans connection events out to watchers.
type eventHub struct {
	mu       sync.Mutex
	watchers map[chan ConnectionEvent]struct{}
}

const eventBuffer = 256

// WatchConnections returns a channel of connection events from now until
// ctx is done (then it is closed). The channel buffers 256 events; a
// watcher that falls further behind misses events rather than slowing the
// hub.
func (h *Hub) WatchConnections(ctx context.Context) <-chan ConnectionEvent {
	ch := make(chan ConnectionEvent, eventBuffer)
	e := &h.events
	e.mu.Lock()
	if e.watchers == nil {
		e.watchers = map[chan ConnectionEvent]struct{}{}
	}
	e.watchers[ch] = struct{}{}
	e.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-h.stop:
		}
		e.mu.Lock()
		if _, ok := e.watchers[ch]; ok {
			delete(e.watchers, ch)
			close(ch)
		}
		e.mu.Unlock()
	}()
	return ch
}

func (e *eventHub) emit(ev ConnectionEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.watchers {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (e *eventHub) closeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.watchers {
		close(ch)
		delete(e.watchers, ch)
	}
}
