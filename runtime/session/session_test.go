package session

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime"
)

func TestSequencing(t *testing.T) {
	s := New(1, "c", time.Second, time.Unix(0, 0))
	assert.Equal(t, Next, s.Classify(1))
	assert.Equal(t, Early, s.Classify(3))
	s.Hold(3, PendingCommand{Index: 10})
	s.Hold(3, PendingCommand{Index: 11}) // a retry of 3 does not replace it
	_, _, ok := s.Applied(1, Response{Index: 5, Result: []byte("one")})
	assert.False(t, ok)
	assert.Equal(t, Duplicate, s.Classify(1))
	r, ok := s.Cached(1)
	require.True(t, ok)
	assert.Equal(t, []byte("one"), r.Result)
	next, seq, ok := s.Applied(2, Response{Index: 6})
	require.True(t, ok, "3 was held: it becomes runnable now")
	assert.Equal(t, uint64(3), seq)
	assert.Equal(t, uint64(10), next.Index, "the first arrival of 3 is kept")
	assert.PanicsWithValue(t, "session 1: applied sequence 5 after 2", func() { s.Applied(5, Response{}) })
}

func TestHeldCommandReleasedInOrder(t *testing.T) {
	s := New(1, "c", time.Second, time.Unix(0, 0))
	s.Hold(2, PendingCommand{Index: 20})
	next, seq, ok := s.Applied(1, Response{Index: 10})
	require.True(t, ok)
	assert.Equal(t, uint64(2), seq)
	assert.Equal(t, uint64(20), next.Index)
}

func TestAcknowledgeTrims(t *testing.T) {
	s := New(1, "c", time.Second, time.Unix(0, 0))
	for seq := uint64(1); seq <= 10; seq++ {
		s.Publish(seq*10, Event{Resource: 1, Code: 1})
		s.Applied(seq, Response{Index: seq * 10})
	}
	r, n, e := s.Sizes()
	assert.Equal(t, []int{10, 0, 10}, []int{r, n, e})
	s.Acknowledge(7, 50)
	r, _, e = s.Sizes()
	assert.Equal(t, 3, r)
	assert.Equal(t, 5, e)
	_, ok := s.Cached(7)
	assert.False(t, ok)
	batches := s.EventsAfter(50)
	require.Len(t, batches, 5)
	assert.Equal(t, uint64(60), batches[0].Index)
	assert.Equal(t, uint64(50), batches[0].PrevIndex)
	// A response applied after its acknowledgement is not cached at all.
	s.Acknowledge(12, 0)
	s.Applied(11, Response{})
	_, ok = s.Cached(11)
	assert.False(t, ok)
}

func TestEventsGroupByIndex(t *testing.T) {
	s := New(1, "c", time.Second, time.Unix(0, 0))
	s.Publish(5, Event{Code: 1})
	s.Publish(5, Event{Code: 2})
	s.Publish(9, Event{Code: 3})
	b := s.EventsAfter(0)
	require.Len(t, b, 2)
	assert.Len(t, b[0].Events, 2)
	assert.Equal(t, uint64(0), b[0].PrevIndex)
	assert.Equal(t, uint64(5), b[1].PrevIndex)
	assert.Equal(t, uint64(9), s.EventIndex)
}

func TestCloseDropsState(t *testing.T) {
	s := New(1, "c", time.Second, time.Unix(0, 0))
	s.Publish(5, Event{})
	s.Applied(1, Response{})
	s.Hold(3, PendingCommand{})
	s.Close(true)
	assert.Equal(t, runtime.SessionExpired, s.State)
	r, p, e := s.Sizes()
	assert.Equal(t, []int{0, 0, 0}, []int{r, p, e})
	s.Publish(6, Event{})
	assert.Empty(t, s.EventsAfter(0), "a closed session receives nothing")
}

func TestTableOrder(t *testing.T) {
	tb := NewTable()
	for _, id := range []uint64{9, 3, 7} {
		tb.Add(New(id, "", time.Second, time.Time{}))
	}
	assert.Equal(t, []uint64{3, 7, 9}, tb.IDs())
	tb.Remove(7)
	_, ok := tb.Get(7)
	assert.False(t, ok)
	assert.Equal(t, 2, tb.Len())
}
