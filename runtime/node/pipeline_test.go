package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rlog "github.com/copycat-go/copycat/runtime/log"
	"github.com/copycat-go/copycat/runtime/raft"
)

// The write pipeline (writer.go) seen from outside: one real node (member
// 1) whose peers 2 and 3 are played by the test, on a storage whose Save the
// test can hold and fail. Every Save and every message sent is recorded in
// one ordered history, so that "sent only after durable" is checked on the
// order of events, not on timing.

type event struct {
	save bool   // a Save returned successfully, making entries up to last durable
	last uint64 // last index durable after that Save (saves) or acknowledged (messages)
	msg  raft.Message
}

type history struct {
	mu     sync.Mutex
	events []event
}

func (h *history) add(e event) {
	h.mu.Lock()
	h.events = append(h.events, e)
	h.mu.Unlock()
}

func (h *history) snapshot() []event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]event(nil), h.events...)
}

// gatedStore is a storage whose Save can be held (entered is signalled, then
// it waits for release) or made to fail.
type gatedStore struct {
	rlog.Store
	h *history

	mu      sync.Mutex
	hold    chan struct{} // non-nil: Saves with entries wait for it to close
	entered chan struct{} // receives when a Save starts waiting
	fail    error
}

func (s *gatedStore) Save(hs raft.HardState, es []raft.Entry) error {
	s.mu.Lock()
	hold, fail := s.hold, s.fail
	s.mu.Unlock()
	if hold != nil && len(es) > 0 {
		s.entered <- struct{}{}
		<-hold
	}
	if fail != nil && len(es) > 0 {
		return fail
	}
	if err := s.Store.Save(hs, es); err != nil {
		return err
	}
	if len(es) > 0 {
		s.h.add(event{save: true, last: es[len(es)-1].Index})
	}
	return nil
}

// holdSaves makes the following Saves with entries wait until the returned
// function is called.
func (s *gatedStore) holdSaves(t *testing.T) (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold = ch
	s.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			s.mu.Lock()
			s.hold = nil
			s.mu.Unlock()
			close(ch)
		})
	}
	// A failing test must not leave the writer held: Stop waits for it.
	t.Cleanup(release)
	return release
}

// fakePeers plays members 2 and 3 for node 1: it grants votes, answers
// heartbeats and, while acking is on, acknowledges appends.
type fakePeers struct {
	h *history
	n atomic.Pointer[Node]

	mu     sync.Mutex
	acking bool
}

func (p *fakePeers) setAcking(on bool) {
	p.mu.Lock()
	p.acking = on
	p.mu.Unlock()
}

func (p *fakePeers) Send(msgs []raft.Message) {
	p.mu.Lock()
	acking := p.acking
	p.mu.Unlock()
	var replies []raft.Message
	for _, m := range msgs {
		p.h.add(event{msg: m, last: m.Index})
		r := raft.Message{From: m.To, To: m.From, Term: m.Term}
		switch m.Type {
		case raft.MsgPreVote:
			r.Type = raft.MsgPreVoteResp
		case raft.MsgVote:
			r.Type = raft.MsgVoteResp
		case raft.MsgHeartbeat:
			r.Type, r.Context = raft.MsgHeartbeatResp, m.Context
		case raft.MsgApp:
			if !acking {
				continue
			}
			r.Type, r.Index = raft.MsgAppResp, m.Index+uint64(len(m.Entries))
		default:
			continue
		}
		replies = append(replies, r)
	}
	if n := p.n.Load(); n != nil && len(replies) > 0 {
		n.Step(replies)
	}
}

func (p *fakePeers) SetPeer(uint64, string) {}
func (p *fakePeers) RemovePeer(uint64)      {}

type pipelineNode struct {
	n     *Node
	st    *gatedStore
	peers *fakePeers
	h     *history
}

func startPipelineNode(t *testing.T) *pipelineNode {
	t.Helper()
	h := &history{}
	members := []raft.Member{{ID: 1, Addr: "m1"}, {ID: 2, Addr: "m2"}, {ID: 3, Addr: "m3"}}
	mem := rlog.NewMemory()
	require.NoError(t, mem.Save(raft.HardState{Term: 1}, []raft.Entry{raft.BootstrapEntry(members)}))
	st := &gatedStore{Store: mem, h: h, entered: make(chan struct{}, 16)}
	pn := &pipelineNode{st: st, h: h}
	pn.peers = &fakePeers{h: h, acking: true}
	cfg := raft.DefaultConfig(1, nil)
	// Long enough that a Save the test holds is not taken for a stalled
	// disk (the leader would step down); the election is started below.
	cfg.ElectionTick = 1000
	var mu sync.Mutex
	n, err := Start(Config{
		Raft: cfg, TickInterval: 2 * time.Millisecond, Storage: st, Transport: pn.peers,
		Apply: func(es []raft.Entry) []any {
			mu.Lock()
			defer mu.Unlock()
			return make([]any, len(es))
		},
	})
	require.NoError(t, err)
	pn.n = n
	pn.peers.n.Store(n)
	t.Cleanup(n.Stop)
	// Member 2 hands over at once (§3.10), and the peers grant the votes.
	n.Step([]raft.Message{{Type: raft.MsgTimeoutNow, From: 2, To: 1, Term: 1}})
	waitFor(t, "member 1 to win the election its peers grant", func() bool {
		st := n.Status()
		return st.SoftState.State == raft.StateLeader && st.Applied == st.LastIndex
	})
	return pn
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "timed out waiting for %s", what)
		time.Sleep(time.Millisecond)
	}
}

