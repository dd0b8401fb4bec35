package raft

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	randomSteps = flag.Int("raft.steps", envInt("COPYCAT_RAFT_STEPS", 4000), "steps per randomized safety run")
	randomSeeds = flag.Int("raft.seeds", envInt("COPYCAT_RAFT_SEEDS", 12), "seeds per cluster size in the randomized safety test")
	randomSeed  = flag.Uint64("raft.seed", 0, "replay only this seed")
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestRandomizedSafety runs 3- and 5-member clusters for thousands of steps
// of random ticks, deliveries, drops, duplicates, reorderings, proposals,
// membership changes, transfers and crashes (losing unpersisted state, also
// in the middle of a Ready) and checks Raft's safety properties (§5.2, §5.4,
// Figure 3) after every step. Then it heals everything and checks that the
// cluster makes progress and converges. A failure prints the seed; replay it
// with -raft.seed=N.
func TestRandomizedSafety(t *testing.T) {
	for _, size := range []int{3, 5} {
		seeds := make([]uint64, 0, *randomSeeds)
		if *randomSeed != 0 {
			seeds = append(seeds, *randomSeed)
		} else {
			for i := range *randomSeeds {
				seeds = append(seeds, uint64(1000*size+i+1))
			}
		}
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("n=%d/seed=%d", size, seed), func(t *testing.T) {
				t.Parallel()
				s := newSim(t, size, seed)
				defer func() {
					if t.Failed() {
						t.Logf("replay with: go test ./runtime/raft -run 'TestRandomizedSafety/n=%d/seed=%d$' -raft.seed=%d", size, seed, seed)
						for _, l := range s.trace[max(0, len(s.trace)-40):] {
							t.Log(l)
						}
						for _, id := range s.ids {
							r := s.node(id)
							t.Logf("member %d: %s term=%d vote=%d lead=%d commit=%d last=%d/%d config=%+v down=%v",
								id, r.state, r.term, r.vote, r.lead, r.log.committed, r.log.lastIndex(), r.log.lastTerm(), r.config(), s.nodes[id].down)
						}
					}
				}()
				s.run(*randomSteps)
				s.converge()
			})
		}
	}
}

type sim struct {
	*testCluster
	rng       *rand.Rand
	proposals int
	// committed: index -> entry, as first applied anywhere, with the highest
	// term the applier had seen; every later leader must hold it.
	committed map[uint64]committedEntry
	leaders   map[uint64]uint64 // term -> leader
	readsMin  map[uint64]uint64 // read context -> commit index known when it began
	trace     []string
}

type committedEntry struct {
	e        Entry
	seenTerm uint64
}

func newSim(t *testing.T, n int, seed uint64) *sim {
	rng := rand.New(rand.NewPCG(seed, seed*7+1))
	s := &sim{rng: rng, committed: map[uint64]committedEntry{}, leaders: map[uint64]uint64{}, readsMin: map[uint64]uint64{}}
	s.testCluster = newTestCluster(t, n, func(c *Config) {
		c.Rand = rand.New(rand.NewPCG(seed, c.ID))
		c.ElectionTick = 8
		c.MaxInflightMsgs = 4
		c.MaxSizePerMsg = 256
		// Odd seeds run without pre-vote and check-quorum: more disruptive
		// elections and split votes, which is where safety bugs hide.
		c.DisablePreVote = seed%2 == 1
		c.DisableCheckQuorum = seed%2 == 1
		// Members alternate between a driver that saves each Ready before
		// the next and one that persists them on the side while it keeps
		// stepping (Config.AsyncStorageWrites), whose writes lag behind.
		c.AsyncStorageWrites = (seed/2+c.ID)%2 == 0
	})
	return s
}

func (s *sim) logf(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf(format, args...))
}

func (s *sim) run(steps int) {
	for step := range steps {
		s.step(step)
		s.check(step)
		if s.t.Failed() {
			return
		}
	}
}

func (s *sim) liveIDs() []uint64 {
	var out []uint64
	for _, id := range s.ids {
		if !s.nodes[id].down {
			out = append(out, id)
		}
	}
	return out
}

func (s *sim) pick(ids []uint64) uint64 { return ids[s.rng.IntN(len(ids))] }

