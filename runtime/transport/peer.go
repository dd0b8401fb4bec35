package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

// maxRetainedBuffer bounds the frame buffer a peer keeps between batches;
// a larger one (a snapshot went by) is left to the garbage collector.
const maxRetainedBuffer = 1 << 20

// peer owns the outbound side of one peer: a bounded queue filled by Send and
// a writer goroutine (run) that connects, drains the queue into frames and
// reconnects with backoff when the connection fails.
type peer struct {
	t      *TCP
	id     uint64
	ctx    context.Context // canceled by stop
	cancel context.CancelFunc
	notify chan struct{} // something was queued
	redial chan struct{} // the address changed

	mu    sync.Mutex
	addr  string
	gen   uint64 // incremented by each address change
	queue []raft.Message
	spare []raft.Message // the previous batch's storage, reused
	nc    net.Conn       // current connection, closed to interrupt the writer

	// Owned by the writer goroutine.
	buf       []byte
	connected bool // a connection was established before
}

func newPeer(t *TCP, id uint64, addr string) *peer {
	p := &peer{
		t:      t,
		id:     id,
		addr:   addr,
		notify: make(chan struct{}, 1),
		redial: make(chan struct{}, 1),
	}
	p.ctx, p.cancel = context.WithCancel(t.ctx)
	return p
}

func (p *peer) enqueue(m *raft.Message) {
	p.mu.Lock()
	if len(p.queue) >= p.t.cfg.QueueSize {
		p.mu.Unlock()
		p.t.stats.dropped.Add(1)
		return
	}
	p.queue = append(p.queue, *m)
	p.mu.Unlock()
	signal(p.notify)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// take hands the writer everything queued.
func (p *peer) take() []raft.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	batch := p.queue
	p.queue, p.spare = p.spare[:0], nil
	return batch
}

// recycle returns a written batch's storage for reuse, dropping its
// references so entries can be collected.
func (p *peer) recycle(batch []raft.Message) {
	clear(batch)
	p.mu.Lock()
	p.spare = batch[:0]
	p.mu.Unlock()
}

func (p *peer) setAddr(addr string) {
	p.mu.Lock()
	if addr == p.addr {
		p.mu.Unlock()
		return
	}
	p.addr = addr
	p.gen++
	if p.nc != nil {
		p.nc.Close() // the writer notices and reconnects to the new address
	}
	p.mu.Unlock()
	signal(p.redial)
}

func (p *peer) stop() {
	p.cancel()
	p.mu.Lock()
	if p.nc != nil {
		p.nc.Close()
	}
	p.mu.Unlock()
}

// setConn records the connection being set up or used, unless the peer was
// stopped; it returns false then.
func (p *peer) setConn(nc net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return false
	}
	p.nc = nc
	return true
}

func (p *peer) closeConn(c *Conn) {
	p.mu.Lock()
	if p.nc == c.NetConn() {
		p.nc = nil
	}
	p.mu.Unlock()
	c.Close()
}

// addrChanged reports whether the address changed since generation gen.
func (p *peer) addrChanged(gen uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gen != gen
}

func (p *peer) drop(n int) { p.t.stats.dropped.Add(uint64(n)) }

// run is the writer goroutine.
func (p *peer) run() {
	defer p.t.wg.Done()
	log := p.t.log.With("peer", p.id)
	var (
		c       *Conn
		broken  <-chan struct{} // closed when c's connection ends
		gen     uint64          // address generation c was dialed at
		backoff = p.t.cfg.BackoffMin
	)
	defer func() {
		if c != nil {
			p.closeConn(c)
		}
		p.drop(len(p.take()))
	}()
	// lost handles a connection that broke or failed to write.
	lost := func(err error) {
		p.closeConn(c)
		c, broken = nil, nil
		if p.ctx.Err() != nil {
			return
		}
		if p.addrChanged(gen) {
			log.Debug("address changed; reconnecting")
			return
		}
		log.Warn("connection to peer lost", "err", err)
		p.t.unreachable(p.id)
	}
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-broken:
			lost(errors.New("closed by peer"))
			continue
		case <-p.redial:
			continue
		case <-p.notify:
		}
		batch := p.take()
		if len(batch) == 0 {
			continue
		}
		// Both may have happened while we waited for the batch: do not
		// waste it on a connection that is already gone.
		if c != nil {
			select {
			case <-broken:
				lost(errors.New("closed by peer"))
			default:
				if p.addrChanged(gen) {
					lost(nil)
				}
			}
		}
		if c == nil {
			var err error
			c, gen, err = p.dial()
			if err != nil {
				p.drop(len(batch))
				p.recycle(batch)
				if p.ctx.Err() != nil {
					return
				}
				log.Warn("cannot connect to peer", "err", err, "retry_in", backoff)
				p.t.unreachable(p.id)
				if !p.sleep(jitter(backoff)) {
					return
				}
				backoff = min(2*backoff, p.t.cfg.BackoffMax)
				continue
			}
			backoff = p.t.cfg.BackoffMin
			broken = p.watch(c)
			if p.connected {
				p.t.stats.reconnects.Add(1)
			}
			p.connected = true
			log.Debug("connected to peer")
		}
		if err := p.write(c, batch, log); err != nil {
			lost(err)
		}
		p.recycle(batch)
	}
}

