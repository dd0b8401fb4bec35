package dmap_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/resources/dmap"
	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/copycattest"
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
	assert.Equal(t, []uint64{a2, b1, b2}, d.live(), "a Replace keeps the put it replaced (its replay needs the key)")
	d.cmd(s1, dmap.MapCompareAndReplaceOp, &dmap.MapCompareAndReplace{Key: "b", Expect: []byte("no"), Value: []byte("3")})
	assert.Equal(t, []uint64{a2, b1, b2}, d.live(), "a failed CompareAndReplace is released")
	b3 := d.cmd(s1, dmap.MapCompareAndReplaceOp, &dmap.MapCompareAndReplace{Key: "b", Expect: []byte("2"), Value: []byte("3")})
	assert.Equal(t, []uint64{a2, b1, b2, b3}, d.live(), "and so does a CompareAndReplace")
	d.cmd(s1, dmap.MapRemoveOp, &dmap.MapRemove{Key: "nope"})
	d.cmd(s1, dmap.MapRemoveOp, &dmap.MapRemove{Key: "a"})
	assert.Equal(t, []uint64{b1, b2, b3}, d.live(), "a removed put and the Removes are released")
	d.cmd(s1, dmap.MapRemoveIfEqualsOp, &dmap.MapRemoveIfEquals{Key: "b", Expect: []byte("no")})
	assert.Equal(t, []uint64{b1, b2, b3}, d.live(), "a failed RemoveIfEquals is released")
	b := []uint64{b1, b2, b3}

	t1 := d.cmd(s1, dmap.MapPutOp, put("t", "ttl", 5*time.Second))
	assert.Equal(t, append(b, t1), d.live())
	d.ctx.Advance(t0.Add(6 * time.Second))
	assert.Equal(t, b, d.live(), "an expired put is released")
	d.cmd(s1, dmap.MapPutOp, put("neg", "x", -time.Second))
	assert.Equal(t, b, d.live(), "a refused put is released")

	l1 := d.cmd(s1, dmap.MapListenOp, &dmap.MapListen{})
	assert.Equal(t, append(b, l1), d.live(), "a Listen holds state")
	l2 := d.cmd(s1, dmap.MapListenOp, &dmap.MapListen{Keys: []string{"b"}})
	assert.Equal(t, append(b, l2), d.live(), "a replaced Listen is released")
	l3 := d.cmd(s2, dmap.MapListenOp, &dmap.MapListen{})
	assert.Equal(t, append(b, l2, l3), d.live())
	d.cmd(s1, dmap.MapUnlistenOp, &dmap.MapUnlisten{})
	assert.Equal(t, append(b, l3), d.live(), "Unlisten releases the Listen and itself")
	d.res.(runtime.SessionListener).SessionClosed(s2, true)
	assert.Equal(t, b, d.live(), "an ended session's Listen is released")

	c1 := d.cmd(s1, dmap.MapPutOp, put("c", "1", 0))
	c2 := d.cmd(s1, dmap.MapPutOp, put("d", "1", 0))
	assert.Equal(t, append(b, c1, c2), d.live())
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

// replay applies the live commits of d, in index order, to a fresh Map, as
// a member restoring a compacted log does, and brings its clock to d's.
func (d *driver) replay() *driver {
	d.t.Helper()
	r := newDriver(d.t, d.log[0].c.Clock)
	r.ctx.SessionsByID = d.ctx.SessionsByID
	for _, l := range d.log {
		if l.c.Released == 0 {
			r.ctx.Advance(l.c.Clock)
			c := &copycattest.FakeCommit{At: l.c.At, Clock: l.c.Clock, Caller: l.c.Caller}
			r.log = append(r.log, logged{c: c, op: l.op, args: l.args})
			_, err := r.res.Execute(c, l.op, l.args)
			require.NoError(d.t, err)
		}
	}
	r.ctx.Advance(d.ctx.Clock)
	return r
}

// sameFuture checks that r holds d's entries and expires them at the same
// moments: it steps both clocks to until and compares the entries at each
// step. It moves both drivers' clocks.
func sameFuture(t *testing.T, d, r *driver, until time.Time, step time.Duration, msg string) {
	t.Helper()
	require.Equal(t, d.entries(), r.entries(), "%s: the replay rebuilds the entries", msg)
	require.Equal(t, d.ctx.Pending(), r.ctx.Pending(), "%s: and the pending expiries", msg)
	dn, dok := d.ctx.NextDeadline()
	rn, rok := r.ctx.NextDeadline()
	require.Equal(t, dok, rok, msg)
	require.True(t, dn.Equal(rn), "%s: next expiry %v, replayed %v", msg, dn, rn)
	for now := d.ctx.Clock.Add(step); !now.After(until); now = now.Add(step) {
		d.ctx.Advance(now)
		r.ctx.Advance(now)
		require.Equal(t, d.entries(), r.entries(), "%s: same entries at %v", msg, now.Sub(d.log[0].c.Clock))
	}
}