// Action weights, per thousand steps.
var simWeights = []struct {
	name string
	w    int
}{
	{"tick", 200}, {"tickAll", 30}, {"deliver", 420}, {"process", 220}, {"propose", 60},
	{"crash", 4}, {"restart", 15}, {"partition", 6}, {"conf", 12}, {"transfer", 6}, {"read", 12},
	{"compact", 5}, {"persist", 120},
}

func (s *sim) action() string {
	total := 0
	for _, w := range simWeights {
		total += w.w
	}
	p := s.rng.IntN(total)
	for _, w := range simWeights {
		if p < w.w {
			return w.name
		}
		p -= w.w
	}
	panic("unreachable")
}

func (s *sim) step(step int) {
	switch s.action() {
	case "tick":
		live := s.liveIDs()
		if len(live) > 0 {
			s.node(s.pick(live)).Tick()
		}
	case "tickAll":
		for _, id := range s.liveIDs() {
			s.node(id).Tick()
		}
	case "deliver": // a random message: reorders
		if len(s.queue) == 0 {
			return
		}
		i := s.rng.IntN(len(s.queue))
		m := s.queue[i]
		switch q := s.rng.IntN(100); {
		case q < 8: // drop
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return
		case q < 13: // duplicate: deliver and keep
		default:
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
		}
		s.deliver(m)
	case "process":
		live := s.liveIDs()
		if len(live) == 0 {
			return
		}
		id := s.pick(live)
		if s.nodes[id].r.cfg.AsyncStorageWrites {
			// Hand out the next Ready; its write happens in "persist".
			s.readyAsync(id)
			return
		}
		if s.rng.IntN(1000) < 10 && s.nodes[id].r.HasReady() {
			// Crash in the middle: immediate messages go out, nothing is saved.
			rd := s.node(id).Ready()
			s.queue = append(s.queue, rd.Messages...)
			s.crash(id)
			s.logf("%d crash %d mid-ready (%d entries unsaved, %d msgs out)", step, id, len(rd.Entries), len(rd.Messages))
			return
		}
		if s.rng.IntN(100) < 10 && s.nodes[id].r.HasReady() {
			s.processSteppingBeforeAdvance(id)
			return
		}
		s.process(id)
	case "persist":
		// An asynchronous member's writer makes some queued writes durable
		// and the driver reports some of those written; a crash in between
		// loses what was not written.
		live := s.liveIDs()
		if len(live) == 0 {
			return
		}
		id := s.pick(live)
		n := s.nodes[id]
		if !n.r.cfg.AsyncStorageWrites {
			return
		}
		if w := s.rng.IntN(len(n.pending) + 1); w > 0 {
			s.writeAsync(id, w)
			s.logf("%d %d wrote %d", step, id, w)
		}
		if k := s.rng.IntN(len(n.written) + 1); k > 0 {
			s.reportAsync(id, k)
		}
	case "compact":
		// Compact a member's storage at a point it has applied, as log
		// cleaning will; lagging followers then need a snapshot.
		live := s.liveIDs()
		if len(live) == 0 {
			return
		}
		id := s.pick(live)
		r := s.node(id)
		c0 := r.configs[0]
		lo, hi := max(c0.Index, r.log.firstIndex()), r.log.applied
		if hi <= lo || r.log.unstable.snapshot != nil {
			return
		}
		at := lo + s.rng.Uint64N(hi-lo)
		if at >= r.log.firstIndex() && at <= r.log.unstable.offset-1 {
			if err := s.nodes[id].st.Compact(at, c0, nil); err == nil {
				s.logf("%d compact %d at %d", step, id, at)
			}
		}
	case "propose":
		if s.proposals >= 600 {
			return
		}
		for _, id := range s.liveIDs() {
			if s.node(id).state == StateLeader {
				s.proposals++
				data := fmt.Sprintf("v%d", s.proposals)
				if idx, err := s.node(id).Propose(Entry{Data: []byte(data)}); err == nil {
					s.logf("%d propose %s at %d index %d term %d", step, data, id, idx, s.node(id).term)
				}
				break
			}
		}
	case "crash":
		live := s.liveIDs()
		if len(live) > len(s.ids)/2+1 {
			id := s.pick(live)
			s.crash(id)
			s.logf("%d crash %d", step, id)
		}
	case "restart":
		for _, id := range s.ids {
			if s.nodes[id].down {
				s.restart(id)
				s.logf("%d restart %d", step, id)
				break
			}
		}
	case "partition":
		if s.rng.IntN(2) == 0 {
			s.heal()
			s.logf("%d heal", step)
		} else {
			a := s.pick(s.ids)
			s.partition([]uint64{a})
			s.logf("%d isolate %d", step, a)
		}
	case "conf": // membership change on the leader
		for _, id := range s.liveIDs() {
			r := s.node(id)
			if r.state != StateLeader {
				continue
			}
			target := s.pick(s.ids)
			cc := ConfChange{ID: target, ConfigIndex: r.config().Index}
			m, _ := r.config().Member(target)
			if m.Type == Active && len(r.config().Voters()) >= len(s.ids)-1 {
				cc.Type = DemoteMember
			} else {
				cc.Type = PromoteMember
			}
			if _, err := r.ProposeConfChange(cc); err == nil {
				s.logf("%d %s %d by %d", step, cc.Type, target, id)
			}
			break
		}
	case "transfer":
		for _, id := range s.liveIDs() {
			if s.node(id).state == StateLeader {
				to := s.pick(s.ids)
				if err := s.node(id).TransferLeadership(to); err == nil {
					s.logf("%d transfer %d -> %d", step, id, to)
				}
				break
			}
		}
	case "read":
		// A ReadIndex read must observe every entry committed before it
		// began: remember the highest commit index anyone knows now.
		live := s.liveIDs()
		if len(live) > 0 {
			var known uint64
			for _, id := range s.ids {
				known = max(known, s.node(id).log.committed)
			}
			ctx := uint64(step) + 1
			if err := s.node(s.pick(live)).ReadIndex(ctx); err == nil {
				s.readsMin[ctx] = known
			}
		}
	}
}

