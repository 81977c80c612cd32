package transport

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestPipeBuffered(t *testing.T) {
	c, s := Pipe(PipeOptions{})
	defer c.Close()
	defer s.Close()
	// Writes complete without a reader, up to the buffer size.
	for _, msg := range []string{"\x10\x02ab", "\xe0\x00"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	if got := readN(t, s, 6, 64); string(got) != "\x10\x02ab\xe0\x00" {
		t.Errorf("read %q", got)
	}
	if _, err := s.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, c, 4, 64); string(got) != "back" {
		t.Errorf("read %q", got)
	}
	if c.LocalAddr().String() != "client" || c.RemoteAddr().String() != "server" || c.LocalAddr().Network() != "pipe" {
		t.Errorf("addresses %v %v", c.LocalAddr(), c.RemoteAddr())
	}
}

func TestPipeBackpressure(t *testing.T) {
	c, s := Pipe(PipeOptions{BufferSize: 16, MaxRead: 5})
	defer c.Close()
	defer s.Close()
	data := bytes.Repeat([]byte("0123456789"), 100)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data) // blocks until the reader makes room
		errc <- err
	}()
	_ = s.SetReadDeadline(time.Now().Add(testTimeout))
	var got []byte
	buf := make([]byte, 64)
	for len(got) < len(data) {
		n, err := s.Read(buf)
		if n > 5 {
			t.Fatalf("Read returned %d bytes, MaxRead is 5", n)
		}
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Error("data differs")
	}
}

func TestPipeDeadlines(t *testing.T) {
	c, s := Pipe(PipeOptions{BufferSize: 4})
	defer c.Close()
	defer s.Close()
	_ = s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := s.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past deadline = %v, want a timeout", err)
	}
	// Clearing the deadline makes reads work again.
	_ = s.SetReadDeadline(time.Time{})
	c.Write([]byte("x"))
	if got := readN(t, s, 1, 1); string(got) != "x" {
		t.Errorf("read %q", got)
	}
	// A full buffer and a past write deadline: the write times out.
	_ = c.SetWriteDeadline(time.Now().Add(-time.Second))
	n, err := c.Write([]byte("12345678"))
	if !errors.As(err, &ne) || !ne.Timeout() || n != 4 {
		t.Errorf("Write into a full pipe = %d, %v; want 4 and a timeout", n, err)
	}
	_ = c.SetDeadline(time.Time{})
}

func TestPipeClose(t *testing.T) {
	c, s := Pipe(PipeOptions{})
	c.Write([]byte("tail"))
	c.Close()
	if got := readN(t, s, 4, 64); string(got) != "tail" {
		t.Errorf("read %q before EOF", got)
	}
	if _, err := s.Read(make([]byte, 4)); err != io.EOF {
		t.Errorf("Read after peer close = %v, want io.EOF", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("Write after peer close = %v, want io.ErrClosedPipe", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read on closed end = %v, want net.ErrClosed", err)
	}
	if err := c.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetDeadline on closed end = %v, want net.ErrClosed", err)
	}

	// Close wakes a blocked Read on the same end.
	c2, s2 := Pipe(PipeOptions{})
	defer s2.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := c2.Read(make([]byte, 1))
		errc <- err
	}()
	c2.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked Read after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Close did not wake the blocked Read")
	}
}

func TestPipeReset(t *testing.T) {
	c, s := Pipe(PipeOptions{})
	defer c.Close()
	defer s.Close()
	c.Write([]byte("lost"))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1)) // blocked until the reset
		errc <- err
	}()
	s.Reset()
	for name, err := range map[string]error{
		"blocked read": <-errc,
		"server read":  func() error { _, err := s.Read(make([]byte, 4)); return err }(),
		"client write": func() error { _, err := c.Write([]byte("x")); return err }(),
		"server write": func() error { _, err := s.Write([]byte("x")); return err }(),
	} {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%s after Reset = %v, want ECONNRESET", name, err)
		}
	}
}

// TestPipeCarriesWebSocket runs WSConns over a Pipe that returns one byte
// per Read: every frame header and payload arrives split.
func TestPipeCarriesWebSocket(t *testing.T) {
	a, b := Pipe(PipeOptions{MaxRead: 1})
	client, server := NewWSConn(a, nil, true), NewWSConn(b, nil, false)
	defer client.Close()
	defer server.Close()
	exchange(t, client, server)
}
