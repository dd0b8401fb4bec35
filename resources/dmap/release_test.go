package dmap_test

import (
	"github.com/copycat-go/copycat/runtime/copycattest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/resources/dmap"
	"github.com/copycat-go/copycat/runtime"
)

// driver applies commands to a Map by hand, as a member's state machine
// does, keeping each command's commit to see what the Map released.
type driver struct {
	t   *testing.T
	res runtime.Resource
	ctx *copycattest.FakeContext
	log []logged
}

type logged struct {
	c    *copycattest.FakeCommit
	op   runtime.OpCode
	args []byte
}

func newDriver(t *testing.T, now time.Time) *driver {
	d := &driver{t: t, res: dmap.MapType.New(), ctx: &copycattest.FakeContext{Clock: now, SessionsByID: map[uint64]runtime.Session{}}}
	d.res.(runtime.Initializer).Init(d.ctx)
	return d
}

// cmd applies a command and returns its index.
func (d *driver) cmd(s *copycattest.FakeSession, op runtime.OpCode, args any) uint64 {
	d.t.Helper()
	data, err := msgpack.Marshal(args)
	require.NoError(d.t, err)
	c := &copycattest.FakeCommit{At: uint64(len(d.log) + 1), Clock: d.ctx.Clock, Caller: s}
	d.log = append(d.log, logged{c: c, op: op, args: data})
	_, _ = d.res.Execute(c, op, data)
	return c.At
}

// live returns the indexes of the commits not released.
func (d *driver) live() []uint64 {
	var out []uint64
	for _, l := range d.log {
		if l.c.Released == 0 {
			out = append(out, l.c.At)
		}
	}
	return out
}

func (d *driver) entries() []dmap.Entry {
	out, err := d.res.Execute(&copycattest.FakeCommit{}, dmap.MapEntriesOp, mustMarshal(d.t, &dmap.MapEntries{}))
	require.NoError(d.t, err)
	var r dmap.MapEntriesResult
	require.NoError(d.t, msgpack.Unmarshal(out, &r))
	return r.Value.Entries
}

func put(key, value string, ttl time.Duration) *dmap.MapPut {
	return &dmap.MapPut{Key: key, Value: []byte(value), Ttl: ttl}
}

