package eventlog

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

const crashDirEnv = "EVENTLOG_CRASH_DIR"

var crashOpts = Options{SegmentBytes: minSegmentBytes, MaxAge: -1, MaxBytes: -1}

// crashRecord is what writer w puts in its i-th record.
func crashRecord(w, i int) []byte {
	return fmt.Appendf(nil, "w%d %d %s", w, i, bytes.Repeat([]byte{'z'}, (w*131+i*17)%900))
}

// TestCrashWriter is the subprocess of TestCrashSIGKILL: it appends from
// several goroutines (synchronous appends and one AppendAsync pipeline)
// and prints "ack seq writer index" for each acknowledged record, until it
// is killed.
func TestCrashWriter(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("subprocess of TestCrashSIGKILL")
	}
	l, err := Open(dir, crashOpts)
	if err != nil {
		fmt.Printf("open-error %v\n", err)
		os.Exit(3)
	}
	var out sync.Mutex
	ack := func(seq uint64, w, i int) {
		line := fmt.Appendf(nil, "ack %d %d %d\n", seq, w, i)
		out.Lock()
		os.Stdout.Write(line) // one write per line, unbuffered: seen ⇒ acknowledged
		out.Unlock()
	}
	fmt.Println("ready")
	deadline := time.Now().Add(30 * time.Second) // bound in case the parent dies
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				seq, err := l.Append(crashRecord(w, i))
				if err != nil {
					fmt.Printf("append-error %v\n", err)
					os.Exit(4)
				}
				ack(seq, w, i)
			}
		}()
	}
	// Writer 6 pipelines AppendAsync with up to 64 in flight.
	sem := make(chan struct{}, 64)
	for i := 0; time.Now().Before(deadline); i++ {
		sem <- struct{}{}
		l.AppendAsync(crashRecord(6, i), func(seq uint64, err error) {
			if err != nil {
				fmt.Printf("append-error %v\n", err)
				os.Exit(4)
			}
			ack(seq, 6, i)
			<-sem
		})
	}
	wg.Wait()
	os.Exit(0)
}

// TestCrashSIGKILL kills a writing subprocess with SIGKILL at random
// moments, many times over one directory, and checks after each kill that
// the log reopens cleanly and holds every record whose append was
// acknowledged, with the right contents.
func TestCrashSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns subprocesses")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	acked := map[uint64][2]int{} // seq → writer, index
	const rounds = 20
	for round := 0; round < rounds; round++ {
		lines := runAndKill(t, dir, time.Duration(5+rng.Intn(150))*time.Millisecond)
		n := 0
		for _, ln := range lines {
			var seq uint64
			var w, i int
			if _, err := fmt.Sscanf(ln, "ack %d %d %d", &seq, &w, &i); err != nil {
				t.Fatalf("round %d: subprocess said %q", round, ln)
			}
			if prev, dup := acked[seq]; dup {
				t.Fatalf("round %d: seq %d acknowledged twice (%v and %d %d)", round, seq, prev, w, i)
			}
			acked[seq] = [2]int{w, i}
			n++
		}
		l, err := Open(dir, crashOpts)
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		got := map[uint64][]byte{}
		next, err := l.Read(0, 1<<30, func(r Record) bool {
			got[r.Seq] = bytes.Clone(r.Data)
			return true
		})
		if err != nil {
			t.Fatalf("round %d: read after reopen: %v", round, err)
		}
		if next != l.Next() || uint64(len(got)) != next {
			t.Fatalf("round %d: read %d records up to %d, Next %d: not consecutive from 0", round, len(got), next, l.Next())
		}
		for seq, wi := range acked {
			data, ok := got[seq]
			if !ok {
				t.Fatalf("round %d: acknowledged record %d (writer %d #%d) lost; log holds 0..%d", round, seq, wi[0], wi[1], next)
			}
			if want := crashRecord(wi[0], wi[1]); !bytes.Equal(data, want) {
				t.Fatalf("round %d: record %d holds %q, want %q", round, seq, data, want)
			}
		}
		st := l.Stats()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d acks seen, log has %d records in %d segments, %d tail bytes cut (torn or preallocated)", round, n, next, st.Segments, st.Truncated)
	}
	if len(acked) == 0 {
		t.Fatal("no acknowledged records in any round")
	}
}

// runAndKill starts the writer subprocess on dir, SIGKILLs it (by pid)
// after it has written for d, and returns the lines it printed.
func runAndKill(t *testing.T, dir string, d time.Duration) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var lines []string
	ready := false
	for !ready && sc.Scan() {
		ln := sc.Text()
		if strings.HasPrefix(ln, "open-error") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("subprocess: %s", ln)
		}
		ready = ln == "ready"
	}
	if !ready {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("subprocess never became ready")
	}
	timer := time.AfterFunc(d, func() { cmd.Process.Kill() })
	defer timer.Stop()
	for sc.Scan() {
		ln := sc.Text()
		if strings.HasPrefix(ln, "ack ") {
			lines = append(lines, ln)
		} else if ln != "" && !strings.HasPrefix(ln, "PASS") && !strings.HasPrefix(ln, "ok") {
			t.Errorf("subprocess: %s", ln)
		}
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
		t.Fatalf("subprocess did not die by the signal: %v", err)
	}
	return lines
}
