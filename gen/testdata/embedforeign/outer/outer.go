// Package outer embeds a resource of another package.
package outer

import (
	"github.com/copycat-go/copycat/gen/testdata/embedforeign/base"
	"github.com/copycat-go/copycat/runtime"
)

// Guarded is a lock with a guarded value; it inherits compaction=release
// from base.Lock.
//
//copycat:resource
type Guarded struct {
	base.Lock
	value int
}

// Write sets the value.
//
//copycat:command
func (g *Guarded) Write(c runtime.Commit, v int) {
	g.value = v
	c.Release()
}

// Read reads the value.
//
//copycat:query
func (g *Guarded) Read() int { return g.value }
