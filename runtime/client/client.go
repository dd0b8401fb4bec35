package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/protocol"
)

// ErrClosed is returned by calls on a closed client.
var ErrClosed = errors.New("client: closed")

// Client is a connection to a cluster with one session. It is safe for
// concurrent use; every resource opened through it shares the session.
type Client struct {
	opts options

	mu        sync.Mutex
	state     State
	addrs     []string
	hint      string // believed leader
	session   uint64
	timeout   time.Duration
	conn      *conn
	connWake  chan struct{} // signals the connect loop
	nextID    uint64
	seq       uint64          // last command sequence assigned
	ackSeq    uint64          // all commands up to it have their response
	gotSeq    map[uint64]bool // responses received above ackSeq
	ops       map[uint64]*op  // unanswered operations by request ID
	lastOp    *op             // the newest ordered operation (program order)
	maxIndex  uint64          // highest log index seen in a response
	confirmed time.Time       // send time of the last keep-alive the cluster answered
	resources map[uint64][]*Resource
	sessionCh chan struct{} // closed once the session is open (or failed)
	sessionEr error

	events   eventState
	closed   chan struct{}
	loops    sync.WaitGroup
	stopOnce sync.Once
}

// op is one request until its response is delivered.
type op struct {
	id      uint64
	msg     *protocol.Message
	ordered bool
	prev    *op
	done    chan struct{}
	resp    *protocol.Message
	err     error
	settled bool // a response or failure was recorded
	// deferred: the command reached the log ahead of an earlier one of the
	// session and was refused; it is resent once those are answered.
	deferred bool
}

// Connect opens a session with the cluster reachable at addrs. It returns
// once the session is open, or when ctx ends.
func Connect(ctx context.Context, addrs []string, opts ...Option) (*Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("client: no member addresses")
	}
	o := defaultOptions()
	for _, f := range opts {
		f(&o)
	}
	c := &Client{
		opts:      o,
		state:     StateSuspended,
		addrs:     slices.Clone(addrs),
		connWake:  make(chan struct{}, 1),
		gotSeq:    map[uint64]bool{},
		ops:       map[uint64]*op{},
		resources: map[uint64][]*Resource{},
		sessionCh: make(chan struct{}),
		closed:    make(chan struct{}),
	}
	c.events.init(c)
	c.loops.Add(2)
	go c.connectLoop()
	go c.keepAliveLoop()
	select {
	case <-c.sessionCh:
		if c.sessionEr != nil {
			c.shutdown(StateClosed, c.sessionEr)
			return nil, c.sessionEr
		}
		return c, nil
	case <-ctx.Done():
		c.shutdown(StateClosed, ErrClosed)
		return nil, fmt.Errorf("client: connect: %w", ctx.Err())
	}
}

// SessionID returns the session's ID.
func (c *Client) SessionID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// SessionTimeout returns the timeout the cluster granted the session.
func (c *Client) SessionTimeout() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timeout
}

// State returns the client's state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Confirmed returns when the last keep-alive the cluster acknowledged was
// sent: the cluster cannot expire the session before Confirmed() plus the
// session timeout (measured on its own clock). Locks use it to know when
// they may have lost their lock.
func (c *Client) Confirmed() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.confirmed
}

func (c *Client) setStateLocked(s State) {
	if c.state == s || c.state == StateExpired || c.state == StateClosed {
		return
	}
	c.state = s
	if f := c.opts.onState; f != nil {
		go f(s)
	}
}

// Close closes the session and the client. Operations in flight fail.
func (c *Client) Close() error {
	c.mu.Lock()
	open := c.state == StateConnected || c.state == StateSuspended
	sid := c.session
	c.mu.Unlock()
	if open && sid != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = c.call(ctx, &protocol.Message{Type: protocol.CloseSession, Session: sid}, false)
		cancel()
	}
	c.shutdown(StateClosed, ErrClosed)
	return nil
}

