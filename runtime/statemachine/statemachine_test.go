package statemachine

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/session"
)

// counter is a hand-written resource: Add (command), Get (query), a
// Crossed event when the value passes 10, an Expire timer, and a declared error.
type counter struct {
	ctx     runtime.Context
	value   int64
	opens   []uint64
	closes  []uint64
	adders  map[uint64]runtime.Commit
	expired int
}

var errNegative = errors.New("counter: negative")

const (
	opAdd     runtime.OpCode = 1
	opGet     runtime.OpCode = 2
	opExpire  runtime.OpCode = 3 // schedules a timer that adds 100
	opRelease runtime.OpCode = 4 // releases the session's earlier Add
	opPanic   runtime.OpCode = 5
)

var counterType = &runtime.ResourceType{
	Name:       "test.Counter",
	Compaction: runtime.Release,
	Operations: []runtime.Operation{
		{Code: opAdd, Name: "Add", Kind: runtime.Command},
		{Code: opGet, Name: "Get", Kind: runtime.Query},
		{Code: opExpire, Name: "Expire", Kind: runtime.Command},
		{Code: opRelease, Name: "Release", Kind: runtime.Command},
		{Code: opPanic, Name: "Panic", Kind: runtime.Command},
	},
	Events: []runtime.EventType{{Code: 1, Name: "Crossed"}},
	Errors: []runtime.ErrorType{{Code: 1, Err: errNegative}},
	New:    func() runtime.Resource { return &counter{adders: map[uint64]runtime.Commit{}} },
	EncodeEvent: func(e any) (runtime.EventCode, []byte, error) {
		if v, ok := e.(int64); ok {
			return 1, binary.AppendVarint(nil, v), nil
		}
		return 0, nil, errors.New("not an event")
	},
}

func (c *counter) Init(ctx runtime.Context) { c.ctx = ctx }
func (c *counter) SessionOpened(s runtime.Session) {
	c.opens = append(c.opens, s.ID())
}
func (c *counter) SessionClosed(s runtime.Session, expired bool) {
	c.closes = append(c.closes, s.ID())
}

func (c *counter) Execute(cm runtime.Commit, op runtime.OpCode, args []byte) ([]byte, error) {
	switch op {
	case opAdd:
		d, _ := binary.Varint(args)
		if c.value+d < 0 {
			return nil, errNegative
		}
		before := c.value
		c.value += d
		if before <= 10 && c.value > 10 {
			cm.Session().Publish(c.value)
		}
		if d == 99 {
			cm.Session().Publish("unencodable")
		}
		if prev, ok := c.adders[cm.Session().ID()]; ok {
			_ = prev
		}
		c.adders[cm.Session().ID()] = cm
		return binary.AppendVarint(nil, c.value), nil
	case opGet:
		return binary.AppendVarint(nil, c.value), nil
	case opExpire:
		d, _ := binary.Varint(args)
		c.ctx.Schedule(time.Duration(d), func() { c.value += 100; c.expired++ })
		cm.Release()
		return nil, nil
	case opRelease:
		if prev, ok := c.adders[cm.Session().ID()]; ok {
			prev.Release()
			delete(c.adders, cm.Session().ID())
		}
		cm.Release()
		return nil, nil
	case opPanic:
		panic("boom")
	}
	return nil, errors.New("unreachable")
}

type harness struct {
	t     *testing.T
	sm    *StateMachine
	index uint64
	now   time.Time
	seq   map[uint64]uint64
}

func newHarness(t *testing.T) *harness {
	sm, err := New(counterType)
	require.NoError(t, err)
	return &harness{t: t, sm: sm, now: time.Unix(1000, 0), seq: map[uint64]uint64{}}
}

func (h *harness) apply(e Entry) []Output {
	h.index++
	h.now = h.now.Add(time.Millisecond)
	data, err := e.Encode()
	require.NoError(h.t, err)
	out, err := h.sm.Apply(h.index, h.now.UnixNano(), data)
	require.NoError(h.t, err)
	return out
}

func (h *harness) openSession() uint64 {
	out := h.apply(Entry{Kind: KindOpenSession, ClientID: "c", Timeout: 5 * time.Second})
	return out[0].Session
}

