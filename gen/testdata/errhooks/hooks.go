// Package errhooks holds hook and snapshot method mistakes.
package errhooks

import (
	"io"

	"sync"
)

var _ sync.Mutex

// Res has hooks with the wrong signatures.
//
//copycat:resource
type Res struct{}

// Init takes no Context.
func (r *Res) Init() {}

// SessionClosed misses the expired flag.
func (r *Res) SessionClosed(s string) {}

// Snapshot has no Restore.
func (r *Res) Snapshot(w io.Writer) error { return nil }

// Codec has only half of its msgpack methods.
//
//copycat:resource
type Codec struct{}

// EncodeMsgpack without DecodeMsgpack.
func (c *Codec) EncodeMsgpack(any) error { return nil }
