package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return runtime.GOARCH
}

func loads(recs []record) string {
	var parts []string
	for _, r := range recs {
		parts = append(parts, r.LoadStart+" → "+r.LoadEnd)
	}
	return strings.Join(parts, "; ")
}

func kb(b float64) string { return fmt.Sprintf("%.1f", b/1024) }

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// report renders the markdown of a run.
func report(recs []record, cfg config, stamp time.Time) string {
	var b strings.Builder
	pick := func(test, server string, devices int) []record {
		var out []record
		for _, r := range recs {
			if r.Test == test && r.Server == server && (devices == 0 || r.Devices == devices) {
				out = append(out, r)
			}
		}
		return out
	}
	var loadStart, loadEnd string
	for _, r := range recs {
		if r.Test == "run" {
			loadStart = r.LoadStart
		}
		if r.Test == "end" {
			loadEnd = r.LoadEnd
		}
	}
	fmt.Fprintf(&b, "# hubbench %s\n\n", stamp.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "%s, %s/%s, %d CPUs (%s); load average (1/5/15 min) at start %s, at end %s.\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), loadStart, loadEnd)
	fmt.Fprintf(&b, "Servers in rotating order per round; each server a fresh process per measurement.\n\n")

	idle := map[string]float64{}
	if slices.Contains(cfg.tests, "idle") {
		fmt.Fprintf(&b, "## Idle TLS device connections (%d held, one client process)\n\n", cfg.idleConns)
		b.WriteString("| server | held | failed | RSS before MB | RSS delta KB/conn | heap+stack delta KB/conn | of which stack | goroutines/conn | open s | load start → end |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, s := range cfg.servers {
			rs := pick("idle", s, 0)
			var rss, hs, st, gr, secs, before []float64
			held, failed := 0, 0
			for _, r := range rs {
				if r.OK == 0 {
					continue
				}
				rss = append(rss, float64(r.RSSAfter-r.RSSBefore)/float64(r.OK))
				before = append(before, float64(r.RSSBefore)/(1<<20))
				if r.HeapStackAfter > 0 {
					hs = append(hs, float64(r.HeapStackAfter-r.HeapStackBefore)/float64(r.OK))
					st = append(st, float64(r.StackAfter-r.StackBefore)/float64(r.OK))
					gr = append(gr, float64(r.GoroutinesAfter-r.GoroutinesBase)/float64(r.OK))
				}
				secs = append(secs, r.Secs)
				held, failed = r.OK, r.Failed
			}
			hsS, stS, grS := "–", "–", "–"
			if len(hs) > 0 {
				hsS, stS, grS = kb(median(hs)), kb(median(st)), fmt.Sprintf("%.2f", median(gr))
			}
			idle[s] = median(rss)
			fmt.Fprintf(&b, "| %s | %d | %d | %.1f | %s | %s | %s | %s | %.1f | %s |\n", s, held, failed, median(before),
				kb(median(rss)), hsS, stS, grS, median(secs), loads(rs))
		}
		b.WriteString("\n")
	}

	conn, connCPU := map[string]float64{}, map[string]float64{}
	if slices.Contains(cfg.tests, "connect") {
		fmt.Fprintf(&b, "## TLS connects/s with authentication (%d sessions per round, %d concurrent dialers, %d identities)\n\n",
			cfg.connects, cfg.connWorkers, connectDevices)
		b.WriteString("| server | connects/s (median) | per round | server CPU ms/connect | client CPU ms/connect | failed | wrong token refused | TLS | load start → end |\n|---|---:|---|---:|---:|---:|---|---|---|\n")
		for _, s := range cfg.servers {
			rs := pick("connect", s, 0)
			var rate, cpu, ccpu []float64
			var per []string
			failed := 0
			refused, tlsName := true, ""
			for _, r := range rs {
				refused = refused && r.BadTokenRefused
				tlsName = r.TLS
				rate = append(rate, r.Rate)
				per = append(per, fmt.Sprintf("%.0f", r.Rate))
				if r.OK > 0 {
					cpu = append(cpu, r.ServerCPU*1000/float64(r.OK))
					ccpu = append(ccpu, r.ClientCPU*1000/float64(r.OK))
				}
				failed += r.Failed
			}
			conn[s], connCPU[s] = median(rate), median(cpu)
			fmt.Fprintf(&b, "| %s | %.0f | %s | %.3f | %.3f | %d | %v | %s | %s |\n", s, median(rate), strings.Join(per, ", "), median(cpu), median(ccpu), failed, refused, tlsName, loads(rs))
		}
		b.WriteString("\n")
	}

	ing, ingCPU := map[string]float64{}, map[string]float64{}
	if slices.Contains(cfg.tests, "ingest") {
		fmt.Fprintf(&b, "## QoS 1 telemetry ingest (%d × 256 B per measurement, %d in flight per connection, hubwire mqtt client)\n\n", cfg.msgs, cfg.window)
		b.WriteString("| server | devices | msgs/s (median) | per round | server CPU µs/msg | failed | load start → end |\n|---|---:|---:|---|---:|---:|---|\n")
		for _, devs := range []int{1, cfg.many} {
			for _, s := range cfg.servers {
				rs := pick("ingest", s, devs)
				var rate, cpu []float64
				var per []string
				failed := 0
				for _, r := range rs {
					rate = append(rate, r.Rate)
					per = append(per, fmt.Sprintf("%.0f", r.Rate))
					if r.OK > 0 {
						cpu = append(cpu, r.ServerCPU*1e6/float64(r.OK))
					}
					failed += r.Failed
				}
				ing[fmt.Sprint(s, devs)], ingCPU[fmt.Sprint(s, devs)] = median(rate), median(cpu)
				fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %.1f | %d | %s |\n", s, devs, median(rate), strings.Join(per, ", "), median(cpu), failed, loads(rs))
			}
		}
		b.WriteString("\n")
	}

	var cold, warm, coldP, warmP []float64
	if slices.Contains(cfg.tests, "startup") {
		for _, r := range recs {
			switch r.Test {
			case "startup-cold":
				cold, coldP = append(cold, r.StartMS), append(coldP, r.ProcessMS)
			case "startup-warm":
				warm, warmP = append(warm, r.StartMS), append(warmP, r.ProcessMS)
			}
		}
		fmt.Fprintf(&b, "## Emulator start-up (%d cold, %d warm, each a new process)\n\n", len(cold), len(warm))
		b.WriteString("| start | emulator.Start ms (median) | all | process exec → ready ms (median) |\n|---|---:|---|---:|\n")
		for _, row := range []struct {
			name string
			v, p []float64
		}{{"cold (CA and certificate generated)", cold, coldP}, {"warm (data dir exists)", warm, warmP}} {
			var all []string
			for _, x := range row.v {
				all = append(all, fmt.Sprintf("%.1f", x))
			}
			fmt.Fprintf(&b, "| %s | %.1f | %s | %.1f |\n", row.name, median(row.v), strings.Join(all, ", "), median(row.p))
		}
		b.WriteString("\n")
	}

	b.WriteString("## Ratios and targets (this run)\n\n| measure | emulator | mochi | mosquitto | emulator/mochi | emulator/mosquitto | target | verdict |\n|---|---:|---:|---:|---:|---:|---|---|\n")
	e, m, q := srvEmulator, srvMochi, srvMosquitto
	if len(idle) > 0 {
		fmt.Fprintf(&b, "| idle RSS KB/conn | %s | %s | %s | %s | %s | ≤ 20 KB (stretch ≤ 12) | %s (stretch %s) |\n",
			kb(idle[e]), kb(idle[m]), kb(idle[q]), ratio(idle[e], idle[m]), ratio(idle[e], idle[q]),
			verdict(idle[e] > 0 && idle[e] <= 20*1024), verdict(idle[e] > 0 && idle[e] <= 12*1024))
	}
	if len(conn) > 0 {
		fmt.Fprintf(&b, "| connects/s | %.0f | %.0f | %.0f | %s | %s | ≥ 2,000/s | %s |\n",
			conn[e], conn[m], conn[q], ratio(conn[e], conn[m]), ratio(conn[e], conn[q]), verdict(conn[e] >= 2000))
	}
	if len(conn) > 0 {
		fmt.Fprintf(&b, "| server CPU ms/connect | %.3f | %.3f | %.3f | %s | %s | | |\n",
			connCPU[e], connCPU[m], connCPU[q], ratio(connCPU[e], connCPU[m]), ratio(connCPU[e], connCPU[q]))
		ceil := func(s string, cores float64) float64 {
			if connCPU[s] == 0 {
				return 0
			}
			return cores * 1000 / connCPU[s]
		}
		// mosquitto runs one thread: one core is its ceiling.
		fmt.Fprintf(&b, "| connects/s ceiling = cores / server CPU per connect (2 cores; mosquitto 1 thread) | %.0f | %.0f | %.0f | %s | %s | ≥ 2,000/s | %s |\n",
			ceil(e, 2), ceil(m, 2), ceil(q, 1), ratio(ceil(e, 2), ceil(m, 2)), ratio(ceil(e, 2), ceil(q, 1)), verdict(ceil(e, 2) >= 2000)+" (estimate: server CPU only)")
	}
	for _, devs := range []int{1, cfg.many} {
		if len(ing) == 0 {
			break
		}
		a, bm, c := ing[fmt.Sprint(e, devs)], ing[fmt.Sprint(m, devs)], ing[fmt.Sprint(q, devs)]
		fmt.Fprintf(&b, "| ingest msgs/s, %d device(s) | %.0f | %.0f | %.0f | %s | %s | ≥ mosquitto | %s |\n",
			devs, a, bm, c, ratio(a, bm), ratio(a, c), verdict(a > 0 && a >= c))
		k := func(s string) float64 { return ingCPU[fmt.Sprint(s, devs)] }
		fmt.Fprintf(&b, "| server CPU µs/msg, %d device(s) | %.1f | %.1f | %.1f | %s | %s | | |\n",
			devs, k(e), k(m), k(q), ratio(k(e), k(m)), ratio(k(e), k(q)))
	}
	if len(cold) > 0 {
		fmt.Fprintf(&b, "| start-up cold / warm ms | %.1f / %.1f | | | | | fast | – |\n", median(cold), median(warm))
	}
	var errs []string
	for _, r := range recs {
		if r.Err != "" {
			errs = append(errs, fmt.Sprintf("- %s %s round %d devices %d: %s", r.Test, r.Server, r.Round, r.Devices, r.Err))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\n## Errors\n\n" + strings.Join(errs, "\n") + "\n")
	}
	return b.String()
}
