// Package counter is the generator's basic scenario: a replicated counter.
package counter

import (
	"errors"

	"github.com/copycat-go/copycat/runtime"
)

// Counter is a replicated counter.
//
//copycat:resource
type Counter struct {
	ctx   runtime.Context
	value int64
}

// ErrNegative is returned by Add when the counter would go below zero.
//
//copycat:error
var ErrNegative = errors.New("counter: negative")

// Crossed is published to the adding session when the value passes a threshold.
//
//copycat:event
type Crossed struct {
	Threshold int64
	Value     int64
}

// Init keeps the context.
func (c *Counter) Init(ctx runtime.Context) { c.ctx = ctx }

// Add adds delta to the counter and returns the new value.
//
//copycat:command
func (c *Counter) Add(cm runtime.Commit, delta int64) (int64, error) {
	if c.value+delta < 0 {
		return c.value, ErrNegative
	}
	before := c.value
	c.value += delta
	if before < 10 && c.value >= 10 {
		cm.Session().Publish(Crossed{Threshold: 10, Value: c.value})
	}
	return c.value, nil
}

// Get returns the value.
//
//copycat:query consistency=sequential
func (c *Counter) Get() int64 { return c.value }

// Reset sets the value to zero.
//
//copycat:command
func (c *Counter) Reset() { c.value = 0 }
