package mqtt

import "runtime"

// goroutineID returns the calling goroutine's id, read from the header
// runtime.Stack writes ("goroutine 18 [running]:"). Go offers no other way
// to ask "am I running on that goroutine?", which Close needs to know when
// a handler calls it (golang.org/x/net/http2 does the same in gotrack.go).
// It costs about a microsecond: only Close and the delivery goroutine's
// start call it.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return 0
	}
	var id uint64
	for _, ch := range b[len(prefix):] {
		if ch < '0' || ch > '9' {
			break
		}
		id = id*10 + uint64(ch-'0')
	}
	return id
}