// jitter spreads d over [d/2, d] so peers that failed together do not retry
// together.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d, cut short by an address change; it returns false if the
// peer was stopped.
func (p *peer) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-p.redial:
	case <-p.ctx.Done():
		return false
	}
	return true
}

// dial connects to the peer's current address and performs the handshake.
func (p *peer) dial() (*Conn, uint64, error) {
	p.mu.Lock()
	addr, gen := p.addr, p.gen
	p.mu.Unlock()
	cfg := &p.t.cfg
	ctx, cancel := context.WithTimeout(p.ctx, cfg.DialTimeout)
	defer cancel()
	var (
		nc  net.Conn
		err error
	)
	var nd net.Dialer
	if cfg.SourceIP != nil {
		nd.LocalAddr = &net.TCPAddr{IP: cfg.SourceIP}
	}
	if p.t.clientTLS != nil {
		d := tls.Dialer{NetDialer: &nd, Config: p.t.clientTLS}
		nc, err = d.DialContext(ctx, "tcp", addr)
	} else {
		nc, err = nd.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("transport: dial %d at %s: %w", p.id, addr, err)
	}
	if !p.setConn(nc) {
		nc.Close()
		return nil, 0, fmt.Errorf("transport: dial %d at %s: %w", p.id, addr, ErrClosed)
	}
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	c := NewConn(nc, cfg.MaxFrameSize)
	err = Handshake(c, Hello{ClusterID: cfg.ClusterID, Kind: KindPeer, From: cfg.MemberID, To: p.id})
	if err != nil {
		p.closeConn(c)
		if errors.Is(err, ErrRefused) {
			p.t.stats.refused.Add(1)
		}
		return nil, 0, fmt.Errorf("transport: dial %d at %s: %w", p.id, addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, gen, nil
}

// watch reads the outbound connection, on which the acceptor never writes
// after the handshake, so that a connection closed by the peer (a restart)
// is noticed at once instead of at the next write, which the kernel might
// accept and then lose.
func (p *peer) watch(c *Conn) <-chan struct{} {
	ch := make(chan struct{})
	p.t.wg.Add(1) // the writer goroutine holds the count above zero
	go func() {
		defer p.t.wg.Done()
		defer close(ch)
		_, _ = c.r.ReadByte()
	}()
	return ch
}

// write encodes batch into frames no larger than the maximum frame size and
// sends them with one flush. A message too large for any frame is dropped.
func (p *peer) write(c *Conn, batch []raft.Message, log *slog.Logger) error {
	maxSize := p.t.cfg.MaxFrameSize
	e := getEncoder()
	defer putEncoder(e)
	_ = c.NetConn().SetWriteDeadline(time.Now().Add(p.t.cfg.WriteTimeout))

	var frames, tooLarge int
	flushFrame := func() error {
		body, err := e.finish()
		if err == nil {
			err = c.WriteFrame(body)
		}
		e.begin(e.buf.b)
		frames++
		return err
	}
	e.begin(p.buf)
	for i := range batch {
		m := &batch[i]
		size, count := e.size(), e.count
		e.add(m)
		if e.size() <= maxSize {
			continue
		}
		e.truncate(size, count)
		if count > 0 {
			// Full: send what fits and start the next frame with m.
			if err := flushFrame(); err != nil {
				p.drop(len(batch) - tooLarge)
				return err
			}
			e.add(m)
			if e.size() <= maxSize {
				continue
			}
			e.truncate(batchHeaderSize, 0)
		}
		tooLarge++
		p.drop(1)
		log.Warn("message larger than the maximum frame size dropped", "type", m.Type, "max_frame_size", maxSize)
	}
	var err error
	if e.count > 0 {
		err = flushFrame()
	}
	if err == nil {
		err = c.Flush()
	}
	if cap(e.buf.b) <= maxRetainedBuffer {
		p.buf = e.buf.b[:0]
	} else {
		p.buf = nil
	}
	if err != nil {
		p.drop(len(batch) - tooLarge)
		return err
	}
	p.t.stats.frames.Add(uint64(frames))
	p.t.stats.sent.Add(uint64(len(batch) - tooLarge))
	return nil
}
