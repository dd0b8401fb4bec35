// Package long is a replicated 64-bit integer: Copycat's atomic long.
//
// Register LongType with the members and open an instance by name from a
// client:
//
//	srv, err := server.New(cfg, long.LongType)
//	...
//	n, err := long.OpenLong(ctx, cli, "requests")
//	v, err := n.IncrementAndGet(ctx)          // 1
//	v, err = n.AddAndGet(ctx, 10)             // 11
//	ok, err := n.CompareAndSet(ctx, 11, 0)    // true
//	v, err = n.Get(ctx, client.WithConsistency(runtime.Sequential))
//
// Every operation is applied exactly once, in each session's order, however
// often the client retries it. Get is linearizable unless asked otherwise.
// The state is one integer, so the instance is compacted by snapshot.
package long

//go:generate go run ../../cmd/copycatgen

// Long is a replicated 64-bit integer. Arithmetic wraps around on overflow,
// as Go's int64 does.
//
//copycat:resource name=copycat.long
type Long struct {
	value int64
}

// Get returns the current value.
//
//copycat:query
func (l *Long) Get() int64 { return l.value }

// Set replaces the value.
//
//copycat:command
func (l *Long) Set(value int64) { l.value = value }

// AddAndGet adds delta and returns the new value.
//
//copycat:command
func (l *Long) AddAndGet(delta int64) int64 {
	l.value += delta
	return l.value
}

// GetAndAdd adds delta and returns the value before the addition.
//
//copycat:command
func (l *Long) GetAndAdd(delta int64) int64 {
	old := l.value
	l.value += delta
	return old
}

// IncrementAndGet adds one and returns the new value.
//
//copycat:command
func (l *Long) IncrementAndGet() int64 {
	l.value++
	return l.value
}

// CompareAndSet sets the value to update if it equals expect, and reports
// whether it did.
//
//copycat:command
func (l *Long) CompareAndSet(expect, update int64) bool {
	if l.value != expect {
		return false
	}
	l.value = update
	return true
}
