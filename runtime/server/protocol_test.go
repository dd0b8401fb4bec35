package server_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/copycattest"
	"github.com/copycat-go/copycat/runtime/internal/counter"
	"github.com/copycat-go/copycat/runtime/protocol"
	"github.com/copycat-go/copycat/runtime/transport"
)

// rawConn speaks the client protocol by hand.
type rawConn struct {
	t  *testing.T
	c  *copycattest.Cluster
	tc *transport.Conn
	id uint64
	// follow makes call retry at the current leader when the member it is
	// connected to answers NotLeader (as a real client does).
	follow bool
}

func dialRaw(t *testing.T, c *copycattest.Cluster, member uint64) *rawConn {
	r := &rawConn{t: t, c: c}
	r.dial(member)
	return r
}

func (r *rawConn) dial(member uint64) {
	nc, err := r.c.Dial(r.c.Member(member).Addr)
	require.NoError(r.t, err)
	r.t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	tc := transport.NewConn(nc, transport.DefaultMaxFrameSize)
	require.NoError(r.t, transport.Handshake(tc, transport.Hello{ClusterID: copycattest.ClusterID, Kind: transport.KindClient}))
	r.tc = tc
}

// dialLeader connects to the current leader and follows leadership.
func dialLeader(t *testing.T, c *copycattest.Cluster) *rawConn {
	r := dialRaw(t, c, c.WaitLeader(10*time.Second))
	r.follow = true
	return r
}

func (r *rawConn) call(m *protocol.Message) *protocol.Message {
	for attempt := 0; ; attempt++ {
		resp := r.callOnce(m)
		if !r.follow || resp.Status != protocol.NotLeader || attempt > 50 {
			return resp
		}
		r.c.Eventually(10*time.Second, "a leader", func() bool { return r.c.Leader() != 0 })
		r.dial(r.c.Leader())
	}
}

func (r *rawConn) callOnce(m *protocol.Message) *protocol.Message {
	r.id++
	m.ID = r.id
	b, err := protocol.Encode(m)
	require.NoError(r.t, err)
	require.NoError(r.t, r.tc.WriteFrame(b))
	require.NoError(r.t, r.tc.Flush())
	for {
		body, err := r.tc.ReadFrame()
		require.NoError(r.t, err)
		resp, err := protocol.Decode(body)
		require.NoError(r.t, err)
		if resp.Type == protocol.Response && resp.ID == m.ID {
			return resp
		}
	}
}

func add(d int64) []byte { return binary.AppendVarint(nil, d) }

func value(b []byte) int64 { v, _ := binary.Varint(b); return v }

// A command retried after its response was lost is answered from the
// session's cache and applied once — also when the retry reaches a new
// leader after the old one crashed.
func TestProtocol_RetriedCommandAppliesOnce(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	r := dialLeader(t, c)
	open := r.call(&protocol.Message{Type: protocol.OpenSession, TimeoutNs: int64(5 * time.Second)})
	require.Equal(t, protocol.OK, open.Status)
	sid := open.Session
	res := r.call(&protocol.Message{Type: protocol.OpenResource, Session: sid, ResType: counter.Type.Name, Name: "once"})
	require.Equal(t, protocol.OK, res.Status)
	cmd := &protocol.Message{Type: protocol.Command, Session: sid, Sequence: 1, Resource: res.Resource, Op: counter.OpAdd, Args: add(5)}
	first := r.call(cmd)
	require.Equal(t, protocol.OK, first.Status)
	again := r.call(&protocol.Message{Type: protocol.Command, Session: sid, Sequence: 1, Resource: res.Resource, Op: counter.OpAdd, Args: add(5)})
	assert.Equal(t, first.Result, again.Result, "the retry gets the original response")
	assert.Equal(t, first.Index, again.Index)

	c.Crash(c.Leader())
	r2 := dialLeader(t, c)
	var retry *protocol.Message
	c.Eventually(10*time.Second, "the new leader to answer", func() bool {
		retry = r2.call(&protocol.Message{Type: protocol.Command, Session: sid, Sequence: 1, Resource: res.Resource, Op: counter.OpAdd, Args: add(5)})
		return retry.Status == protocol.OK
	})
	assert.Equal(t, first.Result, retry.Result, "the new leader answers from the replicated cache")
	q := r2.call(&protocol.Message{Type: protocol.Query, Session: sid, Sequence: 1, Resource: res.Resource, Op: counter.OpGet, Consistency: runtime.Linearizable})
	require.Equal(t, protocol.OK, q.Status)
	assert.Equal(t, int64(5), value(q.Result), "applied exactly once")
}

