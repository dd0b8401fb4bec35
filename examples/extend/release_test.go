package extend_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/examples/extend"
	"github.com/copycat-go/copycat/runtime"
)

type logged struct {
	c    *fakeCommit
	op   runtime.OpCode
	args []byte
}

type driver struct {
	t   *testing.T
	typ *runtime.ResourceType
	res runtime.Resource
	ctx *fakeContext
	log []logged
}

func newDriver(t *testing.T, typ *runtime.ResourceType) *driver {
	d := &driver{t: t, typ: typ, res: typ.New(), ctx: &fakeContext{now: time.Unix(1000, 0)}}
	d.res.(runtime.Initializer).Init(d.ctx)
	return d
}

func (d *driver) cmd(s *fakeSession, op runtime.OpCode, args any) {
	d.t.Helper()
	d.ctx.advance(d.ctx.now.Add(time.Second))
	data := mustMarshal(d.t, args)
	c := &fakeCommit{index: uint64(len(d.log) + 1), time: d.ctx.now, session: s}
	d.log = append(d.log, logged{c: c, op: op, args: data})
	_, _ = d.res.Execute(c, op, data)
}

// replay applies the live commits to a fresh instance.
func (d *driver) replay() runtime.Resource {
	r := newDriver(d.t, d.typ)
	for _, l := range d.log {
		if l.c.released == 0 {
			r.ctx.advance(l.c.time)
			_, err := r.res.Execute(&fakeCommit{index: l.c.index, time: l.c.time, session: l.c.session}, l.op, l.args)
			require.NoError(d.t, err)
		}
	}
	r.ctx.advance(d.ctx.now)
	return r.res
}

func (d *driver) liveCount() int {
	n := 0
	for _, l := range d.log {
		if l.c.released == 0 {
			n++
		}
	}
	return n
}

func history(t *testing.T, r runtime.Resource) []extend.Hold {
	b, err := r.Execute(&fakeCommit{}, extend.TrackedLockHistoryOp, nil)
	require.NoError(t, err)
	var h extend.TrackedLockHistoryResult
	require.NoError(t, msgpack.Unmarshal(b, &h))
	return h.Value
}

// TestTrackedLockRelease: the history is bounded, the log keeps only the
// commits of the remembered busy periods, and replaying them rebuilds the
// same history.
func TestTrackedLockRelease(t *testing.T) {
	d := newDriver(t, extend.TrackedLockType)
	s1, s2 := &fakeSession{id: 1}, &fakeSession{id: 2}
	acquire := func(s *fakeSession) { d.cmd(s, extend.TrackedLockAcquireOp, &extend.TrackedLockAcquire{Wait: -1}) }
	release := func(s *fakeSession, token int) {
		d.cmd(s, extend.TrackedLockReleaseOp, &extend.TrackedLockRelease{Token: uint64(token)})
	}
	// A busy period with a waiter granted on release: s1 holds 1, s2 waits
	// with 2 and gets it at 3, releases at 4.
	acquire(s1)
	acquire(s2)
	release(s1, 1)
	release(s2, 2)
	h := history(t, d.res)
	require.Len(t, h, 2)
	assert.Equal(t, extend.Hold{Token: 1, Session: 1, From: time.Unix(1001, 0), To: time.Unix(1003, 0)}, h[0])
	assert.Equal(t, extend.Hold{Token: 2, Session: 2, From: time.Unix(1003, 0), To: time.Unix(1004, 0)}, h[1])
	assert.Equal(t, 4, d.liveCount(), "the commits of a remembered period stay live")
	release(s1, 99) // at a free lock: holds nothing
	assert.Equal(t, 4, d.liveCount())
	assert.Equal(t, h, history(t, d.replay()))

	// Many more single-hold periods: old ones are forgotten and released.
	for range extend.MaxHistory + 10 {
		acquire(s1)
		release(s1, len(d.log))
	}
	h = history(t, d.res)
	assert.Len(t, h, extend.MaxHistory)
	assert.Equal(t, 2*extend.MaxHistory, d.liveCount(), "only the remembered periods' commits")
	assert.Equal(t, h, history(t, d.replay()), "the live commits rebuild the history")

	// A hold under way replays too.
	acquire(s1)
	acquire(s2)
	h = history(t, d.res)
	assert.True(t, h[len(h)-1].To.IsZero())
	assert.Equal(t, h, history(t, d.replay()))
}

// TestVersionedMapRelease: versions are the indexes of the puts the map
// keeps live, so replaying the live commits rebuilds them exactly, and
// expiry forgets them on both.
func TestVersionedMapRelease(t *testing.T) {
	d := newDriver(t, extend.VersionedMapType)
	s := &fakeSession{id: 1}
	put := func(k, v string, ttl time.Duration) {
		d.cmd(s, extend.VersionedMapPutOp, &extend.VersionedMapPut{Key: k, Value: []byte(v), Ttl: ttl})
	}
	put("a", "1", 0)
	put("a", "2", 0)
	put("b", "1", 0)
	d.cmd(s, extend.VersionedMapPutIfAbsentOp, &extend.VersionedMapPutIfAbsent{Key: "b", Value: []byte("x")})
	// Plain puts, so that the map keeps one commit per key; chains of
	// Replace/CompareAndReplace (which keep every link live) are covered by
	// dmap's own replay tests.
	put("b", "2", 0)
	put("t", "ttl", 10*time.Second)
	put("c", "1", 0)
	d.cmd(s, extend.VersionedMapRemoveOp, &extend.VersionedMapRemove{Key: "c"})
	assert.Equal(t, 3, d.liveCount(), "the map keeps one put per key")

	versions := func(r runtime.Resource) map[string]uint64 {
		out := map[string]uint64{}
		for _, k := range []string{"a", "b", "c", "t"} {
			b, err := r.Execute(&fakeCommit{}, extend.VersionedMapVersionOp, mustMarshal(t, &extend.VersionedMapVersion{Key: k}))
			require.NoError(t, err)
			var v extend.VersionedMapVersionResult
			require.NoError(t, msgpack.Unmarshal(b, &v))
			out[k] = v.Value
		}
		return out
	}
	want := map[string]uint64{"a": 2, "b": 5, "c": 0, "t": 6}
	assert.Equal(t, want, versions(d.res))
	r := d.replay()
	assert.Equal(t, want, versions(r), "the live commits rebuild the versions")

	d.ctx.advance(d.ctx.now.Add(20 * time.Second))
	want["t"] = 0
	assert.Equal(t, want, versions(d.res), "expiry forgets the version")
}
