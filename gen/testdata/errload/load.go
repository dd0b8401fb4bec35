// Package errload does not type-check.
package errload

// Res is fine.
//
//copycat:resource
type Res struct{ n int }

// Broken refers to something undefined.
func (r *Res) Broken() int { return undefined }
