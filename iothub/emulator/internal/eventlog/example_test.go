package eventlog_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/hubwire/hubwire/iothub/emulator/internal/eventlog"
)

func Example() {
	dir, err := os.MkdirTemp("", "eventlog-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := eventlog.Open(dir, eventlog.Options{MaxAge: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	// Append returns once the records are fsync'd.
	first, err := l.Append([]byte("temperature=21"), []byte("temperature=22"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first sequence number:", first)

	// AppendAsync calls back once durable (e.g. to send a PUBACK).
	acked := make(chan uint64, 1)
	l.AppendAsync([]byte("temperature=23"), func(seq uint64, err error) {
		if err != nil {
			log.Print(err)
		}
		acked <- seq
	})
	fmt.Println("acknowledged:", <-acked)

	// Read what is there from the earliest position.
	_, err = l.Read(l.First(), 10, func(r eventlog.Record) bool {
		fmt.Printf("%d %s\n", r.Seq, r.Data)
		return true
	})
	if err != nil {
		log.Fatal(err)
	}

	// Follow the log live from the latest position.
	c := l.NewCursor(l.Next())
	defer c.Close()
	go l.Append([]byte("temperature=24"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("live: %d %s\n", r.Seq, r.Data)
	// Output:
	// first sequence number: 0
	// acknowledged: 2
	// 0 temperature=21
	// 1 temperature=22
	// 2 temperature=23
	// live: 3 temperature=24
}
