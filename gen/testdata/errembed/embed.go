// Package errembed holds the embedding mistakes.
package errembed

// A has Get and Put.
//
//copycat:resource
type A struct{ v int }

// Get reads.
//
//copycat:query
func (a *A) Get() int { return a.v }

// Put writes.
//
//copycat:command
func (a *A) Put(v int) { a.v = v }

// B has Get too.
//
//copycat:resource
type B struct{ w int }

// Get reads.
//
//copycat:query
func (b *B) Get() int { return b.w }

// Both embeds A and B without choosing a Get: two operations named Get.
//
//copycat:resource
type Both struct {
	A
	B
}

// Ptr embeds a resource by pointer.
//
//copycat:resource
type Ptr struct {
	*A
}

// R is release-mode.
//
//copycat:resource compaction=release
type R struct{}

// Ping is R's operation.
//
//copycat:command
func (r *R) Ping() {}

// Snap says snapshot but embeds a release resource.
//
//copycat:resource compaction=snapshot
type Snap struct {
	R
}
