package transport

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

// reorderHold bounds how long Reorder holds a message back when no later
// message on its link comes to overtake it.
const reorderHold = 2 * time.Millisecond

// Network is an in-memory network of endpoints with fault injection, for
// tests of everything above the transport (runtime/copycattest builds its
// clusters on it). Every fault can be switched at any time from any
// goroutine. Random choices (drops, delays, duplicates, reordering) come
// from the seed; the interleaving of goroutines does not, so a seed fixes
// the faults' dice, not a whole schedule.
//
// Messages are deep-copied at Send, so sender and receiver never share
// memory. Each endpoint's Handler runs on that endpoint's delivery
// goroutine, with every message that arrived since its previous call.
type Network struct {
	mu        sync.Mutex
	rng       *rand.Rand
	endpoints map[uint64]*endpoint
	groups    map[uint64]int // partition group of each listed member; nil: no partition
	isolated  map[uint64]bool
	drop      map[link]float64
	delay     map[link][2]time.Duration
	dup       float64
	reorder   float64
	held      map[link]*heldMessage

	sent, delivered, dropped, duplicated, reordered atomic.Uint64
}

type link struct{ from, to uint64 }

type heldMessage struct {
	dst *endpoint
	m   raft.Message
}

// NetworkStats are a Network's cumulative counters.
type NetworkStats struct {
	// Sent counts messages passed to Send.
	Sent uint64
	// Delivered counts messages handed to handlers (duplicates included).
	Delivered uint64
	// Dropped counts messages lost: unknown or crashed destination,
	// partition, isolation, Drop, or the destination crashing while they
	// were in flight.
	Dropped uint64
	// Duplicated counts extra copies made by Duplicate.
	Duplicated uint64
	// Reordered counts messages held back by Reorder.
	Reordered uint64
}

// NewNetwork returns a fault-free network whose random choices derive from
// seed.
func NewNetwork(seed int64) *Network {
	return &Network{
		rng:       rand.New(rand.NewPCG(uint64(seed), 0x636f70796361742e)),
		endpoints: make(map[uint64]*endpoint),
		isolated:  make(map[uint64]bool),
		drop:      make(map[link]float64),
		delay:     make(map[link][2]time.Duration),
		held:      make(map[link]*heldMessage),
	}
}

// Endpoint attaches member id to the network, delivering what it receives to
// h. Like TCP, the endpoint only sends to peers added with SetPeer (the
// address is ignored). Closing the endpoint is a crash: everything in flight
// to it is lost; Endpoint may then be called again with the same id (a
// restart). Endpoint panics if id is already attached and open.
func (n *Network) Endpoint(id uint64, h Handler) Transport {
	if h == nil {
		panic("transport: Network.Endpoint with a nil handler")
	}
	e := &endpoint{
		net:    n,
		id:     id,
		h:      h,
		peers:  make(map[uint64]bool),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	n.mu.Lock()
	if n.endpoints[id] != nil {
		n.mu.Unlock()
		panic(fmt.Sprintf("transport: member %d is already attached to the network", id))
	}
	n.endpoints[id] = e
	n.mu.Unlock()
	go e.deliver()
	return e
}

// Stats returns the network's counters.
func (n *Network) Stats() NetworkStats {
	return NetworkStats{
		Sent: n.sent.Load(), Delivered: n.delivered.Load(), Dropped: n.dropped.Load(),
		Duplicated: n.duplicated.Load(), Reordered: n.reordered.Load(),
	}
}

// Partition splits the network: members talk only to members of their own
// group. Members listed in no group form one more group of their own, so
// they are cut off from every listed member. Partition replaces any
// previous partition.
func (n *Network) Partition(groups ...[]uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = make(map[uint64]int)
	for i, g := range groups {
		for _, id := range g {
			n.groups[id] = i
		}
	}
}

// Isolate cuts member id off from every other member, both ways.
func (n *Network) Isolate(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[id] = true
}

// Heal removes every fault that loses messages: partitions, isolations and
// drop rules. Delays, duplication and reordering stay as they are.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = nil
	clear(n.isolated)
	clear(n.drop)
}

// Drop loses each message from one member to another with probability p,
// in that direction only. p = 0 removes the rule.
func (n *Network) Drop(from, to uint64, p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p <= 0 {
		delete(n.drop, link{from, to})
		return
	}
	n.drop[link{from, to}] = p
}

// Delay holds each message from one member to another for a random time in
// [min, max], in that direction only. Messages with different delays may
// overtake each other. Delay(from, to, 0, 0) removes the rule.
func (n *Network) Delay(from, to uint64, min, max time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if max < min {
		min, max = max, min
	}
	if max <= 0 {
		delete(n.delay, link{from, to})
		return
	}
	n.delay[link{from, to}] = [2]time.Duration{min, max}
}

// Duplicate delivers each message twice with probability p.
func (n *Network) Duplicate(p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dup = p
}

// Reorder holds each message back with probability p until the next message
// on its link has been delivered (or a short while has passed), so the two
// arrive swapped.
func (n *Network) Reorder(p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reorder = p
}