// A command that reaches the log ahead of an earlier one of its session is
// refused, not held: each command runs at its own index in sequence order
// (fencing tokens rely on it, and so does replaying live entries after log
// cleaning). The client resends it after its predecessor.
func TestProtocol_OutOfOrderCommandIsRefusedThenRunsInOrder(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	r := dialLeader(t, c)
	open := r.call(&protocol.Message{Type: protocol.OpenSession, TimeoutNs: int64(5 * time.Second)})
	require.Equal(t, protocol.OK, open.Status)
	sid := open.Session
	res := r.call(&protocol.Message{Type: protocol.OpenResource, Session: sid, ResType: counter.Type.Name, Name: "order"})
	require.Equal(t, protocol.OK, res.Status)
	cmd := func(seq uint64, d int64) *protocol.Message {
		return &protocol.Message{Type: protocol.Command, Session: sid, Sequence: seq, Resource: res.Resource, Op: counter.OpAdd, Args: add(d)}
	}
	early := r.call(cmd(2, 10))
	require.Equal(t, protocol.Failed, early.Status)
	require.ErrorIs(t, protocol.ErrorOf(early.Err, nil), runtime.ErrCommandOutOfOrder)
	first := r.call(cmd(1, 1))
	require.Equal(t, protocol.OK, first.Status)
	assert.Equal(t, int64(1), value(first.Result), "2 was not applied")
	second := r.call(cmd(2, 10))
	require.Equal(t, protocol.OK, second.Status)
	assert.Equal(t, int64(11), value(second.Result))
	assert.Greater(t, second.Index, first.Index, "2 runs at its own index, after 1")
}

// A malformed frame closes that connection only; the member serves others.
func TestProtocol_MalformedFrameClosesOnlyThatConnection(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	lead := c.Leader()
	good := dialRaw(t, c, lead)
	bad := dialRaw(t, c, lead)
	require.NoError(t, bad.tc.WriteFrame([]byte{0xc1, 0xff, 0x00}))
	require.NoError(t, bad.tc.Flush())
	_, err := bad.tc.ReadFrame()
	require.Error(t, err, "the member closed the bad connection")
	open := good.call(&protocol.Message{Type: protocol.OpenSession, TimeoutNs: int64(5 * time.Second)})
	assert.Equal(t, protocol.OK, open.Status)
	// A request of an unknown kind gets a clear error, and the connection lives.
	resp := good.call(&protocol.Message{Type: protocol.Events})
	assert.Equal(t, protocol.Failed, resp.Status)
	assert.ErrorIs(t, protocol.ErrorOf(resp.Err, nil), runtime.ErrBadRequest)
	open = good.call(&protocol.Message{Type: protocol.OpenSession, TimeoutNs: int64(5 * time.Second)})
	assert.Equal(t, protocol.OK, open.Status)
}

// Commands of an unknown or expired session fail with ErrSessionExpired.
func TestProtocol_UnknownSession(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	r := dialLeader(t, c)
	resp := r.call(&protocol.Message{Type: protocol.Command, Session: 1, Sequence: 1, Resource: 1, Op: counter.OpAdd})
	assert.Equal(t, protocol.Failed, resp.Status)
	assert.ErrorIs(t, protocol.ErrorOf(resp.Err, nil), runtime.ErrSessionExpired)
}

// The events a command publishes to its own session are pushed before the
// command's answer, so the client never holds an answer waiting for the
// events it follows.
func TestProtocol_EventsPushedBeforeTheAnswer(t *testing.T) {
	c := copycattest.NewCluster(t, 3, counter.Type)
	r := dialLeader(t, c)
	open := r.call(&protocol.Message{Type: protocol.OpenSession, TimeoutNs: int64(5 * time.Second)})
	require.Equal(t, protocol.OK, open.Status)
	sid := open.Session
	att := r.call(&protocol.Message{Type: protocol.Attach, Session: sid})
	require.Equal(t, protocol.OK, att.Status)
	res := r.call(&protocol.Message{Type: protocol.OpenResource, Session: sid, ResType: counter.Type.Name, Name: "first"})
	require.Equal(t, protocol.OK, res.Status)
	for seq := uint64(1); seq <= 20; seq++ {
		// The counter publishes Changed to every session, this one included.
		r.id++
		cmd := &protocol.Message{ID: r.id, Type: protocol.Command, Session: sid, Sequence: seq, Resource: res.Resource, Op: counter.OpAdd, Args: add(1)}
		b, err := protocol.Encode(cmd)
		require.NoError(t, err)
		require.NoError(t, r.tc.WriteFrame(b))
		require.NoError(t, r.tc.Flush())
		var events uint64 // index of the last event batch seen
		for {
			body, err := r.tc.ReadFrame()
			require.NoError(t, err)
			m, err := protocol.Decode(body)
			require.NoError(t, err)
			if m.Type == protocol.Events {
				events = m.Index
				continue
			}
			if m.Type == protocol.Response && m.ID == cmd.ID {
				require.Equal(t, protocol.OK, m.Status)
				require.NotZero(t, m.EventIndex, "the command published to its session")
				assert.Equal(t, m.EventIndex, events, "command %d: its events came before its answer", seq)
				break
			}
		}
	}
}