// processSteppingBeforeAdvance handles a Ready like process, but steps
// messages addressed to the member between saving and Advance, which the
// Ready contract allows.
func (s *sim) processSteppingBeforeAdvance(id uint64) {
	n := s.nodes[id]
	rd := n.r.Ready()
	s.queue = append(s.queue, rd.Messages...)
	if rd.Snapshot != nil {
		require.NoError(s.t, n.st.ApplySnapshot(*rd.Snapshot))
		n.applied = n.applied[:0]
	}
	require.NoError(s.t, n.st.Append(rd.Entries))
	if !rd.HardState.IsEmpty() {
		require.NoError(s.t, n.st.SetHardState(rd.HardState))
	}
	s.queue = append(s.queue, rd.MessagesAfterSave...)
	for i := 0; i < len(s.queue); {
		if m := s.queue[i]; m.To == id && s.rng.IntN(2) == 0 {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			s.deliver(m)
			continue
		}
		i++
	}
	n.applied = append(n.applied, rd.CommittedEntries...)
	n.reads = append(n.reads, rd.ReadStates...)
	n.r.Advance(rd)
}

// fullLog returns a member's log as the core sees it (storage + unstable).
func fullLog(r *Raft) (uint64, []Entry) {
	first, last := r.log.firstIndex(), r.log.lastIndex()
	if last < first {
		return first, nil
	}
	ents, err := r.log.slice(first, last+1, ^uint64(0))
	if err != nil {
		panic(err)
	}
	return first, ents
}

