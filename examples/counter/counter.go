// Package counter is a custom Copycat resource written the way a user
// writes one: an annotated struct whose marked methods become replicated
// operations. go generate writes counter_copycat.go beside it: the
// descriptor CounterType that members register, and the typed client
// (OpenCounter, one method per operation, OnCrossed). See README.md.
package counter

//go:generate go run github.com/copycat-go/copycat/cmd/copycatgen

import (
	"errors"

	"github.com/copycat-go/copycat/runtime"
)

// Step is the distance between the milestones a Crossed event reports.
const Step = 100

// ErrNegative is returned by Add when the counter would go below zero; the
// counter is left as it was. It keeps its identity on the client:
// errors.Is(err, counter.ErrNegative) holds there.
//
//copycat:error
var ErrNegative = errors.New("counter: would go below zero")

// Crossed is published to the session whose Add took the counter past a
// multiple of Step: Milestone is that multiple, Value the counter after
// the Add.
//
//copycat:event
type Crossed struct {
	Milestone int64
	Value     int64
}

// Counter is a replicated, never-negative counter. Its methods run on
// every member in log order, so they depend only on its fields, their
// arguments and the Commit: no clock, no randomness, no I/O. It uses the
// default snapshot compaction: the generated code writes value at
// compaction points.
//
//copycat:resource
type Counter struct {
	value int64
}

// Add adds delta (which may be negative) and returns the new value, or
// ErrNegative if the counter would go below zero.
//
//copycat:command
func (x *Counter) Add(c runtime.Commit, delta int64) (int64, error) {
	if x.value+delta < 0 {
		return x.value, ErrNegative
	}
	before := x.value
	x.value += delta
	if m := x.value / Step * Step; m > before {
		c.Session().Publish(Crossed{Milestone: m, Value: x.value})
	}
	return x.value, nil
}

// Increment adds one and returns the new value.
//
//copycat:command
func (x *Counter) Increment(c runtime.Commit) int64 {
	n, _ := x.Add(c, 1) // adding one never goes below zero
	return n
}

// Get returns the value. A query does not enter the log; it is
// linearizable unless the caller asks for another consistency.
//
//copycat:query
func (x *Counter) Get() int64 { return x.value }