// While the leader's own write is held, its loop keeps stepping: appends go
// out and the followers' acknowledgements commit the entry (a quorum of two
// without the leader). But the entry is applied — and the proposal answered
// — only once the leader's own write is durable.
func TestPipeline_LeaderCommitsDuringItsWriteAndAppliesAfter(t *testing.T) {
	pn := startPipelineNode(t)
	release := pn.st.holdSaves(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	before := pn.n.Status().LastIndex
	out, err := pn.n.ProposeAsync(ctx, []byte("x"))
	require.NoError(t, err)
	<-pn.st.entered // the writer is inside a Save now (the proposal's or one it waits behind)
	var idx uint64
	waitFor(t, "the followers' acknowledgements to commit the entry", func() bool {
		st := pn.n.Status()
		idx = st.LastIndex
		return st.LastIndex > before && st.HardState.Commit == st.LastIndex
	})
	select {
	case o := <-out:
		t.Fatalf("the proposal was answered (%+v) before the leader's write was durable", o)
	default:
	}
	assert.Less(t, pn.n.Status().Applied, idx, "applied before durable here")

	release()
	select {
	case o := <-out:
		require.NoError(t, o.Err)
		assert.Equal(t, idx, o.Result.Index)
	case <-ctx.Done():
		t.Fatal("the proposal was not answered once the write was durable")
	}
	// Order: the leader's durable write of idx precedes nothing it vouches
	// for — it sends no acknowledgement of its own — so check the other
	// direction: its appends left before the Save returned.
	var sentApp, saved int
	for i, e := range pn.h.snapshot() {
		if !e.save && e.msg.Type == raft.MsgApp && e.msg.Index+uint64(len(e.msg.Entries)) >= idx && sentApp == 0 {
			sentApp = i + 1
		}
		if e.save && e.last >= idx && saved == 0 {
			saved = i + 1
		}
	}
	require.NotZero(t, sentApp)
	require.NotZero(t, saved)
	assert.Less(t, sentApp, saved, "the appends went out while the leader's own write was in flight")
}

// Without followers' acknowledgements a held write keeps the entry
// uncommitted: the leader does not count its own copy before it is durable.
func TestPipeline_LeaderDoesNotCountItsWriteInFlight(t *testing.T) {
	pn := startPipelineNode(t)
	pn.peers.setAcking(false)
	release := pn.st.holdSaves(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	before := pn.n.Status().LastIndex
	out, err := pn.n.ProposeAsync(ctx, []byte("x"))
	require.NoError(t, err)
	<-pn.st.entered
	// Let one follower acknowledge: with the leader's copy in flight that
	// is one durable copy of three.
	waitFor(t, "the proposal to be appended", func() bool { return pn.n.Status().LastIndex > before })
	st := pn.n.Status()
	pn.n.Step([]raft.Message{{Type: raft.MsgAppResp, From: 2, To: 1, Term: st.HardState.Term, Index: st.LastIndex}})
	var got raft.Status
	waitFor(t, "the loop to take the acknowledgement", func() bool {
		got, err = pn.n.FullStatus(ctx)
		require.NoError(t, err)
		return got.Progress[2].Match >= st.LastIndex
	})
	assert.Less(t, got.HardState.Commit, st.LastIndex, "committed with one follower while the leader's write was in flight")
	release()
	pn.peers.setAcking(true)
	select {
	case o := <-out:
		require.NoError(t, o.Err)
	case <-ctx.Done():
		t.Fatal("the proposal did not commit once the leader's write was durable")
	}
}

// A follower acknowledges an append only after the Save that makes it
// durable has returned.
func TestPipeline_FollowerAcksOnlyDurableEntries(t *testing.T) {
	h := &history{}
	members := []raft.Member{{ID: 1, Addr: "m1"}, {ID: 2, Addr: "m2"}, {ID: 3, Addr: "m3"}}
	mem := rlog.NewMemory()
	require.NoError(t, mem.Save(raft.HardState{Term: 1}, []raft.Entry{raft.BootstrapEntry(members)}))
	st := &gatedStore{Store: mem, h: h, entered: make(chan struct{}, 16)}
	rec := &recordingTransport{h: h}
	cfg := raft.DefaultConfig(1, nil)
	cfg.ElectionTick = 1000 // it must stay a follower
	n, err := Start(Config{Raft: cfg, TickInterval: 10 * time.Millisecond, Storage: st, Transport: rec,
		Apply: func(es []raft.Entry) []any { return nil }})
	require.NoError(t, err)
	t.Cleanup(n.Stop)

	release := st.holdSaves(t)
	app := func(idx uint64, data string) raft.Message {
		return raft.Message{Type: raft.MsgApp, From: 2, To: 1, Term: 2, Index: idx - 1, LogTerm: termOf(idx - 1),
			Entries: []raft.Entry{{Index: idx, Term: 2, Data: []byte(data)}}, Commit: 1}
	}
	n.Step([]raft.Message{app(2, "a")})
	<-st.entered
	// More appends arrive while the first write is held: the loop takes
	// them (they queue for the writer); nothing is acknowledged yet.
	n.Step([]raft.Message{app(3, "b")})
	n.Step([]raft.Message{app(4, "c")})
	waitFor(t, "the loop to take the appends that arrived during the Save", func() bool { return n.Status().LastIndex == 4 })
	assert.Empty(t, rec.acks(), "acknowledged while the write was held")
	release()
	waitFor(t, "the acknowledgement of 4", func() bool {
		for _, a := range rec.acks() {
			if a.Index == 4 {
				return true
			}
		}
		return false
	})
	var durable uint64
	for _, e := range h.snapshot() {
		switch {
		case e.save:
			durable = max(durable, e.last)
		case e.msg.Type == raft.MsgAppResp && !e.msg.Reject:
			assert.LessOrEqual(t, e.msg.Index, durable, "acknowledged %d with %d durable", e.msg.Index, durable)
		}
	}
}

func termOf(idx uint64) uint64 {
	if idx <= 1 {
		return 1
	}
	return 2
}

// A failed Save stops the node with the error and sends nothing that write
// would have vouched for.
func TestPipeline_FailedSaveSendsNothingAndStops(t *testing.T) {
	h := &history{}
	members := []raft.Member{{ID: 1, Addr: "m1"}, {ID: 2, Addr: "m2"}, {ID: 3, Addr: "m3"}}
	mem := rlog.NewMemory()
	require.NoError(t, mem.Save(raft.HardState{Term: 1}, []raft.Entry{raft.BootstrapEntry(members)}))
	diskFull := errors.New("disk full")
	st := &gatedStore{Store: mem, h: h, entered: make(chan struct{}, 16), fail: diskFull}
	rec := &recordingTransport{h: h}
	cfg := raft.DefaultConfig(1, nil)
	cfg.ElectionTick = 1000
	n, err := Start(Config{Raft: cfg, TickInterval: 10 * time.Millisecond, Storage: st, Transport: rec,
		Apply: func(es []raft.Entry) []any { return nil }})
	require.NoError(t, err)
	t.Cleanup(n.Stop)
	n.Step([]raft.Message{{Type: raft.MsgApp, From: 2, To: 1, Term: 2, Index: 1, LogTerm: 1,
		Entries: []raft.Entry{{Index: 2, Term: 2, Data: []byte("a")}}, Commit: 1}})
	select {
	case <-n.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the node did not stop on a failed Save")
	}
	require.ErrorIs(t, n.Err(), diskFull)
	assert.Empty(t, rec.acks(), "acknowledged an entry whose Save failed")
}

// recordingTransport records what a node sends, for a node whose peers never
// answer.
type recordingTransport struct{ h *history }

func (r *recordingTransport) Send(msgs []raft.Message) {
	for _, m := range msgs {
		r.h.add(event{msg: m, last: m.Index})
	}
}
func (r *recordingTransport) SetPeer(uint64, string) {}
func (r *recordingTransport) RemovePeer(uint64)      {}

func (r *recordingTransport) acks() []raft.Message {
	var out []raft.Message
	for _, e := range r.h.snapshot() {
		if !e.save && e.msg.Type == raft.MsgAppResp && !e.msg.Reject {
			out = append(out, e.msg)
		}
	}
	return out
}

// Under load the writer merges what queued up during one Save into the next
// (group commit): fewer Saves than Readys.
func TestPipeline_WritesAreMergedUnderLoad(t *testing.T) {
	pn := startPipelineNode(t)
	release := pn.st.holdSaves(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first, err := pn.n.ProposeAsync(ctx, []byte("first"))
	require.NoError(t, err)
	<-pn.st.entered
	before := pn.n.WriteStats()
	var outs []<-chan Outcome
	for i := range 50 {
		last := pn.n.Status().LastIndex
		out, err := pn.n.ProposeAsync(ctx, []byte(fmt.Sprint(i)))
		require.NoError(t, err)
		outs = append(outs, out)
		// A Ready each: wait until the loop has handed it out.
		waitFor(t, "the proposal to be taken", func() bool { return pn.n.Status().LastIndex > last })
	}
	release()
	for _, out := range append(outs, first) {
		select {
		case o := <-out:
			require.NoError(t, o.Err)
		case <-ctx.Done():
			t.Fatal("proposals were not answered")
		}
	}
	after := pn.n.WriteStats()
	assert.Less(t, after.Saves-before.Saves, after.Readys-before.Readys, "Readys queued during a Save share the next one")
}