// connected reports whether a message may go from one member to another.
// Called with n.mu held.
func (n *Network) connected(from, to uint64) bool {
	if n.isolated[from] || n.isolated[to] {
		return false
	}
	if n.groups == nil {
		return true
	}
	gf, ok := n.groups[from]
	if !ok {
		gf = -1
	}
	gt, ok := n.groups[to]
	if !ok {
		gt = -1
	}
	return gf == gt
}

func (n *Network) chance(p float64) bool { return p > 0 && (p >= 1 || n.rng.Float64() < p) }

// send routes messages from one member. Called with n.mu held.
func (n *Network) send(from uint64, m *raft.Message) {
	l := link{from, m.To}
	dst := n.endpoints[m.To]
	if dst == nil || !n.connected(from, m.To) || n.chance(n.drop[l]) {
		n.dropped.Add(1)
		return
	}
	n.route(l, dst, cloneMessage(m))
	if n.chance(n.dup) {
		n.duplicated.Add(1)
		n.route(l, dst, cloneMessage(m))
	}
}

// route delivers m, after its link's delay, or holds it back to reorder it.
// Called with n.mu held.
func (n *Network) route(l link, dst *endpoint, m raft.Message) {
	held := n.held[l]
	if held == nil && n.chance(n.reorder) {
		h := &heldMessage{dst: dst, m: m}
		n.held[l] = h
		n.reordered.Add(1)
		time.AfterFunc(reorderHold, func() {
			n.mu.Lock()
			defer n.mu.Unlock()
			if n.held[l] == h {
				delete(n.held, l)
				n.later(l, h.dst, h.m)
			}
		})
		return
	}
	n.later(l, dst, m)
	if held != nil {
		delete(n.held, l)
		n.later(l, held.dst, held.m)
	}
}

// later hands m to dst after the link's delay. Called with n.mu held.
func (n *Network) later(l link, dst *endpoint, m raft.Message) {
	d, ok := n.delay[l]
	if !ok {
		dst.push(m)
		return
	}
	wait := d[0]
	if d[1] > d[0] {
		wait += time.Duration(n.rng.Int64N(int64(d[1]-d[0]) + 1))
	}
	time.AfterFunc(wait, func() { dst.push(m) })
}

// endpoint is one member's attachment to a Network.
type endpoint struct {
	net    *Network
	id     uint64
	h      Handler
	notify chan struct{}
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when the delivery goroutine returns

	mu     sync.Mutex
	closed bool
	peers  map[uint64]bool
	inbox  []raft.Message
}

func (e *endpoint) Send(msgs []raft.Message) {
	n := e.net
	n.sent.Add(uint64(len(msgs)))
	e.mu.Lock()
	closed := e.closed
	known := make([]bool, len(msgs))
	for i := range msgs {
		known[i] = e.peers[msgs[i].To]
	}
	e.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range msgs {
		if closed || !known[i] {
			n.dropped.Add(1)
			continue
		}
		n.send(e.id, &msgs[i])
	}
}

func (e *endpoint) SetPeer(id uint64, _ string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.peers[id] = true
}

func (e *endpoint) RemovePeer(id uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.peers, id)
}

// Close crashes the endpoint: messages in flight to it are lost, and it
// waits for the delivery goroutine, so it must not be called from the
// endpoint's own Handler.
func (e *endpoint) Close() error {
	n := e.net
	n.mu.Lock()
	if n.endpoints[e.id] == e {
		delete(n.endpoints, e.id)
	}
	n.mu.Unlock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	n.dropped.Add(uint64(len(e.inbox)))
	e.inbox = nil
	e.mu.Unlock()
	close(e.done)
	<-e.exited
	return nil
}

// push queues m for the delivery goroutine, or loses it if e crashed.
func (e *endpoint) push(m raft.Message) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.net.dropped.Add(1)
		return
	}
	e.inbox = append(e.inbox, m)
	e.mu.Unlock()
	signal(e.notify)
}

func (e *endpoint) deliver() {
	defer close(e.exited)
	for {
		select {
		case <-e.done:
			return
		case <-e.notify:
		}
		e.mu.Lock()
		batch := e.inbox
		e.inbox = nil
		closed := e.closed
		e.mu.Unlock()
		if closed {
			return
		}
		if len(batch) > 0 {
			e.net.delivered.Add(uint64(len(batch)))
			e.h(batch)
		}
	}
}

// cloneMessage deep-copies m: entries, their data and the snapshot.
func cloneMessage(m *raft.Message) raft.Message {
	c := *m
	if m.Entries != nil {
		c.Entries = make([]raft.Entry, len(m.Entries))
		for i, en := range m.Entries {
			en.Data = cloneBytes(en.Data)
			c.Entries[i] = en
		}
	}
	if m.Snapshot != nil {
		s := *m.Snapshot
		s.Data = cloneBytes(s.Data)
		if ms := s.Meta.Config.Members; ms != nil {
			s.Meta.Config.Members = append([]raft.Member{}, ms...)
		}
		c.Snapshot = &s
	}
	return c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
