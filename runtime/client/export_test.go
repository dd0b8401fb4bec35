package client

import "sync/atomic"

// CountDelivery makes every later delayed delivery (an answered operation
// that must wait for earlier ones or for events) count in n, until restore.
func CountDelivery(n *atomic.Int64) (restore func()) {
	old := spawnDelivery
	spawnDelivery = func(f func()) {
		n.Add(1)
		old(f)
	}
	return func() { spawnDelivery = old }
}
