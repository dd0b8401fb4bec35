package statemachine

import (
	"container/heap"
	"time"
)

// timer is a callback due at a point of state machine time. Ties fire in
// the order they were scheduled, so every member fires them identically.
type timer struct {
	at       time.Time
	seq      uint64
	f        func()
	idx      int // position in the heap, -1 once fired or cancelled
	timers   *timers
	resource uint64
}

func (t *timer) Cancel() bool {
	if t.idx < 0 {
		return false
	}
	heap.Remove(t.timers, t.idx)
	t.idx = -1
	return true
}

type timers struct {
	h   []*timer
	seq uint64
}

func (ts *timers) Len() int { return len(ts.h) }
func (ts *timers) Less(i, j int) bool {
	if !ts.h[i].at.Equal(ts.h[j].at) {
		return ts.h[i].at.Before(ts.h[j].at)
	}
	return ts.h[i].seq < ts.h[j].seq
}
func (ts *timers) Swap(i, j int) {
	ts.h[i], ts.h[j] = ts.h[j], ts.h[i]
	ts.h[i].idx, ts.h[j].idx = i, j
}
func (ts *timers) Push(x any) {
	t := x.(*timer)
	t.idx = len(ts.h)
	ts.h = append(ts.h, t)
}
func (ts *timers) Pop() any {
	n := len(ts.h)
	t := ts.h[n-1]
	ts.h[n-1] = nil
	ts.h = ts.h[:n-1]
	t.idx = -1
	return t
}

func (ts *timers) schedule(at time.Time, resource uint64, f func()) *timer {
	ts.seq++
	t := &timer{at: at, seq: ts.seq, f: f, timers: ts, resource: resource}
	heap.Push(ts, t)
	return t
}

// due pops the next timer due at or before now.
func (ts *timers) due(now time.Time) *timer {
	if len(ts.h) == 0 || ts.h[0].at.After(now) {
		return nil
	}
	return heap.Pop(ts).(*timer)
}

// cancelResource drops the timers of a deleted resource.
func (ts *timers) cancelResource(id uint64) {
	for i := 0; i < len(ts.h); {
		if ts.h[i].resource == id {
			ts.h[i].Cancel()
			continue
		}
		i++
	}
}
