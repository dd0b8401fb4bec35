package extend

import (
	"time"

	"github.com/copycat-go/copycat/resources/dmap"
	"github.com/copycat-go/copycat/runtime"
)

// VersionedMap is dmap.Map with a version per key: the log index of the
// write that gave the key its current value. Every write of a key through
// the map's operations (Put, PutIfAbsent, Replace, CompareAndReplace that
// took effect) gives it a higher version than any it had, across leader
// changes and restarts; a key with no value has version 0. It is etcd's
// mod_revision, not a count of writes: a count could not survive the
// release-mode compaction the map inherits (overwritten puts leave the log,
// so replaying the live commits could not count them), while a log index
// is replayed exactly.
//
// The write operations are overridden: each calls the embedded one with the
// same commit and records the version if it wrote. Removals forget it, and
// a key written with a ttl is forgotten by a timer armed after the map's
// own, for the same log time, so it fires right after the expiry.
//
//copycat:resource
type VersionedMap struct {
	dmap.Map
	ctx      runtime.Context
	versions map[string]uint64
}

// Init hands the context to the map.
func (v *VersionedMap) Init(ctx runtime.Context) {
	v.ctx = ctx
	if v.versions == nil {
		v.versions = map[string]uint64{}
	}
	v.Map.Init(ctx)
}

// Version returns the key's version: the log index of the write that gave
// it its value, or 0 if it has none.
//
//copycat:query
func (v *VersionedMap) Version(key string) uint64 { return v.versions[key] }

// Put is dmap.Map's Put, versioned.
//
//copycat:command
func (v *VersionedMap) Put(c runtime.Commit, key string, value []byte, ttl time.Duration) ([]byte, error) {
	old, err := v.Map.Put(c, key, value, ttl)
	if err == nil {
		v.wrote(c, key, ttl)
	}
	return old, err
}

// PutIfAbsent is dmap.Map's PutIfAbsent, versioned.
//
//copycat:command
func (v *VersionedMap) PutIfAbsent(c runtime.Commit, key string, value []byte, ttl time.Duration) (bool, error) {
	ok, err := v.Map.PutIfAbsent(c, key, value, ttl)
	if ok {
		v.wrote(c, key, ttl)
	}
	return ok, err
}

// Replace is dmap.Map's Replace, versioned.
//
//copycat:command
func (v *VersionedMap) Replace(c runtime.Commit, key string, value []byte, ttl time.Duration) (bool, error) {
	ok, err := v.Map.Replace(c, key, value, ttl)
	if ok {
		v.wrote(c, key, ttl)
	}
	return ok, err
}

// CompareAndReplace is dmap.Map's CompareAndReplace, versioned.
//
//copycat:command
func (v *VersionedMap) CompareAndReplace(c runtime.Commit, key string, expect, value []byte, ttl time.Duration) (bool, error) {
	ok, err := v.Map.CompareAndReplace(c, key, expect, value, ttl)
	if ok {
		v.wrote(c, key, ttl)
	}
	return ok, err
}

// Remove is dmap.Map's Remove; the key's version goes with its value.
//
//copycat:command
func (v *VersionedMap) Remove(c runtime.Commit, key string) []byte {
	old := v.Map.Remove(c, key)
	delete(v.versions, key)
	return old
}

// RemoveIfEquals is dmap.Map's RemoveIfEquals; a removed key's version goes
// with its value.
//
//copycat:command
func (v *VersionedMap) RemoveIfEquals(c runtime.Commit, key string, expect []byte) bool {
	ok := v.Map.RemoveIfEquals(c, key, expect)
	if ok {
		delete(v.versions, key)
	}
	return ok
}

// Clear is dmap.Map's Clear; every version goes.
//
//copycat:command
func (v *VersionedMap) Clear(c runtime.Commit) {
	v.Map.Clear(c)
	clear(v.versions)
}

// wrote records the version of a write that took effect.
func (v *VersionedMap) wrote(c runtime.Commit, key string, ttl time.Duration) {
	if v.versions == nil {
		v.versions = map[string]uint64{}
	}
	version := c.Index()
	v.versions[key] = version
	if ttl > 0 && v.ctx != nil {
		// The map armed its expiry for this log time just before: timers
		// due at the same time fire in the order they were armed.
		at := c.Time().Add(ttl)
		v.ctx.Schedule(max(at.Sub(v.ctx.Now()), 0), func() {
			if v.versions[key] == version && !v.Map.ContainsKey(key) {
				delete(v.versions, key)
			}
		})
	}
}
