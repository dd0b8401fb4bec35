package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

// Defaults for TCPConfig fields left zero.
const (
	DefaultQueueSize        = 4096
	DefaultDialTimeout      = 2 * time.Second
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultBackoffMin       = 20 * time.Millisecond
	DefaultBackoffMax       = 2 * time.Second
)

// minMaxFrameSize is the smallest MaxFrameSize accepted: below it a single
// ordinary message might not fit.
const minMaxFrameSize = 1 << 10

// TCPConfig configures a TCP transport. Zero fields take the defaults above.
type TCPConfig struct {
	// ClusterID names the cluster; connections from members of another
	// cluster are refused. Required.
	ClusterID string
	// MemberID is this member's ID, sent in every hello and checked against
	// the ID dialers mean to reach. Required, non-zero.
	MemberID uint64
	// Listener accepts connections from peers (and clients, see AcceptConn).
	// The transport owns it and closes it on Close. If nil, the transport
	// listens on ListenAddr.
	Listener net.Listener
	// ListenAddr is the TCP address to listen on when Listener is nil, for
	// example "127.0.0.1:0".
	ListenAddr string
	// Handler receives every batch read from a peer, on that connection's
	// goroutine. Required.
	Handler Handler
	// Unreachable, if set, is called with a peer's ID when connecting to it
	// fails or its connection breaks, so the driver can report it to the
	// Raft core (which then probes it gently instead of streaming to it).
	// It is called from the peer's writer goroutine: it must not block for
	// long nor call Close.
	Unreachable func(id uint64)
	// AcceptConn, if set, receives accepted connections whose hello has a
	// kind other than KindPeer, after the handshake succeeded (the same
	// cluster ID is required of them). It runs on the connection's
	// goroutine and may serve the connection until it returns; the
	// transport closes conn when AcceptConn returns and when the transport
	// is closed, and Close waits for AcceptConn to return. If nil, such
	// connections are refused.
	AcceptConn func(hello Hello, conn *Conn)
	// MaxFrameSize bounds the body of a frame, read or written
	// (DefaultMaxFrameSize). A message that cannot fit alone in a frame is
	// dropped.
	MaxFrameSize int
	// QueueSize bounds the messages queued per peer (DefaultQueueSize);
	// Send drops messages beyond it.
	QueueSize int
	// DialTimeout bounds connecting to a peer, TLS and hello included.
	DialTimeout time.Duration
	// SourceIP, if set, is the local address connections to peers are made
	// from: the member's own IP, so that firewalls (and partition tests with
	// iptables) see which member a connection comes from.
	SourceIP net.IP
	// HandshakeTimeout bounds an accepted connection's TLS handshake and
	// hello.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds writing one batch to a peer; a peer that stops
	// reading is then treated as unreachable.
	WriteTimeout time.Duration
	// BackoffMin and BackoffMax bound the exponential, jittered delay between
	// failed attempts to connect to a peer.
	BackoffMin, BackoffMax time.Duration
	// TLS, if set, secures every connection with mutual TLS: the same
	// configuration serves as server (client certificates are required and
	// verified against ClientCAs, or RootCAs if ClientCAs is nil) and as
	// client (the server certificate is verified against RootCAs, with the
	// peer address's host as ServerName unless ServerName is set).
	TLS *tls.Config
	// Logger receives connection events (slog.Default() if nil).
	Logger *slog.Logger
}

