//go:build !copycatgen

package state

import "github.com/copycat-go/copycat/runtime"

// RegistrySessionsForTest returns every session a Registry instance (from
// RegistryType.New) holds, for tests of restored snapshots.
func RegistrySessionsForTest(res runtime.Resource) []runtime.Session {
	r := res.(*registryServer).r
	out := []runtime.Session{r.holder}
	for _, w := range r.waiters {
		out = append(out, w.session)
	}
	for _, k := range []string{"a", "b"} {
		if e, ok := r.entries[k]; ok {
			out = append(out, e.owner)
		}
		out = append(out, r.watchers[k]...)
	}
	for _, id := range []uint64{11, 12} {
		for _, e := range r.byOwner[id] {
			out = append(out, e.owner)
		}
	}
	out = append(out, r.recent[:]...)
	return out
}