// TestRelease checks that every command that no longer holds state is
// released — superseded, removed, cleared and expired puts, commands that
// changed nothing, replaced and ended listeners — and that replaying the
// live commits in index order rebuilds the same map.
func TestRelease(t *testing.T) {
	t0 := time.Unix(1000, 0)
	d := newDriver(t, t0)
	s1, s2 := &copycattest.FakeSession{SessionID: 1}, &copycattest.FakeSession{SessionID: 2}
	d.ctx.SessionsByID[1], d.ctx.SessionsByID[2] = s1, s2

	a1 := d.cmd(s1, dmap.MapPutOp, put("a", "1", 0))
	assert.Equal(t, []uint64{a1}, d.live())
	a2 := d.cmd(s1, dmap.MapPutOp, put("a", "2", 0))
	assert.Equal(t, []uint64{a2}, d.live(), "an overwritten put is released")
	d.cmd(s1, dmap.MapPutIfAbsentOp, &dmap.MapPutIfAbsent{Key: "a", Value: []byte("x")})
	assert.Equal(t, []uint64{a2}, d.live(), "a PutIfAbsent that did nothing is released")
	b1 := d.cmd(s1, dmap.MapPutIfAbsentOp, &dmap.MapPutIfAbsent{Key: "b", Value: []byte("1")})
	assert.Equal(t, []uint64{a2, b1}, d.live())
	d.cmd(s1, dmap.MapReplaceOp, &dmap.MapReplace{Key: "nope", Value: []byte("x")})
	assert.Equal(t, []uint64{a2, b1}, d.live(), "a Replace of a missing key is released")
	b2 := d.cmd(s1, dmap.MapReplaceOp, &dmap.MapReplace{Key: "b", Value: []byte("2")})
	assert.Equal(t, []uint64{a2, b2}, d.live(), "a replaced put is released")
	d.cmd(s1, dmap.MapCompareAndReplaceOp, &dmap.MapCompareAndReplace{Key: "b", Expect: []byte("no"), Value: []byte("3")})
	assert.Equal(t, []uint64{a2, b2}, d.live(), "a failed CompareAndReplace is released")
	b3 := d.cmd(s1, dmap.MapCompareAndReplaceOp, &dmap.MapCompareAndReplace{Key: "b", Expect: []byte("2"), Value: []byte("3")})
	assert.Equal(t, []uint64{a2, b3}, d.live())
	d.cmd(s1, dmap.MapRemoveOp, &dmap.MapRemove{Key: "nope"})
	d.cmd(s1, dmap.MapRemoveOp, &dmap.MapRemove{Key: "a"})
	assert.Equal(t, []uint64{b3}, d.live(), "a removed put and the Removes are released")
	d.cmd(s1, dmap.MapRemoveIfEqualsOp, &dmap.MapRemoveIfEquals{Key: "b", Expect: []byte("no")})
	assert.Equal(t, []uint64{b3}, d.live(), "a failed RemoveIfEquals is released")

	t1 := d.cmd(s1, dmap.MapPutOp, put("t", "ttl", 5*time.Second))
	assert.Equal(t, []uint64{b3, t1}, d.live())
	d.ctx.Advance(t0.Add(6 * time.Second))
	assert.Equal(t, []uint64{b3}, d.live(), "an expired put is released")
	d.cmd(s1, dmap.MapPutOp, put("neg", "x", -time.Second))
	assert.Equal(t, []uint64{b3}, d.live(), "a refused put is released")

	l1 := d.cmd(s1, dmap.MapListenOp, &dmap.MapListen{})
	assert.Equal(t, []uint64{b3, l1}, d.live(), "a Listen holds state")
	l2 := d.cmd(s1, dmap.MapListenOp, &dmap.MapListen{Keys: []string{"b"}})
	assert.Equal(t, []uint64{b3, l2}, d.live(), "a replaced Listen is released")
	l3 := d.cmd(s2, dmap.MapListenOp, &dmap.MapListen{})
	assert.Equal(t, []uint64{b3, l2, l3}, d.live())
	d.cmd(s1, dmap.MapUnlistenOp, &dmap.MapUnlisten{})
	assert.Equal(t, []uint64{b3, l3}, d.live(), "Unlisten releases the Listen and itself")
	d.res.(runtime.SessionListener).SessionClosed(s2, true)
	assert.Equal(t, []uint64{b3}, d.live(), "an ended session's Listen is released")

	c1 := d.cmd(s1, dmap.MapPutOp, put("c", "1", 0))
	c2 := d.cmd(s1, dmap.MapPutOp, put("d", "1", 0))
	assert.Equal(t, []uint64{b3, c1, c2}, d.live())
	d.cmd(s1, dmap.MapClearOp, &dmap.MapClear{})
	assert.Empty(t, d.live(), "Clear releases every put and itself")

	// Queries hold nothing and are never released (the runtime forbids it).
	q := &copycattest.FakeCommit{}
	for _, op := range []runtime.OpCode{dmap.MapGetOp, dmap.MapContainsKeyOp, dmap.MapSizeOp, dmap.MapKeysOp, dmap.MapEntriesOp} {
		_, err := d.res.Execute(q, op, mustMarshal(t, &dmap.MapGet{Key: "b"}))
		require.NoError(t, err)
	}
	assert.Zero(t, q.Released)

	// A history to replay: a key with a pending expiry, an overwritten one,
	// a listener.
	d.ctx.Advance(t0.Add(10 * time.Second))
	d.cmd(s1, dmap.MapPutOp, put("x", "1", 0))
	d.cmd(s1, dmap.MapPutOp, put("y", "1", 30*time.Second))
	d.cmd(s1, dmap.MapPutOp, put("z", "1", 2*time.Second))
	d.ctx.Advance(t0.Add(11 * time.Second))
	d.cmd(s1, dmap.MapPutOp, put("x", "2", 0))
	d.cmd(s1, dmap.MapListenOp, &dmap.MapListen{Keys: []string{"y"}})
	d.ctx.Advance(t0.Add(13 * time.Second)) // z expires
	want := d.entries()
	require.Equal(t, []dmap.Entry{{Key: "x", Value: []byte("2")}, {Key: "y", Value: []byte("1")}}, want)

	r := newDriver(t, t0)
	r.ctx.SessionsByID = d.ctx.SessionsByID
	for _, l := range d.log {
		if l.c.Released == 0 {
			r.ctx.Advance(l.c.Clock)
			_, err := r.res.Execute(&copycattest.FakeCommit{At: l.c.At, Clock: l.c.Clock, Caller: l.c.Caller}, l.op, l.args)
			require.NoError(t, err)
		}
	}
	r.ctx.Advance(d.ctx.Clock)
	assert.Equal(t, want, r.entries(), "the live commits rebuild the map")
	assert.Equal(t, d.ctx.Pending(), r.ctx.Pending(), "and its pending expiries")

	// The replayed listener hears y's expiry in both.
	s1.Events = nil
	d.ctx.Advance(t0.Add(41 * time.Second))
	r.ctx.Advance(t0.Add(41 * time.Second))
	left := []dmap.Entry{{Key: "x", Value: []byte("2")}}
	assert.Equal(t, left, d.entries())
	assert.Equal(t, left, r.entries())
	expired := dmap.Changed{Kind: dmap.Removed, Key: "y", Old: []byte("1"), Expired: true}
	assert.Equal(t, []any{expired, expired}, s1.Events)

	// Delete stops pending expiries.
	d.cmd(s1, dmap.MapPutOp, put("k", "1", time.Minute))
	require.Equal(t, 1, d.ctx.Pending())
	d.res.(runtime.Deleter).Delete()
	assert.Zero(t, d.ctx.Pending())
}
