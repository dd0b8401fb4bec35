package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The phase runner and the statistics follow the peers' harness
// (shared/peers/bench/stats.go) rule for rule, so that a copycat line and
// an etcd line measure the same thing.

// phaseResult is what one timed phase measured.
type phaseResult struct {
	n       int             // operations that started after the warm-up and finished inside the window
	errs    int             // operations that failed (any time)
	elapsed time.Duration   // length of the measured window
	lats    []time.Duration // latency of each counted operation
}

// percentile returns the q-quantile (0..1) of sorted durations, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	i = max(1, min(i, len(sorted)))
	return sorted[i-1]
}

// msField renders a duration in milliseconds with microsecond precision.
func msField(name string, d time.Duration) string {
	return name + "=" + strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64)
}

// latencyFields renders p50, p99 and max of lats (sorted in place) and n.
func latencyFields(lats []time.Duration) []string {
	slices.Sort(lats)
	return []string{
		msField("p50_ms", percentile(lats, 0.50)),
		msField("p99_ms", percentile(lats, 0.99)),
		msField("max_ms", percentile(lats, 1)),
		fmt.Sprintf("n=%d", len(lats)),
	}
}

// fields renders the phase's rate (named rate: ops/s, cycles/s), its
// latencies, n and, if any, errors.
func (r phaseResult) fields(rate string) []string {
	f := append([]string{fmt.Sprintf("%s=%.0f", rate, float64(r.n)/r.elapsed.Seconds())}, latencyFields(r.lats)...)
	if r.errs > 0 {
		f = append(f, fmt.Sprintf("errors=%d", r.errs))
	}
	return f
}

// benchOp is one operation of a closed loop: worker is the worker's index,
// rng its own random source.
type benchOp func(ctx context.Context, worker int, rng *rand.Rand) error

// timed runs c workers, each calling op in a closed loop, for the warm-up
// and the window. Only operations that start after the warm-up and complete
// before the end of the window count. The ctx op gets ends shortly after
// the window (or when ctx does), so blocking operations (lock waits)
// return. label names the phase on the progress line.
func (b *bench) timed(ctx context.Context, label string, c int, op benchOp) phaseResult {
	warm, dur := b.o.warmup, b.o.duration
	start := time.Now()
	warmEnd := start.Add(warm)
	end := warmEnd.Add(dur)
	ctx, cancel := context.WithDeadline(ctx, end.Add(50*time.Millisecond))
	defer cancel()

	var counted, failed atomic.Int64
	stopProgress := b.prog.every(250*time.Millisecond, func() string {
		now := time.Now()
		if now.Before(warmEnd) {
			return fmt.Sprintf("%s  warm-up  %.1fs/%v", label, now.Sub(start).Seconds(), warm)
		}
		in := now.Sub(warmEnd)
		n := counted.Load()
		return fmt.Sprintf("%s  %.1fs/%v  n=%d (%.0f/s)  errors=%d", label, in.Seconds(), dur, n, float64(n)/max(in.Seconds(), 1e-3), failed.Load())
	})
	defer stopProgress()

	var mu sync.Mutex
	res := phaseResult{elapsed: dur}
	var wg sync.WaitGroup
	for w := range c {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)*7919+1))
			lats := make([]time.Duration, 0, 4096)
			n, errs := 0, 0
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				err := op(ctx, w, rng)
				t1 := time.Now()
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					errs++
					failed.Add(1)
					if errs <= 3 {
						b.prog.printf("%s: worker %d: %v", label, w, err)
					}
					// As the peers do: no hot loop against a failing cluster.
					select {
					case <-ctx.Done():
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				if !t0.Before(warmEnd) && !t1.After(end) {
					n++
					counted.Add(1)
					lats = append(lats, t1.Sub(t0))
				}
			}
			mu.Lock()
			res.n += n
			res.errs += errs
			res.lats = append(res.lats, lats...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return res
}

// cpuSnap reads user, system, idle, iowait and steal jiffies of the whole
// machine from /proc/stat (zeros where there is none).
func cpuSnap() [5]int64 {
	var out [5]int64
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return out
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return out
	}
	v := func(i int) int64 { n, _ := strconv.ParseInt(f[i], 10, 64); return n }
	// user+nice, system+irq+softirq, idle, iowait, steal: the peers' groups.
	return [5]int64{v(1) + v(2), v(3) + v(6) + v(7), v(4), v(5), v(8)}
}

// cpuLine renders the CPU accounting between two snapshots in the peers'
// `meta cpu` format, or "" when /proc/stat could not be read.
func cpuLine(group string, before, after [5]int64) string {
	var d [5]float64
	total := 0.0
	for i := range d {
		d[i] = float64(after[i] - before[i])
		total += d[i]
	}
	if total <= 0 {
		return ""
	}
	return fmt.Sprintf("meta cpu group=%s user_pct=%.0f sys_pct=%.0f idle_pct=%.0f iowait_pct=%.1f steal_pct=%.1f",
		group, 100*d[0]/total, 100*d[1]/total, 100*d[2]/total, 100*d[3]/total, 100*d[4]/total)
}