// shutdown ends the client in a final state, failing every operation.
func (c *Client) shutdown(final State, err error) {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.setStateLocked(final)
		c.state = final
		close(c.closed)
		if c.conn != nil {
			c.conn.close()
			c.conn = nil
		}
		var now []*op
		for _, o := range c.ops {
			if c.settleLocked(o, nil, err) {
				now = append(now, o)
			}
		}
		c.mu.Unlock()
		for _, o := range now {
			close(o.done)
		}
		c.events.stop()
		c.loops.Wait()
	})
}

// expire reports that the cluster expired the session. It may be called
// with c.mu held, so it takes no lock itself.
func (c *Client) expire(sid uint64) {
	c.opts.logger.Warn("session expired", "session", sid)
	go c.shutdown(StateExpired, runtime.ErrSessionExpired)
}

// call sends a request and waits for its response. Ordered requests are
// delivered in program order with commands and queries.
func (c *Client) call(ctx context.Context, m *protocol.Message, ordered bool) (*protocol.Message, error) {
	o, err := c.submit(m, ordered)
	if err != nil {
		return nil, err
	}
	select {
	case <-o.done:
		return o.resp, o.err
	case <-ctx.Done():
		if m.Type != protocol.Command {
			// Nothing waits on a query or a control request: stop retrying
			// it. A command must finish (later ones of the session wait for
			// its sequence number), so it carries on in the background.
			c.mu.Lock()
			now := c.settleLocked(o, nil, ctx.Err())
			c.mu.Unlock()
			if now {
				close(o.done)
			}
		}
		return nil, ctx.Err()
	}
}

func (c *Client) submit(m *protocol.Message, ordered bool) (*op, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case StateExpired:
		return nil, runtime.ErrSessionExpired
	case StateClosed:
		return nil, ErrClosed
	}
	c.nextID++
	o := &op{id: c.nextID, msg: m, ordered: ordered, done: make(chan struct{})}
	m.ID = o.id
	if m.Session == 0 && m.Type != protocol.OpenSession {
		m.Session = c.session
	}
	switch m.Type {
	case protocol.Command:
		c.seq++
		m.Sequence = c.seq
		m.CommandAck = c.ackSeq
	case protocol.Query:
		m.Sequence = c.seq
		m.Index = c.maxIndex
	}
	if ordered {
		o.prev = c.lastOp
		c.lastOp = o
	}
	c.ops[o.id] = o
	if c.conn != nil {
		c.conn.send(m)
	}
	return o, nil
}

// settleLocked records an operation's outcome and delivers it once every
// earlier ordered operation was delivered and (for responses that follow
// events) once those events were delivered. It returns true when nothing
// is left to wait for: the caller then delivers the operation (closes
// o.done) once it has released c.mu, so that the woken caller, whose next
// step is often another call, does not find the lock held and sleep on it.
func (c *Client) settleLocked(o *op, resp *protocol.Message, err error) (deliverNow bool) {
	if o.settled {
		return false
	}
	o.settled = true
	o.resp, o.err = resp, err
	delete(c.ops, o.id)
	if o.msg.Type == protocol.Command && resp != nil {
		c.gotSeq[o.msg.Sequence] = true
		for c.gotSeq[c.ackSeq+1] {
			delete(c.gotSeq, c.ackSeq+1)
			c.ackSeq++
		}
		c.resendDeferredLocked()
	}
	if resp != nil && resp.Index > c.maxIndex {
		c.maxIndex = resp.Index
	}
	var eventIndex uint64
	if resp != nil && err == nil {
		eventIndex = resp.EventIndex
	}
	prev := o.prev
	o.prev = nil
	if (prev == nil || isClosed(prev.done)) && (eventIndex == 0 || c.events.deliveredThrough(eventIndex)) {
		// Nothing to wait for (the usual case): the caller delivers it,
		// which spares every operation a goroutine and the woken caller a
		// hand-off through it.
		return true
	}
	spawnDelivery(func() {
		if prev != nil {
			select {
			case <-prev.done:
			case <-c.closed:
			}
		}
		if eventIndex > 0 {
			c.events.waitDelivered(eventIndex)
		}
		close(o.done)
	})
	return false
}

