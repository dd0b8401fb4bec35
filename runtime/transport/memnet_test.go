package transport

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

// memCluster attaches members 1..n to a fresh network, each knowing all the
// others, and closes them at cleanup.
func memCluster(t *testing.T, seed int64, n int) (*Network, []Transport, []*collector) {
	t.Helper()
	checkNoLeaks(t)
	net := NewNetwork(seed)
	trs := make([]Transport, n+1)
	recv := make([]*collector, n+1)
	for id := 1; id <= n; id++ {
		recv[id] = &collector{}
		trs[id] = net.Endpoint(uint64(id), recv[id].handle)
		t.Cleanup(func() { trs[id].Close() })
	}
	for id := 1; id <= n; id++ {
		for peer := 1; peer <= n; peer++ {
			if peer != id {
				trs[id].SetPeer(uint64(peer), "")
			}
		}
	}
	return net, trs, recv
}

// sendOne sends one message and waits until the network has either
// delivered or dropped it, so a test can assert which without sleeping.
func sendOne(t *testing.T, net *Network, tr Transport, m raft.Message) {
	t.Helper()
	before := net.Stats()
	tr.Send([]raft.Message{m})
	waitFor(t, "the message delivered or dropped", func() bool {
		s := net.Stats()
		return s.Delivered+s.Dropped > before.Delivered+before.Dropped
	})
}

