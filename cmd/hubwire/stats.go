package main

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// latencies collects durations and reports quantiles. It is not safe for
// concurrent use; callers hold their own lock.
type latencies struct {
	d      []time.Duration
	sorted bool
}

func newLatencies() *latencies { return &latencies{} }

func (l *latencies) add(d time.Duration) {
	l.d = append(l.d, d)
	l.sorted = false
}

func (l *latencies) n() int { return len(l.d) }

// quantile returns the q-quantile (nearest rank), or 0 with no samples.
func (l *latencies) quantile(q float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	if !l.sorted {
		slices.Sort(l.d)
		l.sorted = true
	}
	i := int(q*float64(len(l.d))+0.5) - 1
	return l.d[min(max(i, 0), len(l.d)-1)]
}

func (l *latencies) max() time.Duration { return l.quantile(1) }

// progressLine rewrites one terminal line with a status every half second.
type progressLine struct {
	w    io.Writer
	text func() string
	done chan struct{}
	wg   sync.WaitGroup
}

// startProgress starts a progress line on w, a terminal.
func startProgress(w io.Writer, text func() string) *progressLine {
	p := &progressLine{w: w, text: text, done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Fprintf(p.w, "\r%s\x1b[K", p.text())
			case <-p.done:
				return
			}
		}
	}()
	return p
}

// stop ends the progress line and clears it.
func (p *progressLine) stop() {
	close(p.done)
	p.wg.Wait()
	fmt.Fprint(p.w, "\r\x1b[K")
}
