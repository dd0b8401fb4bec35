// Package errcodes holds code collisions and generated-name clashes.
package errcodes

import "errors"

// ErrOne and ErrTwo share a code.
//
//copycat:error code=10
var ErrOne = errors.New("one")

// ErrTwo shares ErrOne's code.
//
//copycat:error code=10
var ErrTwo = errors.New("two")

// E1 and E2 share a code.
//
//copycat:event code=3
type E1 struct{}

// E2 shares E1's code.
//
//copycat:event code=3
type E2 struct{}

// Res has two operations with one code.
//
//copycat:resource
type Res struct{}

// A has code 5.
//
//copycat:command code=5
func (r *Res) A() {}

// B has code 5 too.
//
//copycat:command code=5
func (r *Res) B() {}

// ResA clashes with the arguments struct of Res.A.
type ResA struct{}

// ResType clashes with the descriptor.
var ResType = 1
