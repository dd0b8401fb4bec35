package copycattest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/copycat-go/copycat/runtime/client"
)

// Nemesis injects random faults into a cluster from a seeded source, for
// randomized tests: isolating a member (often the leader), splitting the
// cluster in two (sometimes with the leader in the minority), crashing a
// member (keeping a majority) and restarting it later, dropping or delaying
// messages on a link, and cutting a client off, sometimes for longer than
// its session. The same seed gives the same schedule of faults.
//
//	nem := copycattest.NewNemesis(c, rand.New(rand.NewPCG(seed, seed)), clients, note)
//	for running { nem.Step(); ...; nem.Undo(false); ...; nem.Heal() }
//	nem.Heal(); nem.Undo(true)
type Nemesis struct {
	c       *Cluster
	rng     *rand.Rand
	ids     []uint64
	clients func() []*client.Client
	note    func(string)
	crashed map[uint64]time.Time // member → when to restart it
	cut     map[*client.Client]time.Time
	delayed [][2]uint64
}

// NewNemesis returns a nemesis for c. clients returns the clients it may cut
// off (the current ones); note, if set, is told of every fault.
func NewNemesis(c *Cluster, rng *rand.Rand, clients func() []*client.Client, note func(string)) *Nemesis {
	if note == nil {
		note = func(string) {}
	}
	return &Nemesis{c: c, rng: rng, ids: c.IDs(), clients: clients, note: note,
		crashed: map[uint64]time.Time{}, cut: map[*client.Client]time.Time{}}
}

func (n *Nemesis) notef(format string, args ...any) { n.note(fmt.Sprintf(format, args...)) }

func (n *Nemesis) pick() uint64 { return n.ids[n.rng.IntN(len(n.ids))] }

// target picks the leader half the time, else any member.
func (n *Nemesis) target() uint64 {
	if n.rng.IntN(2) == 0 {
		if l := n.c.Leader(); l != 0 {
			return l
		}
	}
	return n.pick()
}

// Undo restarts crashed members and reconnects cut clients whose time has
// come (all of them if force).
func (n *Nemesis) Undo(force bool) {
	now := time.Now()
	for _, id := range n.ids {
		if at, ok := n.crashed[id]; ok && (force || now.After(at)) {
			n.c.Restart(id)
			delete(n.crashed, id)
			n.notef("restart %d", id)
		}
	}
	for cl, at := range n.cut {
		if force || now.After(at) {
			n.c.ReconnectClient(cl)
			delete(n.cut, cl)
			n.note("reconnect a client")
		}
	}
}

// Heal removes partitions, message loss and delays (crashed members and cut
// clients come back through Undo).
func (n *Nemesis) Heal() {
	n.c.Heal()
	for _, l := range n.delayed {
		n.c.Delay(l[0], l[1], 0, 0)
	}
	n.delayed = nil
}

// Step first undoes what is due, then injects one fault.
func (n *Nemesis) Step() {
	n.Undo(false)
	switch r := n.rng.IntN(100); {
	case r < 20:
		id := n.target()
		n.c.Isolate(id)
		n.notef("isolate %d", id)
	case r < 40:
		ids := slices.Clone(n.ids)
		n.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		if l := n.c.Leader(); l != 0 && n.rng.IntN(2) == 0 {
			// Put the leader in the minority.
			i := slices.Index(ids, l)
			ids[0], ids[i] = ids[i], ids[0]
		}
		minority, majority := slices.Clone(ids[:len(ids)/2]), slices.Clone(ids[len(ids)/2:])
		n.c.Partition(minority, majority)
		n.notef("partition %v | %v", minority, majority)
	case r < 60:
		if len(n.crashed) >= len(n.ids)/2 {
			return // keep a majority able to run
		}
		id := n.target()
		if _, ok := n.crashed[id]; ok {
			return
		}
		n.c.Crash(id)
		n.crashed[id] = time.Now().Add(time.Duration(50+n.rng.IntN(1000)) * time.Millisecond)
		n.notef("crash %d", id)
	case r < 70:
		from, to := n.pick(), n.pick()
		if from == to {
			return
		}
		p := 0.1 + 0.6*n.rng.Float64()
		n.c.Drop(from, to, p)
		n.notef("drop %d->%d p=%.2f", from, to, p)
	case r < 80:
		from, to := n.pick(), n.pick()
		if from == to {
			return
		}
		hi := time.Duration(1+n.rng.IntN(40)) * time.Millisecond
		n.c.Delay(from, to, 0, hi)
		n.delayed = append(n.delayed, [2]uint64{from, to})
		n.notef("delay %d->%d up to %v", from, to, hi)
	default:
		cls := n.clients()
		if len(cls) == 0 {
			return
		}
		i := n.rng.IntN(len(cls))
		cli := cls[i]
		if _, ok := n.cut[cli]; ok {
			return
		}
		n.c.CutClient(cli)
		// Sometimes longer than a session timeout: the session expires.
		n.cut[cli] = time.Now().Add(time.Duration(300+n.rng.IntN(2000)) * time.Millisecond)
		n.notef("cut client %d", i)
	}
}
