package queue_test

import (
	"github.com/copycat-go/copycat/runtime/copycattest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/resources/queue"
	"github.com/copycat-go/copycat/runtime"
)

type driver struct {
	t   *testing.T
	res runtime.Resource
	log []logged
}

type logged struct {
	c    *copycattest.FakeCommit
	op   runtime.OpCode
	args []byte
}

func (d *driver) cmd(s *copycattest.FakeSession, op runtime.OpCode, args any) []byte {
	d.t.Helper()
	data := mustMarshal(d.t, args)
	c := &copycattest.FakeCommit{At: uint64(len(d.log) + 1), Clock: time.Unix(1000, 0), Caller: s}
	d.log = append(d.log, logged{c: c, op: op, args: data})
	out, err := d.res.Execute(c, op, data)
	require.NoError(d.t, err)
	return out
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

func state(t *testing.T, r runtime.Resource) (size, waiting int) {
	for _, q := range []struct {
		op  runtime.OpCode
		out *int
	}{{queue.QueueSizeOp, &size}, {queue.QueueWaitingOp, &waiting}} {
		b, err := r.Execute(&copycattest.FakeCommit{}, q.op, nil)
		require.NoError(t, err)
		var v struct{ Value int }
		require.NoError(t, msgpack.Unmarshal(b, &v))
		*q.out = v.Value
	}
	return
}

// TestRelease checks what the queue keeps live and that replaying the live
// commits rebuilds it.
func TestRelease(t *testing.T) {
	d := &driver{t: t, res: queue.QueueType.New()}
	s1, s2 := &copycattest.FakeSession{SessionID: 1}, &copycattest.FakeSession{SessionID: 2}
	offer := func(v string) *queue.QueueOffer { return &queue.QueueOffer{Value: []byte(v)} }

	d.cmd(s1, queue.QueueOfferOp, offer("a"))
	d.cmd(s1, queue.QueueOfferOp, offer("b"))
	assert.Equal(t, []uint64{1, 2}, d.live(), "offers hold the elements")
	d.cmd(s1, queue.QueuePollOp, &queue.QueuePoll{})
	assert.Equal(t, []uint64{2}, d.live(), "a polled element and the Poll are released")
	d.cmd(s2, queue.QueueAwaitOp, &queue.QueueAwait{})
	assert.Empty(t, d.live(), "an Await served at once holds nothing")
	d.cmd(s2, queue.QueueAwaitOp, &queue.QueueAwait{}) // 5 waits
	d.cmd(s1, queue.QueueAwaitOp, &queue.QueueAwait{}) // 6 waits
	assert.Equal(t, []uint64{5, 6}, d.live(), "waiting takers are live")
	d.cmd(s1, queue.QueueOfferOp, offer("c")) // handed to 5
	assert.Equal(t, []uint64{6}, d.live(), "a handed element and its taker are released")
	assert.Equal(t, []any{queue.Delivered{Token: 5, Value: []byte("c")}}, s2.Events)
	d.cmd(s2, queue.QueueWithdrawOp, &queue.QueueWithdraw{Token: 6})
	assert.Equal(t, []uint64{6}, d.live(), "another session cannot withdraw a taker")
	d.cmd(s1, queue.QueueWithdrawOp, &queue.QueueWithdraw{Token: 6})
	assert.Empty(t, d.live(), "a withdrawn taker is released")

	d.cmd(s1, queue.QueueAwaitOp, &queue.QueueAwait{}) // 10
	d.cmd(s2, queue.QueueAwaitOp, &queue.QueueAwait{}) // 11
	d.res.(runtime.SessionListener).SessionClosed(s1, true)
	assert.Equal(t, []uint64{11}, d.live(), "a dead session's taker is released")
	d.cmd(s1, queue.QueueOfferOp, offer("d")) // handed to 11
	d.cmd(s1, queue.QueueOfferOp, offer("e"))
	d.cmd(s1, queue.QueueOfferOp, offer("f"))
	d.cmd(s1, queue.QueueAwaitOp, &queue.QueueAwait{}) // takes e
	d.cmd(s2, queue.QueueAwaitOp, &queue.QueueAwait{}) // takes f
	d.cmd(s2, queue.QueueAwaitOp, &queue.QueueAwait{}) // waits: 17
	d.cmd(s1, queue.QueueOfferOp, offer("g"))          // handed to 17
	d.cmd(s1, queue.QueueOfferOp, offer("h"))          // queued: 19
	d.cmd(s1, queue.QueueOfferOp, offer("i"))          // queued: 20
	assert.Equal(t, []uint64{19, 20}, d.live())

	r := queue.QueueType.New()
	for _, l := range d.log {
		if l.c.Released == 0 {
			_, err := r.Execute(&copycattest.FakeCommit{At: l.c.At, Caller: l.c.Caller}, l.op, l.args)
			require.NoError(t, err)
		}
	}
	ds, dw := state(t, d.res)
	rs, rw := state(t, r)
	assert.Equal(t, [2]int{2, 0}, [2]int{ds, dw})
	assert.Equal(t, [2]int{ds, dw}, [2]int{rs, rw}, "the live commits rebuild the queue")
	b, err := r.Execute(&copycattest.FakeCommit{}, queue.QueuePeekOp, nil)
	require.NoError(t, err)
	var head queue.QueuePeekResult
	require.NoError(t, msgpack.Unmarshal(b, &head))
	assert.Equal(t, queue.Element{Value: []byte("h"), Ok: true}, head.Value)

	d.res.(runtime.Deleter).Delete()
	assert.Empty(t, d.live(), "Delete releases everything")
}
