package transport

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

func TestNewTCPValidates(t *testing.T) {
	_, err := NewTCP(TCPConfig{MaxFrameSize: 10})
	if err == nil {
		t.Fatal("NewTCP accepted an empty config")
	}
	for _, want := range []string{"cluster ID", "member ID", "listen", "handler", "max frame size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// Three members exchange messages all to all, and a thousand messages on one
// connection arrive in order.
func TestTCPExchangeAndOrdering(t *testing.T) {
	checkNoLeaks(t)
	var recv [4]collector
	var trs [4]*TCP
	for id := uint64(1); id <= 3; id++ {
		trs[id] = newTestTCP(t, "c1", id, recv[id].handle, nil)
	}
	for id := uint64(1); id <= 3; id++ {
		for peer := uint64(1); peer <= 3; peer++ {
			if peer != id {
				trs[id].SetPeer(peer, trs[peer].Addr().String())
			}
		}
	}
	const n = 1000
	for i := range uint64(n) {
		// Several Send calls, some with many messages, so frames batch.
		trs[1].Send([]raft.Message{app(1, 2, i), app(1, 3, i)})
		trs[2].Send([]raft.Message{app(2, 1, i), app(2, 3, i)})
		trs[3].Send([]raft.Message{app(3, 1, i), app(3, 2, i)})
	}
	for id := 1; id <= 3; id++ {
		waitFor(t, "every message", func() bool { return recv[id].count() == 2*n })
	}
	for id := uint64(1); id <= 3; id++ {
		next := map[uint64]uint64{}
		for _, m := range recv[id].all() {
			if m.To != id {
				t.Fatalf("member %d received a message for %d", id, m.To)
			}
			if m.Index != next[m.From] {
				t.Fatalf("member %d: from %d got index %d, want %d", id, m.From, m.Index, next[m.From])
			}
			if want := []byte("entry " + strconv.FormatUint(m.Index+1, 10)); !bytes.Equal(m.Entries[0].Data, want) {
				t.Fatalf("data %q, want %q", m.Entries[0].Data, want)
			}
			next[m.From]++
		}
	}
	waitFor(t, "the sender's count", func() bool { return trs[1].Stats().Sent == 2*n })
	s := trs[1].Stats()
	if s.Sent != 2*n || s.Dropped != 0 || s.Frames == 0 || s.Frames > s.Sent || s.Received != 2*n {
		t.Errorf("stats of member 1: %+v", s)
	}
}

// A batch larger than a frame is split into several frames, and a message
// too large for any frame is dropped without disturbing the rest.
func TestTCPFramesCappedBelowMax(t *testing.T) {
	checkNoLeaks(t)
	const maxFrame = 4096
	small := func(c *TCPConfig) { c.MaxFrameSize = maxFrame }
	var recv collector
	b := newTestTCP(t, "c1", 2, recv.handle, small)
	a := newTestTCP(t, "c1", 1, func([]raft.Message) {}, small)
	a.SetPeer(2, b.Addr().String())
	var msgs []raft.Message
	for i := range uint64(100) {
		m := app(1, 2, i)
		m.Entries[0].Data = make([]byte, 200)
		msgs = append(msgs, m)
	}
	huge := app(1, 2, 1000)
	huge.Entries[0].Data = make([]byte, maxFrame)
	msgs = append(msgs[:50:50], append([]raft.Message{huge}, msgs[50:]...)...)
	a.Send(msgs)
	waitFor(t, "the 100 messages that fit", func() bool { return recv.count() == 100 })
	// The writer counts after its flush returns, which may be after delivery.
	waitFor(t, "the sender's count", func() bool { return a.Stats().Sent == 100 })
	s := a.Stats()
	if s.Dropped != 1 || s.Sent != 100 || s.Frames < 100*200/maxFrame {
		t.Errorf("stats: %+v", s)
	}
	if bs := b.Stats(); bs.BadFrames != 0 {
		t.Errorf("receiver saw bad frames: %+v", bs)
	}
}

func TestTCPQueueOverflowAndUnknownPeerDropped(t *testing.T) {
	checkNoLeaks(t)
	// A listener that never accepts: the writer hangs in the handshake, so
	// the queue fills up.
	stuck, err := net.Listen("tcp", "127.0.0.1:0")
	check(t, err)
	defer stuck.Close()
	const queue = 4
	a := newTestTCP(t, "c1", 1, func([]raft.Message) {}, func(c *TCPConfig) {
		c.QueueSize = queue
		c.DialTimeout = time.Minute
	})
	a.SetPeer(2, stuck.Addr().String())
	msgs := make([]raft.Message, 100)
	for i := range msgs {
		msgs[i] = app(1, 2, uint64(i))
	}
	a.Send(msgs)
	// The writer may have taken one batch (at most a queue's worth) before
	// it got stuck; everything beyond two queues is certainly dropped.
	if d := a.Stats().Dropped; d < uint64(len(msgs)-2*queue) {
		t.Fatalf("dropped %d of %d with a queue of %d", d, len(msgs), queue)
	}
	before := a.Stats().Dropped
	a.Send([]raft.Message{app(1, 99, 0)})
	if d := a.Stats().Dropped - before; d != 1 {
		t.Fatalf("a message to an unknown peer: dropped %d, want 1", d)
	}
}

func TestTCPRemovePeer(t *testing.T) {
	checkNoLeaks(t)
	var recv collector
	b := newTestTCP(t, "c1", 2, recv.handle, nil)
	a := newTestTCP(t, "c1", 1, func([]raft.Message) {}, nil)
	a.SetPeer(2, b.Addr().String())
	a.Send([]raft.Message{app(1, 2, 0)})
	waitFor(t, "the first message", func() bool { return recv.count() == 1 })
	a.RemovePeer(2)
	a.Send([]raft.Message{app(1, 2, 1)})
	if s := a.Stats(); s.Dropped != 1 {
		t.Fatalf("a message to a removed peer was not dropped: %+v", s)
	}
}

func TestTCPReconnectAfterPeerRestart(t *testing.T) {
	checkNoLeaks(t)
	var unreachable atomic.Int64
	var recv1, recv2 collector
	b := newTestTCP(t, "c1", 2, recv1.handle, nil)
	addr := b.Addr().String()
	a := newTestTCP(t, "c1", 1, func([]raft.Message) {}, func(c *TCPConfig) {
		c.Unreachable = func(id uint64) {
			if id == 2 {
				unreachable.Add(1)
			}
		}
	})
	a.SetPeer(2, addr)
	a.Send([]raft.Message{app(1, 2, 0)})
	waitFor(t, "delivery before the restart", func() bool { return recv1.count() == 1 })

	check(t, b.Close())
	// The watcher notices the closed connection and reports it.
	waitFor(t, "the peer reported unreachable", func() bool { return unreachable.Load() > 0 })
	var ln net.Listener
	waitFor(t, "listening again on "+addr, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	newTestTCP(t, "c1", 2, recv2.handle, func(c *TCPConfig) { c.Listener = ln; c.ListenAddr = "" })
	// Raft retransmits; so do we, until the restarted member hears us.
	i := uint64(1)
	waitFor(t, "delivery after the restart", func() bool {
		a.Send([]raft.Message{app(1, 2, i)})
		i++
		return recv2.count() > 0
	})
	if s := a.Stats(); s.Reconnects == 0 {
		t.Errorf("no reconnect counted: %+v", s)
	}
}

func TestTCPSetPeerNewAddress(t *testing.T) {
	checkNoLeaks(t)
	var old, moved collector
	b1 := newTestTCP(t, "c1", 2, old.handle, nil)
	b2 := newTestTCP(t, "c1", 2, moved.handle, nil)
	a := newTestTCP(t, "c1", 1, func([]raft.Message) {}, nil)
	a.SetPeer(2, b1.Addr().String())
	a.Send([]raft.Message{app(1, 2, 0)})
	waitFor(t, "delivery at the first address", func() bool { return old.count() == 1 })
	a.SetPeer(2, b2.Addr().String())
	a.Send([]raft.Message{app(1, 2, 1)})
	waitFor(t, "delivery at the new address", func() bool { return moved.count() == 1 })
	if old.count() != 1 {
		t.Fatal("the old address received a message after the move")
	}
}

// rawPeer dials tr and completes a peer handshake as member from.
func rawPeer(t *testing.T, tr *TCP, cluster string, from, to uint64) (*Conn, error) {
	t.Helper()
	nc, err := net.Dial("tcp", tr.Addr().String())
	check(t, err)
	t.Cleanup(func() { nc.Close() })
	c := NewConn(nc, 0)
	_ = nc.SetDeadline(time.Now().Add(waitTimeout))
	return c, Handshake(c, Hello{ClusterID: cluster, Kind: KindPeer, From: from, To: to})
}

// expectClosed waits until the acceptor closes c.
func expectClosed(t *testing.T, c *Conn) {
	t.Helper()
	_ = c.NetConn().SetReadDeadline(time.Now().Add(waitTimeout))
	var b [1]byte
	if _, err := c.NetConn().Read(b[:]); err == nil || isTimeout(err) {
		t.Fatalf("connection not closed by the acceptor: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// An oversized, a truncated and a garbage frame each close their own
// connection; the listener and the other peers carry on.
func TestTCPBadFramesCloseOnlyTheirConnection(t *testing.T) {
	checkNoLeaks(t)
	var recv collector
	b := newTestTCP(t, "c1", 2, recv.handle, func(c *TCPConfig) { c.MaxFrameSize = 1 << 16 })
	a := newTestTCP(t, "c1", 1, func([]raft.Message) {}, nil)
	a.SetPeer(2, b.Addr().String())
	a.Send([]raft.Message{app(1, 2, 0)})
	waitFor(t, "a healthy peer's message", func() bool { return recv.count() == 1 })

	oversized, err := rawPeer(t, b, "c1", 7, 2)
	check(t, err)
	truncated, err := rawPeer(t, b, "c1", 8, 2)
	check(t, err)
	garbage, err := rawPeer(t, b, "c1", 9, 2)
	check(t, err)

	_, err = oversized.NetConn().Write(header(1<<16 + 1))
	check(t, err)
	expectClosed(t, oversized)

	_, err = truncated.NetConn().Write(append(header(100), make([]byte, 10)...))
	check(t, err)
	check(t, truncated.NetConn().(*net.TCPConn).CloseWrite())
	expectClosed(t, truncated)

	check(t, garbage.WriteFrame([]byte("this is not msgpack")))
	check(t, garbage.Flush())
	expectClosed(t, garbage)

	waitFor(t, "three bad frames counted", func() bool { return b.Stats().BadFrames == 3 })
	// The healthy connection still works, and so does the listener.
	a.Send([]raft.Message{app(1, 2, 1)})
	waitFor(t, "the healthy peer's next message", func() bool { return recv.count() == 2 })
	late, err := rawPeer(t, b, "c1", 10, 2)
	check(t, err)
	body, err := EncodeBatch(nil, []raft.Message{app(10, 2, 0)})
	check(t, err)
	check(t, late.WriteFrame(body))
	check(t, late.Flush())
	waitFor(t, "a message from a new connection", func() bool { return recv.countFrom(10) == 1 })
}

// A peer from another cluster, and a dialer that reached the wrong member,
// are refused with a clear reason logged on both sides.
func TestTCPHandshakeRefusals(t *testing.T) {
	tests := []struct {
		name          string
		dialerCluster string
		dialAs        uint64 // the member ID the dialer believes it reaches
		reason        string
		logged        string // as the text log handler quotes it
	}{
		{"other cluster", "c2", 2, `cluster ID "c2" does not match this member's cluster "c1"`,
			`cluster ID \"c2\" does not match this member's cluster \"c1\"`},
		{"wrong member", "c1", 3, "this is member 2, not member 3", "this is member 2, not member 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeaks(t)
			var recv collector
			blog, bbuf := bufferLogger(t)
			alog, abuf := bufferLogger(t)
			b := newTestTCP(t, "c1", 2, recv.handle, func(c *TCPConfig) { c.Logger = blog })
			var unreachable atomic.Int64
			a := newTestTCP(t, tt.dialerCluster, 1, func([]raft.Message) {}, func(c *TCPConfig) {
				c.Logger = alog
				c.Unreachable = func(uint64) { unreachable.Add(1) }
			})
			a.SetPeer(tt.dialAs, b.Addr().String())
			a.Send([]raft.Message{app(1, tt.dialAs, 0)})
			waitFor(t, "the refusal", func() bool {
				return unreachable.Load() > 0 && bbuf.contains(tt.logged) && abuf.contains(tt.logged)
			})
			if a.Stats().Refused == 0 || b.Stats().Refused == 0 {
				t.Errorf("refusals not counted: dialer %+v, acceptor %+v", a.Stats(), b.Stats())
			}
			if recv.count() != 0 {
				t.Error("a refused peer delivered messages")
			}
			c, err := rawPeer(t, b, tt.dialerCluster, 1, tt.dialAs)
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Handshake = %v, want ErrRefused with %q", err, tt.reason)
			}
			expectClosed(t, c)
		})
	}
}

func TestHandshakeBadMagicAndVersion(t *testing.T) {
	checkNoLeaks(t)
	b := newTestTCP(t, "c1", 2, func([]raft.Message) {}, nil)
	dial := func() *Conn {
		nc, err := net.Dial("tcp", b.Addr().String())
		check(t, err)
		t.Cleanup(func() { nc.Close() })
		_ = nc.SetDeadline(time.Now().Add(waitTimeout))
		return NewConn(nc, 0)
	}

	err := Handshake(dial(), Hello{Version: 99, ClusterID: "c1", Kind: KindPeer, From: 1, To: 2})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "protocol version 99") {
		t.Fatalf("wrong version: %v", err)
	}

	c := dial()
	hello, err := encodeHello(Hello{Version: ProtocolVersion, ClusterID: "c1", Kind: KindPeer, From: 1, To: 2})
	check(t, err)
	hello = bytes.Replace(hello, []byte(Magic), []byte("dogdog!"), 1)
	check(t, c.WriteFrame(hello))
	check(t, c.Flush())
	body, err := c.ReadFrame()
	check(t, err)
	ok, reason, err := decodeReply(body)
	check(t, err)
	if ok || !strings.Contains(reason, "not a copycat connection") {
		t.Fatalf("bad magic: ok=%v reason=%q", ok, reason)
	}

	// Not even a frame: an HTTP request is closed without ceremony.
	c = dial()
	_, err = io.WriteString(c.NetConn(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	check(t, err)
	expectClosed(t, c)
	waitFor(t, "three refusals", func() bool { return b.Stats().Refused == 2 })
}

// Connections of another kind go to AcceptConn, or are refused without it.
func TestTCPAcceptConn(t *testing.T) {
	checkNoLeaks(t)
	var mu sync.Mutex
	var hellos []Hello
	echo := func(h Hello, c *Conn) {
		mu.Lock()
		hellos = append(hellos, h)
		mu.Unlock()
		for {
			body, err := c.ReadFrame()
			if err != nil {
				return
			}
			if c.WriteFrame(body) != nil || c.Flush() != nil {
				return
			}
		}
	}
	served := newTestTCP(t, "c1", 2, func([]raft.Message) {}, func(c *TCPConfig) { c.AcceptConn = echo })
	unserved := newTestTCP(t, "c1", 3, func([]raft.Message) {}, nil)

	nc, err := net.Dial("tcp", served.Addr().String())
	check(t, err)
	defer nc.Close()
	c := NewConn(nc, 0)
	check(t, Handshake(c, Hello{ClusterID: "c1", Kind: KindClient}))
	check(t, c.WriteFrame([]byte("ping")))
	check(t, c.Flush())
	body, err := c.ReadFrame()
	check(t, err)
	if string(body) != "ping" {
		t.Fatalf("echo = %q", body)
	}
	mu.Lock()
	if len(hellos) != 1 || hellos[0].Kind != KindClient {
		t.Errorf("hook saw %+v", hellos)
	}
	mu.Unlock()

	nc2, err := net.Dial("tcp", unserved.Addr().String())
	check(t, err)
	defer nc2.Close()
	err = Handshake(NewConn(nc2, 0), Hello{ClusterID: "c1", Kind: KindClient})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "not served") {
		t.Fatalf("client kind without a hook: %v", err)
	}
	// Close interrupts the hook, which is still reading c, and waits for it.
}
