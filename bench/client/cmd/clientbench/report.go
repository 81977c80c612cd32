package main

import (
	"fmt"
	"io"
)

func find(all []result, broker, client, mode string) (result, bool) {
	for _, r := range all {
		if r.Broker == broker && r.Client == client && r.Mode == mode {
			return r, r.Err == ""
		}
	}
	return result{}, false
}

// ran reports whether mode was measured at all.
func ran(all []result, mode string) bool {
	for _, r := range all {
		if r.Mode == mode {
			return true
		}
	}
	return false
}

func brokersOf(all []result) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range all {
		if !seen[r.Broker] {
			seen[r.Broker] = true
			out = append(out, r.Broker)
		}
	}
	return out
}

func printTables(w io.Writer, all []result, clients []string) {
	fmt.Fprintf(w, "### Publish: %d × %d B at QoS 0, %d at QoS 1 with %d in flight, one connection\n\n", *flagPub0, payloadSize, *flagPub1, window)
	fmt.Fprintln(w, "| broker | client | QoS | msgs/s | CPU s / 100k msgs | allocs/msg | B/msg | write syscalls/msg |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|---:|")
	for _, b := range brokersOf(all) {
		for _, mode := range []string{"pub0", "pub1"} {
			if !ran(all, mode) {
				continue
			}
			for _, c := range clients {
				if receiveOnly[c] {
					continue
				}
				r, ok := find(all, b, c, mode)
				if !ok {
					fmt.Fprintf(w, "| %s | %s | %c | failed: %s | | | | |\n", b, c, mode[3], r.Err)
					continue
				}
				fmt.Fprintf(w, "| %s | %s | %c | %.0f | %.3f | %.2f | %.0f | %.3f |\n", b, c, mode[3], r.rate(), r.cpuPer100k(), r.perMsg(r.Allocs), r.perMsg(r.Bytes), r.perMsg(r.Writes))
			}
		}
	}
	fmt.Fprintf(w, "\n### Receive through one subscriber (a hubwire publisher feeds it): %d at QoS 0, %d at QoS 1\n\n", *flagSub0, *flagSub1)
	fmt.Fprintln(w, "| broker | client | QoS | received | msgs/s | CPU s / 100k msgs | allocs/msg | B/msg | context switches/msg | write syscalls/msg |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, b := range brokersOf(all) {
		for _, mode := range []string{"sub0", "sub1"} {
			if !ran(all, mode) {
				continue
			}
			for _, c := range clients {
				r, ok := find(all, b, c, mode)
				if !ok {
					fmt.Fprintf(w, "| %s | %s | %c | failed: %s | | | | | | |\n", b, c, mode[3], r.Err)
					continue
				}
				fmt.Fprintf(w, "| %s | %s | %c | %d/%d | %.0f | %.3f | %.2f | %.0f | %.3f | %.3f |\n", b, c, mode[3], r.Received, r.N, r.rate(), r.cpuPer100k(), r.perMsg(r.Allocs), r.perMsg(r.Bytes), r.perMsg(r.Switches), r.perMsg(r.Writes))
			}
		}
	}
	fmt.Fprintf(w, "\n### Idle connection (%d connections per client, heap + stack delta after GC)\n\n", *flagIdle)
	fmt.Fprintln(w, "| broker | client | bytes/conn | goroutines/conn |")
	fmt.Fprintln(w, "|---|---|---:|---:|")
	for _, b := range brokersOf(all) {
		if !ran(all, "idle") {
			break
		}
		for _, c := range clients {
			if receiveOnly[c] {
				continue
			}
			r, ok := find(all, b, c, "idle")
			if !ok {
				fmt.Fprintf(w, "| %s | %s | failed: %s | |\n", b, c, r.Err)
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %.0f | %.1f |\n", b, c, r.MemPerConn, r.GoroutinesPerConn)
		}
	}
	const ref = "paho.mqtt.golang"
	fmt.Fprintf(w, "\n### Ratios, hubwire / %s (same run)\n\n", ref)
	fmt.Fprintln(w, "| broker | QoS 0 CPU/msg | QoS 1 CPU/msg | QoS 0 msgs/s | QoS 1 msgs/s | receive QoS 0 CPU/msg | receive QoS 1 CPU/msg | receive QoS 1 msgs/s, hubwire / raw |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, b := range brokersOf(all) {
		ratioTo := func(ref, mode string, f func(result) float64) string {
			h, ok1 := find(all, b, "hubwire", mode)
			p, ok2 := find(all, b, ref, mode)
			if !ok1 || !ok2 || f(p) == 0 {
				return "n/a"
			}
			return fmt.Sprintf("%.3fx", f(h)/f(p))
		}
		ratio := func(mode string, f func(result) float64) string { return ratioTo(ref, mode, f) }
		cpu := func(r result) float64 { return r.cpuPer100k() }
		rate := func(r result) float64 { return r.rate() }
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", b, ratio("pub0", cpu), ratio("pub1", cpu), ratio("pub0", rate), ratio("pub1", rate), ratio("sub0", cpu), ratio("sub1", cpu), ratioTo("raw", "sub1", rate))
	}
}
