// Package errshapes holds every refused method shape and type.
package errshapes

import (
	"github.com/copycat-go/copycat/runtime"
)

type point struct{ X int }

// Hidden has an unexported field.
type Hidden struct {
	X int
	y int
}

// Res is the resource.
//
//copycat:resource
type Res struct{ n int }

// Value receiver.
//
//copycat:command
func (r Res) Value() {}

// unexported operation.
//
//copycat:command
func (r *Res) lower() {}

// Commit not first.
//
//copycat:command
func (r *Res) Late(n int, c runtime.Commit) {}

// Query releasing its commit.
//
//copycat:query
func (r *Res) Releases(c runtime.Commit) int {
	c.Release()
	return r.n
}

// Unnamed and blank parameters.
//
//copycat:command
func (r *Res) Unnamed(int, _ string) {}

// Channels, funcs, interfaces, errors, sessions.
//
//copycat:command
func (r *Res) Kinds(ch chan int, f func(), i any, err error, s runtime.Session) {}

// Unexported types, anonymous structs, unexported fields, complex numbers, struct keys.
//
//copycat:command
func (r *Res) Types(p point, ps []point, a struct{ X int }, h Hidden, c complex128, m map[Hidden]int) {
}

// Results in the wrong order.
//
//copycat:command
func (r *Res) Backwards() (error, int) { return nil, 0 }

// Too many results.
//
//copycat:command
func (r *Res) Many() (int, int, error) { return 0, 0, nil }

// An unencodable result.
//
//copycat:query
func (r *Res) Chan() chan int { return nil }

// Generic resources are refused.
//
//copycat:resource
type Gen[T any] struct{ v T }

// Unexported events are refused.
//
//copycat:event
type hidden struct{ X int }

// Events must be encodable.
//
//copycat:event
type Bad struct{ C chan int }

// An operation named like the Start method of a command.
//
//copycat:command
func (r *Res) Reset() {}

// StartReset clashes with ResClient.StartReset, which starts Reset.
//
//copycat:command
func (r *Res) StartReset() {}
