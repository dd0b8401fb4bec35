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
