// Package base declares a resource other packages embed, like a built-in.
package base

import (
	"errors"

	"github.com/copycat-go/copycat/runtime"
)

// ErrHeld is returned when the lock is held.
//
//copycat:error
var ErrHeld = errors.New("base: held")

// Acquired is published to the session that acquired the lock.
//
//copycat:event
type Acquired struct{ Index uint64 }

// Lock is a minimal lock that releases commits.
//
//copycat:resource compaction=release
type Lock struct {
	holder runtime.Commit
}

// Acquire takes the lock or fails with ErrHeld.
//
//copycat:command
func (l *Lock) Acquire(c runtime.Commit) (uint64, error) {
	if l.holder != nil {
		c.Release()
		return 0, ErrHeld
	}
	l.holder = c
	c.Session().Publish(Acquired{Index: c.Index()})
	return c.Index(), nil
}

// Release frees the lock.
//
//copycat:command
func (l *Lock) Release(c runtime.Commit) {
	if l.holder != nil {
		l.holder.Release()
		l.holder = nil
	}
	c.Release()
}

// SessionOpened is half of the session listener.
func (l *Lock) SessionOpened(runtime.Session) {}

// SessionClosed frees the lock of a closed session.
func (l *Lock) SessionClosed(s runtime.Session, expired bool) {
	if l.holder != nil && l.holder.Session().ID() == s.ID() {
		l.holder.Release()
		l.holder = nil
	}
}