func TestNetworkDeliversDeepCopies(t *testing.T) {
	net, trs, recv := memCluster(t, 1, 2)
	m := app(1, 2, 0)
	m.Snapshot = &raft.Snapshot{Data: []byte("state"), Meta: raft.SnapshotMeta{Config: raft.Configuration{
		Members: []raft.Member{{ID: 1, Type: raft.Active, Addr: "a"}}}}}
	msgs := []raft.Message{m}
	trs[1].Send(msgs)
	// The sender reuses its buffers at once.
	msgs[0].Entries[0].Data[0] = 'X'
	msgs[0].Snapshot.Data[0] = 'X'
	msgs[0].Snapshot.Meta.Config.Members[0].ID = 99
	waitFor(t, "delivery", func() bool { return recv[2].count() == 1 })
	got := recv[2].all()[0]
	if string(got.Entries[0].Data) != "entry 1" || string(got.Snapshot.Data) != "state" ||
		got.Snapshot.Meta.Config.Members[0].ID != 1 {
		t.Fatalf("receiver shares memory with the sender: %+v", got)
	}
	sendOne(t, net, trs[1], app(1, 3, 0)) // unknown peer
	if s := net.Stats(); s.Dropped != 1 || s.Delivered != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestNetworkPartitionAndHeal(t *testing.T) {
	net, trs, recv := memCluster(t, 1, 5)
	net.Partition([]uint64{1, 2}, []uint64{3})
	reach := func(from, to uint64) bool {
		before := recv[to].countFrom(from)
		sendOne(t, net, trs[from], app(from, to, 0))
		return recv[to].countFrom(from) > before
	}
	cases := []struct {
		from, to uint64
		want     bool
	}{
		{1, 2, true}, {2, 1, true}, // same group
		{1, 3, false}, {3, 2, false}, // across groups
		{4, 5, true},                 // unlisted members talk among themselves
		{4, 1, false}, {3, 5, false}, // but not to listed ones
	}
	for _, c := range cases {
		if got := reach(c.from, c.to); got != c.want {
			t.Errorf("partitioned: %d -> %d delivered = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	net.Heal()
	for _, c := range cases {
		if !reach(c.from, c.to) {
			t.Errorf("healed: %d -> %d not delivered", c.from, c.to)
		}
	}
}

func TestNetworkIsolate(t *testing.T) {
	net, trs, recv := memCluster(t, 1, 3)
	net.Isolate(2)
	sendOne(t, net, trs[1], app(1, 2, 0))
	sendOne(t, net, trs[2], app(2, 3, 0))
	sendOne(t, net, trs[1], app(1, 3, 0))
	if recv[2].count() != 0 || recv[3].countFrom(2) != 0 || recv[3].countFrom(1) != 1 {
		t.Fatal("isolation leaked, or cut the others off")
	}
	net.Heal()
	sendOne(t, net, trs[1], app(1, 2, 1))
	if recv[2].count() != 1 {
		t.Fatal("heal did not end the isolation")
	}
}

func TestNetworkDropOneWay(t *testing.T) {
	net, trs, recv := memCluster(t, 1, 2)
	net.Drop(1, 2, 1)
	sendOne(t, net, trs[1], app(1, 2, 0))
	sendOne(t, net, trs[2], app(2, 1, 0))
	if recv[2].count() != 0 || recv[1].count() != 1 {
		t.Fatalf("one-way drop: 1->2 got %d, 2->1 got %d", recv[2].count(), recv[1].count())
	}
	net.Drop(1, 2, 0.5)
	const n = 2000
	for i := range uint64(n) {
		trs[1].Send([]raft.Message{app(1, 2, i)})
	}
	waitFor(t, "every message delivered or dropped", func() bool {
		s := net.Stats()
		return s.Delivered+s.Dropped == s.Sent
	})
	if got := recv[2].count(); got < n*4/10 || got > n*6/10 {
		t.Fatalf("p=0.5 delivered %d of %d", got, n)
	}
}

// The same seed makes the same choices.
func TestNetworkSeedIsDeterministic(t *testing.T) {
	run := func() []uint64 {
		net, trs, recv := memCluster(t, 42, 2)
		net.Drop(1, 2, 0.5)
		for i := range uint64(200) {
			trs[1].Send([]raft.Message{app(1, 2, i)})
		}
		waitFor(t, "every message delivered or dropped", func() bool {
			s := net.Stats()
			return s.Delivered+s.Dropped == s.Sent
		})
		var got []uint64
		for _, m := range recv[2].all() {
			got = append(got, m.Index)
		}
		return got
	}
	if a, b := run(), run(); !slices.Equal(a, b) {
		t.Fatalf("same seed, different drops:\n%v\n%v", a, b)
	}
}

func TestNetworkDelay(t *testing.T) {
	net, trs, recv := memCluster(t, 1, 2)
	const lo, hi = 30 * time.Millisecond, 40 * time.Millisecond
	net.Delay(1, 2, lo, hi)
	start := time.Now()
	trs[1].Send([]raft.Message{app(1, 2, 0)})
	trs[2].Send([]raft.Message{app(2, 1, 0)}) // the other way is not delayed
	waitFor(t, "the undelayed message", func() bool { return recv[1].count() == 1 })
	waitFor(t, "the delayed message", func() bool { return recv[2].count() == 1 })
	if elapsed := time.Since(start); elapsed < lo {
		t.Fatalf("delivered after %v, want at least %v", elapsed, lo)
	}
	net.Delay(1, 2, 0, 0)
	sendOne(t, net, trs[1], app(1, 2, 1))
}

func TestNetworkDuplicate(t *testing.T) {
	net, trs, recv := memCluster(t, 1, 2)
	net.Duplicate(1)
	for i := range uint64(10) {
		trs[1].Send([]raft.Message{app(1, 2, i)})
	}
	waitFor(t, "every message twice", func() bool { return recv[2].count() == 20 })
	got := recv[2].all()
	// Copies are independent.
	got[0].Entries[0].Data[0] = 'X'
	for _, m := range got[1:] {
		if m.Entries[0].Data[0] == 'X' {
			t.Fatal("duplicates share memory")
		}
	}
	if s := net.Stats(); s.Duplicated != 10 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestNetworkReorder(t *testing.T) {
	net, trs, recv := memCluster(t, 1, 2)
	net.Reorder(1)
	const n = 10
	var msgs []raft.Message
	for i := range uint64(n) {
		msgs = append(msgs, app(1, 2, i))
	}
	trs[1].Send(msgs)
	waitFor(t, "every message", func() bool { return recv[2].count() == n })
	var order []uint64
	for _, m := range recv[2].all() {
		order = append(order, m.Index)
	}
	if slices.IsSorted(order) {
		t.Fatalf("Reorder(1) kept the order: %v", order)
	}
	slices.Sort(order)
	for i, idx := range order {
		if idx != uint64(i) {
			t.Fatalf("lost or duplicated messages: %v", order)
		}
	}
	// A held message with nothing behind it is still delivered.
	trs[1].Send([]raft.Message{app(1, 2, n)})
	waitFor(t, "the lone held message", func() bool { return recv[2].count() == n+1 })
}

// Closing an endpoint is a crash: what is in flight to it is lost, and a
// restarted endpoint with the same ID does not receive it.
func TestNetworkCrashLosesInFlight(t *testing.T) {
	net, trs, recv := memCluster(t, 1, 2)
	net.Delay(1, 2, 20*time.Millisecond, 20*time.Millisecond)
	trs[1].Send([]raft.Message{app(1, 2, 0), app(1, 2, 1)})
	check(t, trs[2].Close())
	var restarted collector
	trs[2] = net.Endpoint(2, restarted.handle)
	trs[2].SetPeer(1, "")
	waitFor(t, "the in-flight messages lost", func() bool { return net.Stats().Dropped == 2 })
	if recv[2].count() != 0 || restarted.count() != 0 {
		t.Fatal("a crashed endpoint's in-flight messages were delivered")
	}
	net.Delay(1, 2, 0, 0)
	sendOne(t, net, trs[1], app(1, 2, 2))
	if restarted.count() != 1 {
		t.Fatal("the restarted endpoint does not receive")
	}
}

// Faults switch while members send from many goroutines; run with -race.
func TestNetworkConcurrentFaults(t *testing.T) {
	net, trs, recv := memCluster(t, 3, 3)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for id := 1; id <= 3; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				to := uint64(id%3 + 1)
				trs[id].Send([]raft.Message{app(uint64(id), to, i)})
			}
		}()
	}
	for i := range 200 {
		switch i % 6 {
		case 0:
			net.Partition([]uint64{1}, []uint64{2, 3})
		case 1:
			net.Isolate(2)
		case 2:
			net.Drop(1, 2, 0.3)
		case 3:
			net.Delay(2, 3, 0, time.Millisecond)
		case 4:
			net.Duplicate(0.2)
			net.Reorder(0.2)
		case 5:
			net.Heal()
		}
	}
	net.Heal()
	net.Delay(2, 3, 0, 0)
	waitFor(t, "traffic after the faults", func() bool {
		return recv[1].count() > 0 && recv[2].count() > 0 && recv[3].count() > 0
	})
	close(stop)
	wg.Wait()
}