func (h *harness) open(s uint64, name string) uint64 {
	out := h.apply(Entry{Kind: KindOpenResource, Session: s, Type: counterType.Name, Name: name})
	require.Nil(h.t, out[0].Response.Err)
	return out[0].Resource
}

func (h *harness) add(s, res uint64, d int64) session.Response {
	h.seq[s]++
	out := h.apply(Entry{Kind: KindCommand, Session: s, Sequence: h.seq[s], Resource: res, Op: opAdd, Args: binary.AppendVarint(nil, d)})
	require.Len(h.t, out, 1)
	return out[0].Response
}

func value(r session.Response) int64 {
	v, _ := binary.Varint(r.Result)
	return v
}

func TestApply_CommandsAndQueries(t *testing.T) {
	h := newHarness(t)
	s := h.openSession()
	a := h.open(s, "a")
	assert.Equal(t, a, h.open(s, "a"), "open is create-or-get")
	b := h.open(s, "b")
	assert.NotEqual(t, a, b)
	assert.Equal(t, int64(5), value(h.add(s, a, 5)))
	assert.Equal(t, int64(7), value(h.add(s, a, 2)))
	assert.Equal(t, int64(1), value(h.add(s, b, 1)))
	q := h.sm.Query(s, a, opGet, nil)
	assert.Equal(t, int64(7), value(q))
	assert.Equal(t, h.index, q.Index)
}

func TestApply_ExactlyOnce(t *testing.T) {
	h := newHarness(t)
	s := h.openSession()
	a := h.open(s, "a")
	r1 := h.add(s, a, 5)
	// The client retries sequence 1 (its response was lost).
	out := h.apply(Entry{Kind: KindCommand, Session: s, Sequence: 1, Resource: a, Op: opAdd, Args: binary.AppendVarint(nil, 5)})
	require.Len(t, out, 1)
	assert.Equal(t, r1, out[0].Response, "the retry gets the original response")
	assert.Equal(t, int64(5), value(h.sm.Query(s, a, opGet, nil)), "and applies nothing")
}

func TestApply_EarlyCommandIsRefusedNotHeld(t *testing.T) {
	h := newHarness(t)
	s := h.openSession()
	a := h.open(s, "a")
	out := h.apply(Entry{Kind: KindCommand, Session: s, Sequence: 2, Resource: a, Op: opAdd, Args: binary.AppendVarint(nil, 10)})
	require.Len(t, out, 1)
	require.NotNil(t, out[0].Response.Err)
	assert.ErrorIs(t, protocolError(out[0].Response.Err), runtime.ErrCommandOutOfOrder, "the client resends it after 1")
	assert.Equal(t, int64(0), value(h.sm.Query(s, a, opGet, nil)), "not applied")
	out = h.apply(Entry{Kind: KindCommand, Session: s, Sequence: 1, Resource: a, Op: opAdd, Args: binary.AppendVarint(nil, 1)})
	require.Len(t, out, 1, "1 runs alone: nothing was held")
	assert.Equal(t, int64(1), value(out[0].Response))
	out = h.apply(Entry{Kind: KindCommand, Session: s, Sequence: 2, Resource: a, Op: opAdd, Args: binary.AppendVarint(nil, 10)})
	require.Len(t, out, 1)
	assert.Equal(t, int64(11), value(out[0].Response), "the resent 2 runs at its own, later index")
	assert.Equal(t, h.index, out[0].Response.Index)
}

// protocolError turns a wire error back into the runtime error it carries.
func protocolError(w *session.WireError) error {
	if w.Kind == session.ErrorRuntime {
		if err, ok := runtime.RuntimeError(w.Code); ok {
			return err
		}
	}
	return errors.New(w.Message)
}

