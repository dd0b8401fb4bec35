// Package embed embeds a resource of the same package.
package embed

import (
	"errors"

	"github.com/copycat-go/copycat/runtime"
)

// ErrEmpty is returned by Take on an empty box.
//
//copycat:error
var ErrEmpty = errors.New("embed: empty")

// Changed is published when the box changes.
//
//copycat:event
type Changed struct{ Value string }

// Box holds a value.
//
//copycat:resource
type Box struct {
	value string
	ctx   runtime.Context
}

// Init keeps the context.
func (b *Box) Init(ctx runtime.Context) { b.ctx = ctx }

// Delete is Box's delete hook.
func (b *Box) Delete() {}

// Set sets the value.
//
//copycat:command
func (b *Box) Set(c runtime.Commit, value string) {
	b.value = value
	c.Session().Publish(&Changed{Value: value})
}

// Get returns the value.
//
//copycat:query
func (b *Box) Get() string { return b.value }

// Take empties the box.
//
//copycat:command
func (b *Box) Take() (string, error) {
	if b.value == "" {
		return "", ErrEmpty
	}
	v := b.value
	b.value = ""
	return v, nil
}

// Tally counts; it has no hooks.
//
//copycat:resource
type Tally struct{ N int }

// Incr increments.
//
//copycat:command
func (t *Tally) Incr() int { t.N++; return t.N }

// Labeled embeds a Box and a Tally: it gets Set, Take and Incr, replaces Get,
// and adds Label.
//
//copycat:resource
type Labeled struct {
	Box
	Tally
	label string
}

// Init initializes the label, then the Box.
func (l *Labeled) Init(ctx runtime.Context) { l.Box.Init(ctx) }

// Get returns the label and the value: it wins over Box.Get.
//
//copycat:query
func (l *Labeled) Get() string { return l.label + ":" + l.value }

// Label sets the label.
//
//copycat:command
func (l *Labeled) Label(label string) { l.label = label }