// spawnDelivery runs an operation's delayed delivery on its own goroutine;
// tests replace it to count how often delivery cannot happen at once.
var spawnDelivery = func(f func()) { go f() }

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// handleResponse is called by a connection's reader.
func (c *Client) handleResponse(cn *conn, m *protocol.Message) {
	c.mu.Lock()
	o, now := c.handleResponseLocked(cn, m)
	c.mu.Unlock()
	if now {
		close(o.done)
	}
}

// handleResponseLocked records a response; it returns the operation to
// deliver once c.mu is released, if any (see settleLocked).
func (c *Client) handleResponseLocked(cn *conn, m *protocol.Message) (*op, bool) {
	o, ok := c.ops[m.ID]
	if !ok {
		return nil, false // answered already, or given up
	}
	switch m.Status {
	case protocol.NotLeader:
		// Retry at the leader: the operation stays pending and is resent
		// on the next connection.
		c.learnMembers(m.Leader, m.Members)
		if c.conn == cn {
			c.dropConnLocked(cn)
		}
		return nil, false
	case protocol.Failed:
		err := protocol.ErrorOf(m.Err, nil)
		if errors.Is(err, runtime.ErrSessionExpired) {
			now := c.settleLocked(o, nil, runtime.ErrSessionExpired)
			if o.msg.Type != protocol.OpenSession {
				c.expire(c.session)
			}
			return o, now
		}
		if errors.Is(err, runtime.ErrNoLeader) {
			if c.conn == cn {
				c.dropConnLocked(cn) // resent on the next connection
			}
			return nil, false
		}
		if errors.Is(err, runtime.ErrCommandOutOfOrder) && o.msg.Type == protocol.Command {
			o.deferred = true
			c.resendDeferredLocked()
			return nil, false
		}
	}
	return o, c.settleLocked(o, m, nil)
}

// resendDeferredLocked resends the refused commands whose predecessors all
// have their responses now: the state machine runs a session's commands
// strictly in sequence order, each at its own index.
func (c *Client) resendDeferredLocked() {
	for _, o := range c.ops {
		if o.deferred && o.msg.Sequence <= c.ackSeq+1 {
			o.deferred = false
			if c.conn != nil {
				c.conn.send(o.msg)
			}
		}
	}
}

func (c *Client) learnMembers(leader string, members []string) {
	if leader != "" {
		c.hint = leader
	}
	for _, a := range members {
		if a != "" && !slices.Contains(c.addrs, a) {
			c.addrs = append(c.addrs, a)
		}
	}
}

// dropConnLocked abandons a connection; the connect loop makes a new one.
func (c *Client) dropConnLocked(cn *conn) {
	cn.close()
	if c.conn == cn {
		c.conn = nil
		select {
		case c.connWake <- struct{}{}:
		default:
		}
	}
}

// connectLoop keeps a connection to the leader, opening the session on the
// first one and attaching it on every later one.
func (c *Client) connectLoop() {
	defer c.loops.Done()
	backoff := c.opts.backoffMin
	next := 0
	for {
		c.mu.Lock()
		need := c.conn == nil
		addr := c.hint
		c.hint = ""
		if addr == "" {
			addr = c.addrs[next%len(c.addrs)]
			next++
		}
		c.mu.Unlock()
		if need {
			if err := c.connect(addr); err != nil {
				c.opts.logger.Debug("connect failed", "addr", addr, "err", err)
				select {
				case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff)+1))):
				case <-c.closed:
					return
				}
				backoff = min(2*backoff, c.opts.backoffMax)
				continue
			}
			backoff = c.opts.backoffMin
		}
		select {
		case <-c.connWake:
		case <-c.closed:
			return
		}
	}
}