func replace(key, value string, ttl time.Duration) *dmap.MapReplace {
	return &dmap.MapReplace{Key: key, Value: []byte(value), Ttl: ttl}
}

func cas(key, expect, value string, ttl time.Duration) *dmap.MapCompareAndReplace {
	return &dmap.MapCompareAndReplace{Key: key, Expect: []byte(expect), Value: []byte(value), Ttl: ttl}
}

func putIfAbsent(key, value string, ttl time.Duration) *dmap.MapPutIfAbsent {
	return &dmap.MapPutIfAbsent{Key: key, Value: []byte(value), Ttl: ttl}
}

// TestReleaseConditionalChains checks that a key written by Replace and
// CompareAndReplace keeps every commit its value depends on — the put, then
// each successful conditional write since — that a Put, Remove, Clear or
// expiry releases the whole chain, and that replaying the live commits
// rebuilds the same entries and expiries at every point.
func TestReleaseConditionalChains(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	d := newDriver(t, t0)
	s1 := &copycattest.FakeSession{SessionID: 1}
	d.ctx.SessionsByID[1] = s1
	check := func(msg string) {
		t.Helper()
		r := d.replay()
		assert.Equal(t, d.entries(), r.entries(), "%s: the replay rebuilds the entries", msg)
		assert.Equal(t, d.ctx.Pending(), r.ctx.Pending(), "%s: and the pending expiries", msg)
		dn, _ := d.ctx.NextDeadline()
		rn, _ := r.ctx.NextDeadline()
		assert.True(t, dn.Equal(rn), "%s: next expiry %v, replayed %v", msg, dn, rn)
	}

	// The reported case: put b; replace b.
	b1 := d.cmd(s1, dmap.MapPutOp, put("b", "1", 0))
	b2 := d.cmd(s1, dmap.MapReplaceOp, replace("b", "2", 0))
	assert.Equal(t, []uint64{b1, b2}, d.live())
	check("put b; replace b")

	// PutIfAbsent, then a chain of CompareAndReplace and Replace.
	c1 := d.cmd(s1, dmap.MapPutIfAbsentOp, putIfAbsent("c", "1", 0))
	c2 := d.cmd(s1, dmap.MapCompareAndReplaceOp, cas("c", "1", "2", 0))
	d.cmd(s1, dmap.MapCompareAndReplaceOp, cas("c", "1", "x", 0)) // fails
	c3 := d.cmd(s1, dmap.MapCompareAndReplaceOp, cas("c", "2", "3", 0))
	c4 := d.cmd(s1, dmap.MapReplaceOp, replace("c", "4", 0))
	d.cmd(s1, dmap.MapPutIfAbsentOp, putIfAbsent("c", "x", 0)) // fails
	assert.Equal(t, []uint64{b1, b2, c1, c2, c3, c4}, d.live(), "failed writes released, the chain kept")
	check("PutIfAbsent c; CAS; CAS; Replace")

	// A Put releases the chain it overwrites; so does a Remove.
	b3 := d.cmd(s1, dmap.MapPutOp, put("b", "3", 0))
	assert.Equal(t, []uint64{c1, c2, c3, c4, b3}, d.live(), "a Put releases the whole chain")
	check("put over a chain")
	d.cmd(s1, dmap.MapRemoveOp, &dmap.MapRemove{Key: "c"})
	assert.Equal(t, []uint64{b3}, d.live(), "a Remove releases the whole chain")
	check("remove a chain")
	c5 := d.cmd(s1, dmap.MapPutIfAbsentOp, putIfAbsent("c", "5", 0))
	c6 := d.cmd(s1, dmap.MapCompareAndReplaceOp, cas("c", "5", "6", 0))
	assert.Equal(t, []uint64{b3, c5, c6}, d.live(), "PutIfAbsent after a Remove")
	check("PutIfAbsent after Remove")
	d.cmd(s1, dmap.MapRemoveIfEqualsOp, &dmap.MapRemoveIfEquals{Key: "c", Expect: []byte("6")})
	assert.Equal(t, []uint64{b3}, d.live(), "a RemoveIfEquals releases the whole chain")

	// Expiry across a chain: x is put with a ttl, made permanent by a
	// Replace before it expires, then replaced again after the put's own
	// deadline; the replay must not expire x at the put's deadline.
	d.ctx.Advance(at(10))
	x1 := d.cmd(s1, dmap.MapPutOp, put("x", "1", 5*time.Second))
	d.ctx.Advance(at(13))
	x2 := d.cmd(s1, dmap.MapReplaceOp, replace("x", "2", 0))
	d.ctx.Advance(at(20))
	x3 := d.cmd(s1, dmap.MapCompareAndReplaceOp, cas("x", "2", "3", 4*time.Second))
	assert.Equal(t, []uint64{b3, x1, x2, x3}, d.live())
	check("ttl put; permanent replace; ttl CAS")
	// The reverse: a permanent put given a ttl by a Replace.
	y1 := d.cmd(s1, dmap.MapPutOp, put("y", "1", 0))
	d.ctx.Advance(at(21))
	y2 := d.cmd(s1, dmap.MapReplaceOp, replace("y", "2", 30*time.Second))
	d.ctx.Advance(at(22))
	y3 := d.cmd(s1, dmap.MapCompareAndReplaceOp, cas("y", "2", "3", 0))
	d.ctx.Advance(at(23))
	y4 := d.cmd(s1, dmap.MapReplaceOp, replace("y", "4", 10*time.Second))
	assert.Equal(t, []uint64{b3, x1, x2, x3, y1, y2, y3, y4}, d.live())
	check("permanent put; ttl replaces")

	r := d.replay()
	sameFuture(t, d, r, at(40), 500*time.Millisecond, "x and y expire")
	assert.Equal(t, []uint64{b3}, d.live(), "an expiry releases the whole chain")
	assert.Equal(t, []dmap.Entry{{Key: "b", Value: []byte("3")}}, d.entries())

	// Clear releases every chain.
	d.cmd(s1, dmap.MapReplaceOp, replace("b", "4", 0))
	d.cmd(s1, dmap.MapPutIfAbsentOp, putIfAbsent("z", "1", time.Minute))
	d.cmd(s1, dmap.MapCompareAndReplaceOp, cas("z", "1", "2", time.Minute))
	d.cmd(s1, dmap.MapClearOp, &dmap.MapClear{})
	assert.Empty(t, d.live(), "Clear releases every chain and itself")
	check("clear")
}