func (c *TCPConfig) setDefaults() {
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// validate reports every problem at once.
func (c *TCPConfig) validate() error {
	var errs []error
	if c.ClusterID == "" {
		errs = append(errs, errors.New("cluster ID must not be empty"))
	}
	if c.MemberID == 0 {
		errs = append(errs, errors.New("member ID must not be 0"))
	}
	if c.Listener == nil && c.ListenAddr == "" {
		errs = append(errs, errors.New("a listener or a listen address is required"))
	}
	if c.Handler == nil {
		errs = append(errs, errors.New("handler must not be nil"))
	}
	if c.MaxFrameSize < minMaxFrameSize {
		errs = append(errs, fmt.Errorf("max frame size must be at least %d bytes", minMaxFrameSize))
	}
	if c.QueueSize < 0 {
		errs = append(errs, errors.New("queue size must not be negative"))
	}
	if c.DialTimeout < 0 || c.HandshakeTimeout < 0 || c.WriteTimeout < 0 {
		errs = append(errs, errors.New("timeouts must not be negative"))
	}
	if c.BackoffMin < 0 || c.BackoffMax < c.BackoffMin {
		errs = append(errs, errors.New("backoff must satisfy 0 <= min <= max"))
	}
	if c.TLS != nil && len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil && c.TLS.GetClientCertificate == nil {
		errs = append(errs, errors.New("TLS needs a certificate: connections use mutual TLS"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("transport: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// TCP is the Transport between members over TCP: one outbound connection per
// peer, owned by a writer goroutine that batches everything queued into
// frames, and one reader goroutine per accepted connection. Create it with
// NewTCP; it is safe for concurrent use.
type TCP struct {
	cfg       TCPConfig
	ln        net.Listener
	log       *slog.Logger
	serverTLS *tls.Config
	clientTLS *tls.Config
	ctx       context.Context // canceled by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu      sync.RWMutex
	closed  bool
	peers   map[uint64]*peer
	conns   map[net.Conn]struct{} // accepted connections, closed by Close
	inbound map[uint64]net.Conn   // the live peer connection from each member

	stats struct {
		sent, dropped, frames, reconnects      atomic.Uint64
		received, framesReceived, bad, refused atomic.Uint64
	}
}

var _ Transport = (*TCP)(nil)

// NewTCP validates cfg, starts listening and returns the transport. Peers
// are added with SetPeer.
func NewTCP(cfg TCPConfig) (*TCP, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		if cfg.Listener != nil {
			cfg.Listener.Close()
		}
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			return nil, fmt.Errorf("transport: listen on %s: %w", cfg.ListenAddr, err)
		}
	}
	t := &TCP{
		cfg:     cfg,
		ln:      ln,
		log:     cfg.Logger.With("component", "transport", "member", cfg.MemberID),
		peers:   make(map[uint64]*peer),
		conns:   make(map[net.Conn]struct{}),
		inbound: make(map[uint64]net.Conn),
	}
	if cfg.TLS != nil {
		t.serverTLS = cfg.TLS.Clone()
		t.serverTLS.ClientAuth = tls.RequireAndVerifyClientCert
		if t.serverTLS.ClientCAs == nil {
			t.serverTLS.ClientCAs = t.serverTLS.RootCAs
		}
		t.clientTLS = cfg.TLS.Clone()
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// Addr returns the address the transport listens on.
func (t *TCP) Addr() net.Addr { return t.ln.Addr() }

// Stats returns a snapshot of the transport's counters.
func (t *TCP) Stats() Stats {
	s := &t.stats
	return Stats{
		Sent: s.sent.Load(), Dropped: s.dropped.Load(), Frames: s.frames.Load(),
		Reconnects: s.reconnects.Load(), Received: s.received.Load(),
		FramesReceived: s.framesReceived.Load(), BadFrames: s.bad.Load(), Refused: s.refused.Load(),
	}
}

// Send queues each message for its To peer; see Transport.
func (t *TCP) Send(msgs []raft.Message) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for i := range msgs {
		p := t.peers[msgs[i].To]
		if p == nil {
			t.stats.dropped.Add(1)
			continue
		}
		p.enqueue(&msgs[i])
	}
}

// SetPeer adds a peer or changes its address; see Transport.
func (t *TCP) SetPeer(id uint64, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	if p := t.peers[id]; p != nil {
		p.setAddr(addr)
		return
	}
	p := newPeer(t, id, addr)
	t.peers[id] = p
	t.wg.Add(1)
	go p.run()
}

// RemovePeer forgets a peer; see Transport.
func (t *TCP) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// Close closes the listener and every connection, and waits for every
// goroutine of the transport to exit.
func (t *TCP) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	peers := t.peers
	t.peers = nil
	conns := make([]net.Conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()

	t.cancel()
	err := t.ln.Close()
	for _, p := range peers {
		p.stop()
	}
	for _, c := range conns {
		c.Close()
	}
	t.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("transport: close listener: %w", err)
	}
	return nil
}

func (t *TCP) unreachable(id uint64) {
	if t.cfg.Unreachable != nil {
		t.cfg.Unreachable(id)
	}
}

func (t *TCP) acceptLoop() {
	defer t.wg.Done()
	var delay time.Duration
	for {
		nc, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				t.log.Error("listener closed: no longer accepting connections", "err", err)
				return
			}
			// Out of file descriptors and the like: back off and retry,
			// as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Warn("accept failed; retrying", "err", err, "delay", delay)
			if !sleepCtx(t.ctx, delay) {
				return
			}
			continue
		}
		delay = 0
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			nc.Close()
			return
		}
		t.conns[nc] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serve(nc)
	}
}

// serve runs the acceptor's side of a connection: TLS, hello, then either
// reading peer frames or handing the connection to AcceptConn.
func (t *TCP) serve(raw net.Conn) {
	defer t.wg.Done()
	defer func() {
		raw.Close()
		t.mu.Lock()
		delete(t.conns, raw)
		t.mu.Unlock()
	}()
	log := t.log.With("remote", raw.RemoteAddr().String())

	_ = raw.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	nc := raw
	if t.serverTLS != nil {
		tc := tls.Server(raw, t.serverTLS)
		if err := tc.HandshakeContext(t.ctx); err != nil {
			t.stats.refused.Add(1)
			log.Warn("TLS handshake failed; closing connection", "err", err)
			return
		}
		nc = tc
	}
	c := NewConn(nc, maxHandshakeFrame)
	hello, err := Accept(c, t.cfg.ClusterID, t.cfg.MemberID, func(k Kind) bool {
		return k == KindPeer || t.cfg.AcceptConn != nil
	})
	if err != nil {
		if errors.Is(err, ErrRefused) {
			t.stats.refused.Add(1)
			log.Warn("refused connection", "err", err, "cluster", hello.ClusterID,
				"kind", hello.Kind, "from", hello.From, "to", hello.To)
		} else {
			log.Warn("no hello; closing connection", "err", err)
		}
		return
	}
	_ = raw.SetDeadline(time.Time{})
	c.SetMaxFrameSize(t.cfg.MaxFrameSize)
	if hello.Kind != KindPeer {
		log.Debug("handing connection over", "kind", hello.Kind)
		t.cfg.AcceptConn(hello, c)
		return
	}
	t.readPeer(hello.From, raw, c, log.With("peer", hello.From))
}

// readPeer reads frames from an accepted peer connection until it fails,
// handing each decoded batch to the Handler. A newer connection from the same
// member replaces this one: the dialer only ever uses its latest.
func (t *TCP) readPeer(from uint64, raw net.Conn, c *Conn, log *slog.Logger) {
	t.mu.Lock()
	if old := t.inbound[from]; old != nil {
		old.Close()
	}
	t.inbound[from] = raw
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		if t.inbound[from] == raw {
			delete(t.inbound, from)
		}
		t.mu.Unlock()
	}()
	log.Debug("peer connected")
	for {
		body, err := c.ReadFrame()
		if err != nil {
			switch {
			case errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrTruncated):
				t.stats.bad.Add(1)
				log.Warn("bad frame; closing connection", "err", err)
			case err == io.EOF || errors.Is(err, net.ErrClosed) || t.ctx.Err() != nil:
				log.Debug("peer connection closed", "err", err)
			default:
				log.Warn("peer connection failed", "err", err)
			}
			return
		}
		t.stats.framesReceived.Add(1)
		msgs, err := DecodeBatch(body)
		if err != nil {
			t.stats.bad.Add(1)
			log.Warn("bad frame; closing connection", "err", err)
			return
		}
		t.stats.received.Add(uint64(len(msgs)))
		t.cfg.Handler(msgs)
	}
}

// sleepCtx waits for d or ctx, reporting whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
