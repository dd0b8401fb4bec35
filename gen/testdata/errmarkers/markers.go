// Package errmarkers holds every marker mistake.
package errmarkers

import (
	"errors"

	_ "fmt" //copycat:event
)

// Res is fine; its markers below are not.
//
//copycat:resource
type Res struct{ n int }

// Unknown marker kind.
//
//copycat:comand
func (r *Res) A() {}

// Unknown argument, missing value, duplicate argument.
//
//copycat:command fast=yes code code=3 code=4
func (r *Res) B() {}

// Bad values.
//
//copycat:query consistency=fast code=0
func (r *Res) C() int { return r.n }

// Space after the slashes.
//
// copycat:command
func (r *Res) D() {}

// Two markers.
//
//copycat:command
//copycat:query
func (r *Res) E() {}

// Bad resource arguments.
//
//copycat:resource compaction=never name=bad!name
type Res2 struct{}

// Command on a type.
//
//copycat:command
type NotAMethod struct{}

// Resource on a func.
//
//copycat:resource
func NotAType() {}

// Command on a function.
//
//copycat:command
func Plain() {}

// Event on a non-struct.
//
//copycat:event
type Num int

// Error on a constant.
//
//copycat:error
const Code = 3

// Resource on a variable.
//
//copycat:resource
var V = 1

// Error on something that is not an error.
//
//copycat:error
var NotErr = 5

// Error code on a multi-name declaration.
//
//copycat:error code=5
var ErrX, ErrY = errors.New("x"), errors.New("y")

// Thing is not a resource.
type Thing struct{}

// Marked method of a non-resource.
//
//copycat:command
func (t *Thing) Do() {}

// F has a stray marker in its body.
//
//copycat:query
func (r *Res) F() {
	//copycat:command
}
