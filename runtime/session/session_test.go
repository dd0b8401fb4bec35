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
	s.Applied(1, Response{Index: 5, Result: []byte("one")})
	assert.Equal(t, Duplicate, s.Classify(1))
	assert.Equal(t, Next, s.Classify(2))
	assert.Equal(t, Early, s.Classify(3))
	r, ok := s.Cached(1)
	require.True(t, ok)
	assert.Equal(t, []byte("one"), r.Result)
	assert.PanicsWithValue(t, "session 1: applied sequence 5 after 1", func() { s.Applied(5, Response{}) })
}

func TestAcknowledgeTrims(t *testing.T) {
	s := New(1, "c", time.Second, time.Unix(0, 0))
	for seq := uint64(1); seq <= 10; seq++ {
		s.Publish(seq*10, Event{Resource: 1, Code: 1})
		s.Applied(seq, Response{Index: seq * 10})
	}
	r, e := s.Sizes()
	assert.Equal(t, []int{10, 10}, []int{r, e})
	s.Acknowledge(7, 50)
	r, e = s.Sizes()
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
	s.Close(true)
	assert.Equal(t, runtime.SessionExpired, s.State)
	r, e := s.Sizes()
	assert.Equal(t, []int{0, 0}, []int{r, e})
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

func TestImageRoundTrip(t *testing.T) {
	s := New(7, "client-a", 3*time.Second, time.Unix(0, 42))
	for seq := uint64(1); seq <= 4; seq++ {
		s.Publish(seq*10, Event{Resource: 2, Code: 3, Data: []byte{byte(seq)}})
		s.Applied(seq, Response{Index: seq * 10, Result: []byte{byte(seq)}})
	}
	s.Applied(5, Response{Index: 50, Err: &WireError{Kind: ErrorRuntime, Code: 2, Message: "gone"}})
	s.Acknowledge(2, 20)
	s.KeepAliveIndex = 33
	got := FromImage(s.Image())
	assert.Equal(t, s, got, "every field survives the image")
	assert.Equal(t, s.Image(), got.Image(), "images of equal sessions are equal")
	r, ok := got.Cached(5)
	require.True(t, ok, "a retry after compaction finds the cached response")
	assert.Equal(t, "gone", r.Err.Message)
	assert.Equal(t, Duplicate, got.Classify(3))
	assert.Len(t, got.EventsAfter(20), 2)
}
