// Package loadgen runs closed-loop load phases and computes their figures
// by the rules of the peers' harness (shared/peers/bench/stats.go), so that
// a copycat line and an etcd line measure the same thing: c workers each
// issue the next operation as soon as the previous one returns; a warm-up
// is not measured; only operations that start after it and finish inside
// the window count; throughput is count / window; percentiles are nearest
// rank. `copycat bench` and the server's cluster benchmark both use it.
package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Result is what one timed phase measured.
type Result struct {
	N       int             // operations that started after the warm-up and finished inside the window
	Errs    int             // operations that failed (any time)
	Elapsed time.Duration   // length of the measured window
	Lats    []time.Duration // latency of each counted operation
}

// Op is one operation of a closed loop: worker is the worker's index, rng
// its own random source.
type Op func(ctx context.Context, worker int, rng *rand.Rand) error

// Hooks observe a phase while it runs; any may be nil.
type Hooks struct {
	// Counted is called for each counted operation, Failed for each failed
	// one with the worker's failure count so far (callers report the first
	// few).
	Counted func()
	Failed  func(worker int, err error, failures int)
}

// Run runs c workers calling op in a closed loop for warm and then dur. The
// ctx op gets ends shortly after the window (or when ctx does), so blocking
// operations (lock waits) return. A failing worker pauses 10 ms, as the
// peers do, rather than spin against a failing cluster.
func Run(ctx context.Context, c int, warm, dur time.Duration, op Op, h Hooks) Result {
	start := time.Now()
	warmEnd := start.Add(warm)
	end := warmEnd.Add(dur)
	ctx, cancel := context.WithDeadline(ctx, end.Add(50*time.Millisecond))
	defer cancel()
	var mu sync.Mutex
	res := Result{Elapsed: dur}
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
					if h.Failed != nil {
						h.Failed(w, err, errs)
					}
					select {
					case <-ctx.Done():
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				if !t0.Before(warmEnd) && !t1.After(end) {
					n++
					if h.Counted != nil {
						h.Counted()
					}
					lats = append(lats, t1.Sub(t0))
				}
			}
			mu.Lock()
			res.N += n
			res.Errs += errs
			res.Lats = append(res.Lats, lats...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return res
}

// Percentile returns the q-quantile (0..1) of sorted durations, nearest rank.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	i = max(1, min(i, len(sorted)))
	return sorted[i-1]
}

// Ms renders a duration in milliseconds with microsecond precision.
func Ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) }

// CPUSnap reads user, system, idle, iowait and steal jiffies of the whole
// machine from /proc/stat (zeros where there is none): user+nice,
// system+irq+softirq, idle, iowait, steal — the peers' groups.
func CPUSnap() [5]int64 {
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
	return [5]int64{v(1) + v(2), v(3) + v(6) + v(7), v(4), v(5), v(8)}
}

// CPULine renders the CPU accounting between two snapshots in the peers'
// `meta cpu` format, or "" when /proc/stat could not be read.
func CPULine(group string, before, after [5]int64) string {
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
