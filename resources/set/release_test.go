package set_test

import (
	"github.com/copycat-go/copycat/runtime/copycattest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/resources/set"
	"github.com/copycat-go/copycat/runtime"
)

// driver applies commands to a Set by hand, as a member's state machine
// does, keeping each command's commit to see what the Set released.
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
	d := &driver{t: t, res: set.SetType.New(), ctx: &copycattest.FakeContext{Clock: now}}
	d.res.(runtime.Initializer).Init(d.ctx)
	return d
}

func (d *driver) cmd(s *copycattest.FakeSession, op runtime.OpCode, args any) uint64 {
	d.t.Helper()
	data := mustMarshal(d.t, args)
	c := &copycattest.FakeCommit{At: uint64(len(d.log) + 1), Clock: d.ctx.Clock, Caller: s}
	d.log = append(d.log, logged{c: c, op: op, args: data})
	_, _ = d.res.Execute(c, op, data)
	return c.At
}

func (d *driver) live() []uint64 {
	var out []uint64
	for _, l := range d.log {
		if l.c.Released == 0 {
			out = append(out, l.c.At)
		}
	}
	return out
}

func (d *driver) members() []string {
	out, err := d.res.Execute(&copycattest.FakeCommit{}, set.SetMembersOp, mustMarshal(d.t, &set.SetMembers{}))
	require.NoError(d.t, err)
	var r set.SetMembersResult
	require.NoError(d.t, msgpack.Unmarshal(out, &r))
	return r.Value.Members
}

func add(v string, ttl time.Duration) *set.SetAdd { return &set.SetAdd{Value: v, Ttl: ttl} }

// TestRelease checks that every command that no longer holds state is
// released, and that replaying the live commits rebuilds the same set and
// its pending expiries.
func TestRelease(t *testing.T) {
	t0 := time.Unix(1000, 0)
	d := newDriver(t, t0)
	s1, s2 := &copycattest.FakeSession{SessionID: 1}, &copycattest.FakeSession{SessionID: 2}

	a1 := d.cmd(s1, set.SetAddOp, add("a", 0))
	assert.Equal(t, []uint64{a1}, d.live())
	a2 := d.cmd(s1, set.SetAddOp, add("a", 0))
	assert.Equal(t, []uint64{a2}, d.live(), "a superseded Add is released")
	d.cmd(s1, set.SetAddOp, add("neg", -time.Second))
	assert.Equal(t, []uint64{a2}, d.live(), "a refused Add is released")
	b := d.cmd(s1, set.SetAddOp, add("b", 0))
	d.cmd(s1, set.SetRemoveOp, &set.SetRemove{Value: "nope"})
	d.cmd(s1, set.SetRemoveOp, &set.SetRemove{Value: "a"})
	assert.Equal(t, []uint64{b}, d.live(), "a removed Add and the Removes are released")
	e := d.cmd(s1, set.SetAddOp, add("e", 5*time.Second))
	assert.Equal(t, []uint64{b, e}, d.live())
	d.ctx.Advance(t0.Add(6 * time.Second))
	assert.Equal(t, []uint64{b}, d.live(), "an expired Add is released")

	l1 := d.cmd(s1, set.SetListenOp, &set.SetListen{})
	l2 := d.cmd(s1, set.SetListenOp, &set.SetListen{})
	assert.Equal(t, []uint64{b, l2}, d.live(), "a repeated Listen releases the first")
	l3 := d.cmd(s2, set.SetListenOp, &set.SetListen{})
	d.cmd(s1, set.SetUnlistenOp, &set.SetUnlisten{})
	assert.Equal(t, []uint64{b, l3}, d.live(), "Unlisten releases the Listen and itself")
	_ = l1
	d.res.(runtime.SessionListener).SessionClosed(s2, true)
	assert.Equal(t, []uint64{b}, d.live(), "an ended session's Listen is released")
	d.cmd(s1, set.SetAddOp, add("c", 0))
	d.cmd(s1, set.SetClearOp, &set.SetClear{})
	assert.Empty(t, d.live(), "Clear releases every Add and itself")

	// Queries hold nothing.
	q := &copycattest.FakeCommit{}
	for _, op := range []runtime.OpCode{set.SetContainsOp, set.SetSizeOp, set.SetMembersOp} {
		_, err := d.res.Execute(q, op, mustMarshal(t, &set.SetContains{Value: "b"}))
		require.NoError(t, err)
	}
	assert.Zero(t, q.Released)

	// A history to replay.
	d.ctx.Advance(t0.Add(10 * time.Second))
	d.cmd(s1, set.SetAddOp, add("x", 0))
	d.cmd(s1, set.SetAddOp, add("y", 30*time.Second))
	d.cmd(s1, set.SetAddOp, add("z", 2*time.Second))
	d.ctx.Advance(t0.Add(11 * time.Second))
	d.cmd(s1, set.SetAddOp, add("x", time.Hour))
	d.cmd(s1, set.SetListenOp, &set.SetListen{})
	d.ctx.Advance(t0.Add(13 * time.Second)) // z expires
	want := d.members()
	require.Equal(t, []string{"x", "y"}, want)

	r := newDriver(t, t0)
	for _, l := range d.log {
		if l.c.Released == 0 {
			r.ctx.Advance(l.c.Clock)
			_, err := r.res.Execute(&copycattest.FakeCommit{At: l.c.At, Clock: l.c.Clock, Caller: l.c.Caller}, l.op, l.args)
			require.NoError(t, err)
		}
	}
	r.ctx.Advance(d.ctx.Clock)
	assert.Equal(t, want, r.members(), "the live commits rebuild the set")
	assert.Equal(t, d.ctx.Pending(), r.ctx.Pending(), "and its pending expiries")

	s1.Events = nil
	d.ctx.Advance(t0.Add(41 * time.Second))
	r.ctx.Advance(t0.Add(41 * time.Second))
	assert.Equal(t, []string{"x"}, d.members())
	assert.Equal(t, []string{"x"}, r.members())
	expired := set.Changed{Kind: set.Removed, Member: "y", Expired: true}
	assert.Equal(t, []any{expired, expired}, s1.Events, "the replayed listener hears the expiry too")

	d.res.(runtime.Deleter).Delete()
	assert.Zero(t, d.ctx.Pending(), "Delete stops pending expiries")
}