func TestApply_Errors(t *testing.T) {
	h := newHarness(t)
	s := h.openSession()
	a := h.open(s, "a")
	r := h.add(s, a, -1)
	require.NotNil(t, r.Err)
	assert.Equal(t, session.ErrorDeclared, r.Err.Kind)
	assert.Equal(t, uint16(1), r.Err.Code)

	out := h.apply(Entry{Kind: KindOpenResource, Session: s, Type: "nope", Name: "x"})
	assert.Equal(t, session.ErrorRuntime, out[0].Response.Err.Kind)
	code, _ := runtime.RuntimeErrorCode(runtime.ErrUnknownResourceType)
	assert.Equal(t, code, out[0].Response.Err.Code)

	h.seq[s]++
	out = h.apply(Entry{Kind: KindCommand, Session: s, Sequence: h.seq[s], Resource: 999, Op: opAdd})
	code, _ = runtime.RuntimeErrorCode(runtime.ErrUnknownResource)
	assert.Equal(t, code, out[0].Response.Err.Code)

	h.seq[s]++
	out = h.apply(Entry{Kind: KindCommand, Session: s, Sequence: h.seq[s], Resource: a, Op: 77})
	code, _ = runtime.RuntimeErrorCode(runtime.ErrUnknownOperation)
	assert.Equal(t, code, out[0].Response.Err.Code)

	h.seq[s]++
	out = h.apply(Entry{Kind: KindCommand, Session: s, Sequence: h.seq[s], Resource: a, Op: opPanic})
	assert.Equal(t, session.ErrorApplication, out[0].Response.Err.Kind)
	assert.Contains(t, out[0].Response.Err.Message, "boom")
	// The machine carries on.
	assert.Equal(t, int64(3), value(h.add(s, a, 3)))

	q := h.sm.Query(s, a, opAdd, nil)
	assert.Equal(t, session.ErrorRuntime, q.Err.Kind, "a command is not a query")

	_, err := h.sm.Apply(h.index+1, 0, []byte{9, 9})
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestApply_EventsAndUnencodableEvent(t *testing.T) {
	h := newHarness(t)
	s := h.openSession()
	a := h.open(s, "a")
	h.add(s, a, 5)
	assert.Empty(t, h.sm.TakePublished())
	r := h.add(s, a, 6)
	assert.Equal(t, []uint64{s}, h.sm.TakePublished())
	sess, _ := h.sm.Session(s)
	batches := sess.EventsAfter(0)
	require.Len(t, batches, 1)
	assert.Equal(t, r.Index, batches[0].Index)
	assert.Equal(t, r.Index, r.EventIndex, "the response says which events precede it")
	// An event the type cannot encode fails the command, not the session.
	r = h.add(s, a, 99)
	require.NotNil(t, r.Err)
	assert.Contains(t, r.Err.Message, "encode event")
	assert.Equal(t, runtime.SessionOpen, sess.State)
}

func TestApply_SessionHooksAndExpiry(t *testing.T) {
	h := newHarness(t)
	s1 := h.openSession()
	a := h.open(s1, "a")
	s2 := h.openSession()
	c := h.sm.resources[a].res.(*counter)
	assert.Equal(t, []uint64{s2}, c.opens)
	h.add(s2, a, 1)
	out := h.apply(Entry{Kind: KindCloseSession, Session: s2, Expired: true})
	assert.Nil(t, out[0].Response.Err)
	assert.Equal(t, []uint64{s2}, c.closes)
	// Commands of an expired session fail.
	r := h.add(s2, a, 1)
	require.NotNil(t, r.Err)
	code, _ := runtime.RuntimeErrorCode(runtime.ErrSessionExpired)
	assert.Equal(t, code, r.Err.Code)
	out = h.apply(Entry{Kind: KindKeepAlive, KeepAlives: []KeepAlive{{Session: s1}, {Session: s2}}})
	require.Len(t, out, 2)
	assert.Nil(t, out[0].Response.Err)
	assert.NotNil(t, out[1].Response.Err)
}

func TestApply_TimersFireOnLogTime(t *testing.T) {
	h := newHarness(t)
	s := h.openSession()
	a := h.open(s, "a")
	h.seq[s]++
	h.apply(Entry{Kind: KindCommand, Session: s, Sequence: h.seq[s], Resource: a, Op: opExpire, Args: binary.AppendVarint(nil, int64(50*time.Millisecond))})
	c := h.sm.resources[a].res.(*counter)
	for range 40 {
		h.sm.Advance(h.index+1, h.now.Add(time.Millisecond).UnixNano())
		h.index++
		h.now = h.now.Add(time.Millisecond)
	}
	assert.Equal(t, 0, c.expired, "not yet: 40ms of log time passed")
	// A leader's clock going backwards does not move time back.
	h.sm.Advance(h.index+1, h.now.Add(-time.Hour).UnixNano())
	h.index++
	assert.Equal(t, 0, c.expired)
	h.now = h.now.Add(20 * time.Millisecond)
	r := h.add(s, a, 1)
	assert.Equal(t, 1, c.expired)
	assert.Equal(t, int64(101), value(r), "the timer fired before the entry that passed it")
}

// A command carries the client's acknowledgement: the response cache keeps
// only what the client may still ask for again.
func TestApply_CommandAckTrimsResponses(t *testing.T) {
	h := newHarness(t)
	s := h.openSession()
	a := h.open(s, "a")
	h.add(s, a, 1)
	h.add(s, a, 1)
	sess, _ := h.sm.Session(s)
	r, _ := sess.Sizes()
	require.Equal(t, 2, r)
	h.seq[s]++
	h.apply(Entry{Kind: KindCommand, Session: s, Sequence: h.seq[s], Resource: a, Op: opAdd, Args: binary.AppendVarint(nil, 1), CommandAck: 2})
	r, _ = sess.Sizes()
	assert.Equal(t, 1, r, "1 and 2 acknowledged, 3 cached")
	_, ok := sess.Cached(3)
	assert.True(t, ok)
}

func TestLive_ReleaseRules(t *testing.T) {
	h := newHarness(t)
	s := h.openSession()
	a := h.open(s, "a")
	r1 := h.add(s, a, 1)
	assert.Equal(t, []uint64{r1.Index}, h.live(), "a command is live until released")
	h.seq[s]++
	h.apply(Entry{Kind: KindCommand, Session: s, Sequence: h.seq[s], Resource: a, Op: opRelease})
	assert.Empty(t, h.live(), "released by a later command, and the releasing one by itself")
	r2 := h.add(s, a, 1)
	assert.Equal(t, []uint64{r2.Index}, h.live())
	h.apply(Entry{Kind: KindDeleteResource, Session: s, Resource: a})
	assert.Empty(t, h.live(), "a deleted resource's commands are released")
	assert.Equal(t, 0, h.sm.Live())
}

func TestEntry_RoundTrip(t *testing.T) {
	for _, e := range []Entry{
		{Kind: KindOpenSession, ClientID: "c1", Timeout: 5 * time.Second},
		{Kind: KindKeepAlive, KeepAlives: []KeepAlive{{1, 2, 3}, {4, 5, 6}}},
		{Kind: KindKeepAlive, KeepAlives: []KeepAlive{}},
		{Kind: KindCloseSession, Session: 9, Expired: true},
		{Kind: KindOpenResource, Session: 3, Type: "t", Name: "n"},
		{Kind: KindDeleteResource, Session: 3, Resource: 4},
		{Kind: KindCommand, Session: 3, Sequence: 7, Resource: 4, Op: 2, Args: []byte("x")},
		{Kind: KindCommand, Session: 3, Sequence: 8, Resource: 4, Op: 2, Args: []byte("y"), CommandAck: 7},
	} {
		data, err := e.Encode()
		require.NoError(t, err)
		got, err := DecodeEntry(data)
		require.NoError(t, err)
		assert.Equal(t, e, got)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	for _, e := range []Entry{
		{Kind: KindOpenSession, ClientID: "c1", Timeout: 5 * time.Second},
		{Kind: KindKeepAlive, KeepAlives: []KeepAlive{{1, 2, 3}}},
		{Kind: KindCommand, Session: 3, Sequence: 7, Resource: 4, Op: 2, Args: []byte("x")},
	} {
		data, _ := e.Encode()
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEntry(data)
		if err != nil {
			return
		}
		again, err := e.Encode()
		require.NoError(t, err)
		e2, err := DecodeEntry(again)
		require.NoError(t, err)
		require.Equal(t, e, e2)
	})
}

// live returns the commands the resources hold, in index order.
func (h *harness) live() []uint64 {
	var out []uint64
	for _, inst := range h.sm.resources {
		for i := range inst.commands {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}
