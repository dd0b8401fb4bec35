package main

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/copycat-go/copycat/internal/loadgen"
)

// The phase runner and the statistics are internal/loadgen's, shared with
// the server's cluster benchmark: the peers' rules, rule for rule.

// msField renders a duration in milliseconds with microsecond precision.
func msField(name string, d time.Duration) string { return name + "=" + loadgen.Ms(d) }

// latencyFields renders p50, p99 and max of lats (sorted in place) and n.
func latencyFields(lats []time.Duration) []string {
	slices.Sort(lats)
	return []string{
		msField("p50_ms", loadgen.Percentile(lats, 0.50)),
		msField("p99_ms", loadgen.Percentile(lats, 0.99)),
		msField("max_ms", loadgen.Percentile(lats, 1)),
		fmt.Sprintf("n=%d", len(lats)),
	}
}

// resultFields renders a phase's rate (named rate: ops/s, cycles/s), its
// latencies, n and, if any, errors.
func resultFields(r loadgen.Result, rate string) []string {
	f := append([]string{fmt.Sprintf("%s=%.0f", rate, float64(r.N)/r.Elapsed.Seconds())}, latencyFields(r.Lats)...)
	if r.Errs > 0 {
		f = append(f, fmt.Sprintf("errors=%d", r.Errs))
	}
	return f
}

// timed runs c workers calling op in a closed loop for the warm-up and the
// window (loadgen.Run), with a progress line; label names the phase on it.
func (b *bench) timed(ctx context.Context, label string, c int, op loadgen.Op) loadgen.Result {
	warm, dur := b.o.warmup, b.o.duration
	start := time.Now()
	warmEnd := start.Add(warm)
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
	return loadgen.Run(ctx, c, warm, dur, op, loadgen.Hooks{
		Counted: func() { counted.Add(1) },
		Failed: func(w int, err error, failures int) {
			failed.Add(1)
			if failures <= 3 {
				b.prog.printf("%s: worker %d: %v", label, w, err)
			}
		},
	})
}