// TestReleaseReplayRandom applies seeded random histories of every write
// on a few keys, with times to live and a moving clock, and after each
// command replays the live commits to a fresh Map: it must hold the same
// entries then and expire them at the same moments after.
func TestReleaseReplayRandom(t *testing.T) {
	keys := []string{"a", "b", "c"}
	vals := []string{"1", "2", "3"}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		t0 := time.Unix(1000, 0)
		d := newDriver(t, t0)
		s1 := &copycattest.FakeSession{SessionID: 1}
		d.ctx.SessionsByID[1] = s1
		var hist []string
		for i := range 150 {
			if rng.IntN(3) == 0 {
				d.ctx.Advance(d.ctx.Clock.Add(time.Duration(rng.IntN(3000)) * time.Millisecond))
			}
			k, v := keys[rng.IntN(len(keys))], vals[rng.IntN(len(vals))]
			var ttl time.Duration
			if rng.IntN(3) == 0 {
				ttl = time.Duration(1+rng.IntN(5)) * time.Second
			}
			var op runtime.OpCode
			var args any
			switch rng.IntN(8) {
			case 0:
				op, args = dmap.MapPutOp, put(k, v, ttl)
			case 1:
				op, args = dmap.MapPutIfAbsentOp, putIfAbsent(k, v, ttl)
			case 2, 3:
				op, args = dmap.MapReplaceOp, replace(k, v, ttl)
			case 4, 5:
				op, args = dmap.MapCompareAndReplaceOp, cas(k, vals[rng.IntN(len(vals))], v, ttl)
			case 6:
				op, args = dmap.MapRemoveOp, &dmap.MapRemove{Key: k}
			default:
				if rng.IntN(10) == 0 {
					op, args = dmap.MapClearOp, &dmap.MapClear{}
				} else {
					op, args = dmap.MapRemoveIfEqualsOp, &dmap.MapRemoveIfEquals{Key: k, Expect: []byte(v)}
				}
			}
			hist = append(hist, fmt.Sprintf("%v op=%d %+v", d.ctx.Clock.Sub(t0), op, args))
			d.cmd(s1, op, args)
			r := d.replay()
			if !assert.Equal(t, d.entries(), r.entries(), "seed %d, after command %d:\n%s", seed, i, strings.Join(hist, "\n")) {
				return
			}
		}
		// Let every pending expiry run on a copy driven by the replay.
		r := d.replay()
		sameFuture(t, d, r, d.ctx.Clock.Add(6*time.Second), 250*time.Millisecond, fmt.Sprintf("seed %d", seed))
		assert.Empty(t, d.ctx.Pending())
	}
}
