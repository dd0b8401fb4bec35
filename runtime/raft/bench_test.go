package raft

import (
	"testing"
	"time"
)

// BenchmarkStep measures the core alone: a leader and two followers in one
// goroutine, proposals in batches of 64 with 128-byte payloads, everything
// delivered and "persisted" in memory. It reports entries committed per
// second, which bounds what any driver can reach.
func BenchmarkStep(b *testing.B) {
	c := newTestCluster(b, 3)
	c.elect(1)
	payload := make([]byte, 128)
	batch := make([]Entry, 64)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	committed0 := c.node(1).log.committed
	for i := 0; i < b.N; i++ {
		for j := range batch {
			batch[j] = Entry{Data: payload}
		}
		if _, err := c.node(1).Propose(batch...); err != nil {
			b.Fatal(err)
		}
		c.stabilize()
		if i%1000 == 0 {
			for _, id := range c.ids {
				c.nodes[id].applied = c.nodes[id].applied[:0]
			}
		}
	}
	b.StopTimer()
	n := c.node(1).log.committed - committed0
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "entries/s")
}

// BenchmarkStepMessage measures one follower handling one append of one
// entry and producing its acknowledgement.
func BenchmarkStepMessage(b *testing.B) {
	st := NewMemoryStorage()
	boot := BootstrapEntry([]Member{{ID: 1}, {ID: 2}, {ID: 3}})
	_ = st.Append([]Entry{boot})
	_ = st.SetHardState(HardState{Term: 2})
	cfg := newTestConfig(2, st)
	r, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		last := r.log.lastIndex()
		m := Message{Type: MsgApp, From: 1, To: 2, Term: 2, Index: last, LogTerm: r.log.lastTerm(), Commit: last,
			Entries: []Entry{{Term: 2, Index: last + 1, Data: payload}}}
		if err := r.Step(m); err != nil {
			b.Fatal(err)
		}
		rd := r.Ready()
		_ = st.Append(rd.Entries)
		r.Advance(rd)
	}
}
