// Package errstate holds snapshot state that cannot be encoded.
package errstate

import (
	"sync"

	"github.com/copycat-go/copycat/runtime"
)

type entry struct {
	value string
	anyv  any
}

type node struct {
	value int
	next  *node
}

type tree map[string]tree

// Res has state a snapshot cannot hold.
//
//copycat:resource
type Res struct {
	mu      sync.Mutex
	entries map[string]entry
	anyv    any
	ctx     runtime.Context
	timers  map[string]runtime.Timer
	notify  func()
	ok      int
	list    *node
	t       tree
	holders map[runtime.Session]int
	waiting []struct{ s runtime.Session }
}
