package main

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hubwire/hubwire/internal/mosquitto"
)

// TestMain lets the test binary act as hubbench's children: the runner
// re-executes os.Args[0] with -serve, -client or -startup.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && slices.Contains([]string{"-serve", "-client", "-startup"}, os.Args[1]) {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs every test at a tiny size against every server present
// and checks that each measurement completed: connections held, sessions
// made, messages acknowledged, wrong tokens refused, starts timed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and about 100 TLS connections (~15 s)")
	}
	servers := []string{srvEmulator, srvMochi}
	if _, err := mosquitto.Path(); err == nil {
		servers = append(servers, srvMosquitto)
	} else if os.Getenv("CI") != "" {
		t.Fatal(err)
	}
	recs, err := runAll(config{
		tests: []string{"startup", "idle", "connect", "ingest"}, servers: servers,
		rounds: 1, idleRounds: 1, idleConns: 20, connects: 40, connWorkers: 4,
		msgs: 400, many: 4, window: 16, startups: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range recs {
		if r.Err != "" {
			t.Errorf("%s %s devices %d: %s", r.Test, r.Server, r.Devices, r.Err)
		}
		seen[r.Test]++
		switch r.Test {
		case "idle":
			if r.OK != 20 || r.RSSAfter <= 0 || r.RSSBefore <= 0 {
				t.Errorf("idle %s: held %d, RSS %d → %d", r.Server, r.OK, r.RSSBefore, r.RSSAfter)
			}
			if r.Server != srvMosquitto && r.GoroutinesAfter <= r.GoroutinesBase {
				t.Errorf("idle %s: goroutines %d → %d", r.Server, r.GoroutinesBase, r.GoroutinesAfter)
			}
		case "connect":
			if r.OK != 40 || r.Rate <= 0 || !r.BadTokenRefused || !strings.HasPrefix(r.TLS, "TLS 1.3 X25519") {
				t.Errorf("connect %s: ok %d rate %.0f wrong token refused %v TLS %q", r.Server, r.OK, r.Rate, r.BadTokenRefused, r.TLS)
			}
		case "ingest":
			if r.OK != 400 || r.Rate <= 0 {
				t.Errorf("ingest %s devices %d: acked %d of 400", r.Server, r.Devices, r.OK)
			}
		case "startup-cold", "startup-warm":
			if r.StartMS <= 0 {
				t.Errorf("%s: %v ms", r.Test, r.StartMS)
			}
		}
	}
	want := map[string]int{"idle": len(servers), "connect": len(servers), "ingest": 2 * len(servers), "startup-cold": 1, "startup-warm": 1}
	for k, n := range want {
		if seen[k] != n {
			t.Errorf("%d %s records, want %d", seen[k], k, n)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestProcSelf(t *testing.T) {
	pid := os.Getpid()
	if rss := procRSS(pid); rss <= 0 {
		t.Errorf("procRSS = %d", rss)
	}
	x := 0
	for i := range 50_000_000 {
		x += i
	}
	_ = x
	if cpu := procCPU(pid); cpu <= 0 {
		t.Errorf("procCPU = %v after a busy loop", cpu)
	}
}