func (s *sim) check(step int) {
	t := s.t
	logs := map[uint64][]Entry{}
	firsts := map[uint64]uint64{}
	for _, id := range s.ids {
		n := s.nodes[id]
		if n.down {
			continue
		}
		r := n.r
		// Election safety: one leader per term.
		if r.state == StateLeader {
			if prev, ok := s.leaders[r.term]; ok && prev != id {
				t.Fatalf("step %d: election safety: %d and %d both lead term %d", step, prev, id, r.term)
			}
			s.leaders[r.term] = id
		}
		firsts[id], logs[id] = fullLog(r)
		// State machine safety: the same entry at each applied index.
		for _, e := range n.applied {
			if c, ok := s.committed[e.Index]; ok {
				if c.e.Term != e.Term || !bytes.Equal(c.e.Data, e.Data) {
					t.Fatalf("step %d: state machine safety: member %d applied %d/%d %q, another applied %d/%d %q",
						step, id, e.Index, e.Term, e.Data, c.e.Index, c.e.Term, c.e.Data)
				}
			} else {
				s.committed[e.Index] = committedEntry{e: e, seenTerm: r.term}
			}
		}
		// Reads observe everything committed before they began.
		for _, rs := range n.reads {
			if want, ok := s.readsMin[rs.Context]; ok && rs.Index < want {
				t.Fatalf("step %d: read %d answered at index %d but %d was committed before it began", step, rs.Context, rs.Index, want)
			}
		}
		n.reads = n.reads[:0]
		// Committed entries must be in the log, and never beyond it.
		require.LessOrEqual(t, r.log.committed, r.log.lastIndex(), "step %d member %d", step, id)
	}
	// Log matching: equal (index, term) implies equal prefixes.
	for i, a := range s.ids {
		for _, b := range s.ids[i+1:] {
			la, lb := logs[a], logs[b]
			if la == nil || lb == nil {
				continue
			}
			lo := max(firsts[a], firsts[b])
			hi := min(firsts[a]+uint64(len(la)), firsts[b]+uint64(len(lb)))
			match := uint64(0)
			for idx := hi; idx > lo; idx-- {
				ea, eb := la[idx-1-firsts[a]], lb[idx-1-firsts[b]]
				if ea.Term == eb.Term {
					match = idx - 1
					break
				}
			}
			for idx := lo; idx <= match && match > 0; idx++ {
				ea, eb := la[idx-firsts[a]], lb[idx-firsts[b]]
				if ea.Term != eb.Term || !bytes.Equal(ea.Data, eb.Data) || ea.Type != eb.Type {
					t.Fatalf("step %d: log matching: members %d and %d agree at %d but differ at %d", step, a, b, match, idx)
				}
			}
		}
	}
	// Leader completeness: a leader of a later term holds every committed entry.
	for _, id := range s.ids {
		n := s.nodes[id]
		if n.down || n.r.state != StateLeader {
			continue
		}
		for idx, c := range s.committed {
			if n.r.term <= c.seenTerm || idx < firsts[id] {
				continue
			}
			if !n.r.log.matchTerm(idx, c.e.Term) {
				t.Fatalf("step %d: leader completeness: leader %d of term %d lacks committed entry %d/%d", step, id, n.r.term, idx, c.e.Term)
			}
		}
	}
}

// converge heals everything and checks liveness: a leader emerges, a new
// proposal commits, and every member applies the same entries.
func (s *sim) converge() {
	s.heal()
	for _, id := range s.ids {
		if s.nodes[id].down {
			s.restart(id)
		}
	}
	// Promote everyone so that the final check covers all members' logs.
	// Propose on whoever leads until a "final" entry is applied everywhere:
	// a proposal can legitimately be lost to a leader change.
	hasFinal := func(id uint64) bool {
		for _, e := range s.nodes[id].applied {
			if string(e.Data) == "final" {
				return true
			}
		}
		return false
	}
	for tick := 0; ; tick++ {
		require.Less(s.t, tick, 2000, "the healed cluster did not commit and apply a new entry everywhere")
		all := true
		for _, id := range s.ids {
			all = all && hasFinal(id)
		}
		if all {
			break
		}
		if lead := s.leader(); lead != 0 && tick%20 == 0 {
			_, _ = s.node(lead).Propose(Entry{Data: []byte("final")})
		}
		s.tickAll(1)
	}
	// Every member applied the same entries: compare with the first.
	first := s.nodes[s.ids[0]].applied
	for _, id := range s.ids[1:] {
		a := s.nodes[id].applied
		n := min(len(first), len(a))
		for i := 1; i <= n; i++ {
			x, y := first[len(first)-i], a[len(a)-i]
			if x.Index != y.Index {
				break
			}
			require.Equal(s.t, x, y, "members %d and %d applied different entries", s.ids[0], id)
		}
	}
	s.check(-1)
}
