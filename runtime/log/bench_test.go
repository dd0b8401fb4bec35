package log

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

// BenchmarkAppendBatch measures Save of one batch of 128-byte entries with
// fsync on, with and without the bbolt tuning, in a directory under /tmp
// (a real disk more often than the test cache's directory). It reports
// entries/s and the p50/p99 latency of one Save.
//
//	go test -run x -bench AppendBatch -benchtime 2000x ./runtime/log/
func BenchmarkAppendBatch(b *testing.B) {
	for _, tuned := range []bool{true, false} {
		for _, batch := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("tuned=%v/batch=%d", tuned, batch), func(b *testing.B) {
				benchmarkAppend(b, batch, tuned)
			})
		}
	}
}

func benchmarkAppend(b *testing.B, batch int, tuned bool) {
	dir, err := os.MkdirTemp("/tmp", "copycat-log-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := Open(Options{Dir: dir, NoBoltTuning: !tuned, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	data := make([]byte, 128)
	ents := make([]raft.Entry, batch)
	lat := make([]time.Duration, 0, b.N)
	next := uint64(1)
	b.ResetTimer()
	for range b.N {
		for k := range ents {
			ents[k] = raft.Entry{Index: next + uint64(k), Term: 1, Data: data}
		}
		start := time.Now()
		if err := l.Save(raft.HardState{}, ents); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		next += uint64(batch)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs/batch")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs/batch")
}

// BenchmarkClean measures Clean with fsync on, in a directory under /tmp:
// a log of 200,000 entries of 128 bytes in 1 MiB segments, compacted at its
// end with 5% live, cleaned while a driver goroutine keeps saving batches
// of 16 entries. It reports what Clean read per second (entries/s and MB/s
// of segment files), its longest lock hold, and the longest and p99 Save
// latency while it ran and in as many Saves right after it, for comparison.
//
//	go test -run x -bench Clean -benchtime 3x ./runtime/log/
func BenchmarkClean(b *testing.B) {
	const n, batch, segSize = 200_000, 512, 1 << 20
	var entries, bytesRead int64
	var elapsed, hold, pauseIn, pauseOut time.Duration
	var p99In, p99Out []time.Duration
	for range b.N {
		b.StopTimer()
		dir, err := os.MkdirTemp("/tmp", "copycat-log-bench-")
		if err != nil {
			b.Fatal(err)
		}
		l, err := Open(Options{Dir: dir, SegmentSize: segSize, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		data := make([]byte, 128)
		next := uint64(1)
		save := func(k int) time.Duration {
			ents := make([]raft.Entry, k)
			for j := range ents {
				ents[j] = raft.Entry{Index: next + uint64(j), Term: 1, Data: data}
			}
			start := time.Now()
			if err := l.Save(raft.HardState{}, ents); err != nil {
				panic(err)
			}
			next += uint64(k)
			return time.Since(start)
		}
		for next <= n {
			save(batch)
		}
		if err := l.Compact(raft.Snapshot{Meta: raft.SnapshotMeta{Index: next - 1, Term: 1}, Data: make([]byte, 1<<20)}); err != nil {
			b.Fatal(err)
		}

		// The driver saves while Clean runs; then as many Saves again, idle.
		var lat []time.Duration
		done := make(chan struct{})
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			for {
				select {
				case <-done:
					return
				default:
				}
				lat = append(lat, save(16))
			}
		}()
		b.StartTimer()
		st, err := cleanNow(l, func(i uint64) bool { return i%20 == 0 })
		b.StopTimer()
		close(done)
		<-stopped
		if err != nil {
			b.Fatal(err)
		}
		during := slices.Clone(lat)
		idle := make([]time.Duration, 0, len(during))
		for range max(len(during), 16) {
			idle = append(idle, save(16))
		}
		entries += st.EntriesKept + st.EntriesDropped
		bytesRead += st.BytesBefore
		elapsed += st.Duration
		hold = max(hold, st.LongestLockHold)
		slices.Sort(during)
		slices.Sort(idle)
		if len(during) > 0 {
			pauseIn = max(pauseIn, during[len(during)-1])
			p99In = append(p99In, during[len(during)*99/100])
		}
		pauseOut = max(pauseOut, idle[len(idle)-1])
		p99Out = append(p99Out, idle[len(idle)*99/100])
		l.Close()
		os.RemoveAll(dir)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
	b.ReportMetric(float64(entries)/elapsed.Seconds(), "entries/s")
	b.ReportMetric(float64(bytesRead)/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(ms(hold), "max-lock-ms")
	b.ReportMetric(ms(pauseIn), "max-save-ms-cleaning")
	b.ReportMetric(ms(slices.Max(append(p99In, 0))), "p99-save-ms-cleaning")
	b.ReportMetric(ms(pauseOut), "max-save-ms-idle")
	b.ReportMetric(ms(slices.Max(p99Out)), "p99-save-ms-idle")
}