// connect dials addr, then opens or attaches the session, then resends
// every pending operation in order.
func (c *Client) connect(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cn, err := c.dial(ctx, addr)
	if err != nil {
		return err
	}
	c.mu.Lock()
	sid := c.session
	c.mu.Unlock()
	if sid == 0 {
		// The cluster starts the session's timeout when it applies the
		// opening, after this moment: count the safe bound from here.
		sent := time.Now()
		resp, err := cn.roundTrip(ctx, &protocol.Message{Type: protocol.OpenSession, ClientID: c.opts.clientID, TimeoutNs: int64(c.opts.sessionTimeout)})
		if err == nil && resp.Status == protocol.NotLeader {
			c.mu.Lock()
			c.learnMembers(resp.Leader, resp.Members)
			c.mu.Unlock()
			err = errors.New("not the leader")
		} else if err == nil && resp.Status != protocol.OK {
			err = protocol.ErrorOf(resp.Err, nil)
		}
		if err != nil {
			cn.close()
			return err
		}
		c.mu.Lock()
		c.session, c.timeout = resp.Session, time.Duration(resp.TimeoutNs)
		c.confirmed = sent
		sid = c.session
		c.mu.Unlock()
	}
	after := c.events.received()
	resp, err := cn.roundTrip(ctx, &protocol.Message{Type: protocol.Attach, Session: sid, EventAck: after})
	if err != nil {
		cn.close()
		return err
	}
	if resp.Status == protocol.Failed {
		cn.close()
		if errors.Is(protocol.ErrorOf(resp.Err, nil), runtime.ErrSessionExpired) {
			c.expire(sid)
			return runtime.ErrSessionExpired
		}
		return protocol.ErrorOf(resp.Err, nil)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		cn.close()
		return ErrClosed
	default:
	}
	c.conn = cn
	cn.start()
	pending := make([]*op, 0, len(c.ops))
	for _, o := range c.ops {
		pending = append(pending, o)
	}
	slices.SortFunc(pending, func(a, b *op) int { return int(a.id - b.id) })
	for _, o := range pending {
		cn.send(o.msg)
	}
	select {
	case <-c.sessionCh:
	default:
		close(c.sessionCh)
	}
	c.setStateLocked(StateConnected)
	return nil
}

// keepAliveLoop keeps the session alive and acknowledges what arrived, so
// members can trim their response caches and event queues.
func (c *Client) keepAliveLoop() {
	defer c.loops.Done()
	select {
	case <-c.sessionCh:
	case <-c.closed:
		return
	}
	for {
		c.mu.Lock()
		interval := max(c.timeout/4, 10*time.Millisecond)
		c.mu.Unlock()
		select {
		case <-time.After(interval):
		case <-c.closed:
			return
		}
		c.mu.Lock()
		m := &protocol.Message{Type: protocol.KeepAlive, Session: c.session, CommandAck: c.ackSeq, EventAck: c.events.received()}
		timeout := c.timeout
		c.mu.Unlock()
		sent := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout/2)
		resp, err := c.call(ctx, m, false)
		cancel()
		c.mu.Lock()
		if err == nil && resp.Status == protocol.OK {
			c.confirmed = sent
			c.learnMembers(resp.Leader, resp.Members)
			c.setStateLocked(StateConnected)
		} else if time.Since(c.confirmed) > timeout/2 {
			c.setStateLocked(StateSuspended)
		}
		c.mu.Unlock()
	}
}

// Open opens (creating it if needed) the resource of the given type and name.
func (c *Client) Open(ctx context.Context, typ *runtime.ResourceType, name string) (*Resource, error) {
	resp, err := c.call(ctx, &protocol.Message{Type: protocol.OpenResource, ResType: typ.Name, Name: name}, true)
	if err != nil {
		return nil, err
	}
	if resp.Status == protocol.Failed {
		return nil, protocol.ErrorOf(resp.Err, typ)
	}
	r := &Resource{c: c, typ: typ, id: resp.Resource, name: name, listeners: map[runtime.EventCode][]*listener{}}
	c.mu.Lock()
	c.resources[r.id] = append(c.resources[r.id], r)
	c.mu.Unlock()
	return r, nil
}

func wireErr(resp *protocol.Message, typ *runtime.ResourceType) error {
	if resp.Status == protocol.Failed || resp.Err != nil {
		return protocol.ErrorOf(resp.Err, typ)
	}
	return nil
}
