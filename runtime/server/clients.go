package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/node"
	"github.com/copycat-go/copycat/runtime/protocol"
	"github.com/copycat-go/copycat/runtime/session"
	"github.com/copycat-go/copycat/runtime/statemachine"
	"github.com/copycat-go/copycat/runtime/transport"
)

var now = time.Now

var sessionExpiredError = wire(runtime.ErrSessionExpired)

func wire(err error) *session.WireError { return session.ErrorFor(err, nil) }

// requestTimeout bounds how long a member works on one request; clients
// retry on their own deadlines.
const requestTimeout = 30 * time.Second

// outQueue bounds the messages waiting to be written to one client. A client
// that falls this far behind is disconnected (it reconnects and asks for what
// it missed) rather than allowed to stall the state machine.
const outQueue = 4096

// clientConn is one client connection.
type clientConn struct {
	s    *Server
	c    *transport.Conn
	out  chan []byte
	once sync.Once

	// guarded by s.mu
	session uint64 // attached session, 0 if none
	sent    uint64 // index of the last event batch pushed

	ctx    context.Context
	cancel context.CancelFunc
}

// ServeConn serves the client protocol on a connection whose handshake has
// not happened yet (in-memory pipes in tests; TCP clients arrive through the
// transport's handshake instead).
func (s *Server) ServeConn(nc net.Conn) {
	c := transport.NewConn(nc, transport.DefaultMaxFrameSize)
	_ = nc.SetDeadline(now().Add(5 * time.Second))
	h, err := transport.Accept(c, s.cfg.ClusterID, s.cfg.ID, func(k transport.Kind) bool { return k == transport.KindClient })
	if err != nil {
		s.log.Debug("client handshake failed", "err", err)
		nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	_ = h
	s.serveClient(c)
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.ServeConn(nc)
		}()
	}
}

// serveClient reads requests until the connection ends. Requests are
// started in arrival order (so a client's pipelined commands are proposed in
// sequence) and completed concurrently.
func (s *Server) serveClient(c *transport.Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	cc := &clientConn{s: s, c: c, ctx: ctx, cancel: cancel, out: make(chan []byte, outQueue)}
	go cc.writeLoop()
	s.mu.Lock()
	select {
	case <-s.stop:
		s.mu.Unlock()
		c.Close()
		return
	default:
	}
	s.allConns[cc] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.allConns, cc)
		cc.detachLocked()
		s.mu.Unlock()
		cc.close()
	}()
	for {
		body, err := c.ReadFrame()
		if err != nil {
			return
		}
		m, err := protocol.Decode(body)
		if err != nil {
			// A malformed request closes this connection only.
			s.log.Warn("closing client connection", "err", err)
			return
		}
		s.handle(cc, m)
	}
}

func (cc *clientConn) close() {
	cc.once.Do(func() {
		cc.cancel()
		cc.c.Close()
	})
}

// send queues a message for the writer; it never blocks.
func (cc *clientConn) send(m *protocol.Message) {
	b, err := protocol.Encode(m)
	if err != nil {
		cc.s.log.Error("encode response", "err", err)
		return
	}
	select {
	case cc.out <- b:
	case <-cc.ctx.Done():
	default:
		cc.s.log.Warn("client too slow; disconnecting", "session", cc.session)
		cc.close()
	}
}

// writeLoop writes queued messages, flushing once per burst.
func (cc *clientConn) writeLoop() {
	for {
		select {
		case b := <-cc.out:
			err := cc.c.WriteFrame(b)
			for more := true; more && err == nil; {
				select {
				case b := <-cc.out:
					err = cc.c.WriteFrame(b)
				default:
					more = false
				}
			}
			if err == nil {
				err = cc.c.Flush()
			}
			if err != nil {
				cc.close()
				return
			}
		case <-cc.ctx.Done():
			return
		}
	}
}

func (cc *clientConn) reply(req *protocol.Message, resp *protocol.Message) {
	resp.Type = protocol.Response
	resp.ID = req.ID
	cc.send(resp)
}

// fail answers a request this member could not complete. Only definitive
// outcomes (the session expired, the request is malformed) are failures; any
// other reason — not the leader, leadership lost, shutting down, timed out —
// tells the client to retry, at the leader if this member knows it. Retrying
// is always safe: commands apply exactly once.
func (cc *clientConn) fail(req *protocol.Message, err error) {
	resp := &protocol.Message{Status: protocol.Failed, Err: wire(err)}
	if !errors.Is(err, runtime.ErrSessionExpired) && !errors.Is(err, runtime.ErrBadRequest) {
		resp.Status = protocol.NotLeader
		resp.Leader = cc.s.leaderAddr()
		if resp.Leader == cc.s.cfg.Addr && !cc.s.IsLeader() {
			resp.Leader = ""
		}
		resp.Members = cc.s.memberAddrs()
	}
	cc.reply(req, resp)
}

// attach makes this connection receive the session's events after index
// `after`. Called with s.mu held.
func (cc *clientConn) attachLocked(sid, after uint64) {
	cc.detachLocked()
	cc.session, cc.sent = sid, after
	if cc.s.conns[sid] == nil {
		cc.s.conns[sid] = map[*clientConn]struct{}{}
	}
	cc.s.conns[sid][cc] = struct{}{}
	if sess, ok := cc.s.sm.Session(sid); ok {
		cc.pushEvents(sess)
	}
}

func (cc *clientConn) detach() { cc.session = 0 }

func (cc *clientConn) detachLocked() {
	if cc.session != 0 {
		delete(cc.s.conns[cc.session], cc)
		cc.session = 0
	}
}

// pushEvents sends the session's batches after the last one sent. Called
// with s.mu held, so batches go out in order.
func (cc *clientConn) pushEvents(sess *session.Session) {
	for _, b := range sess.EventsAfter(cc.sent) {
		cc.send(&protocol.Message{Type: protocol.Events, Session: sess.ID, Index: b.Index, PrevIndex: b.PrevIndex, Events: b.Events})
		cc.sent = b.Index
	}
}

// handle dispatches one request. It returns once the request is started;
// completion happens in its own goroutine where it must wait.
func (s *Server) handle(cc *clientConn, m *protocol.Message) {
	switch m.Type {
	case protocol.OpenSession:
		timeout := time.Duration(m.TimeoutNs)
		timeout = max(timeout, s.cfg.MinSessionTimeout)
		timeout = min(timeout, s.cfg.MaxSessionTimeout)
		s.proposeAndReply(cc, m, statemachine.Entry{Kind: statemachine.KindOpenSession, ClientID: m.ClientID, Timeout: timeout},
			func(o statemachine.Output, resp *protocol.Message) {
				resp.Session = o.Session
				resp.TimeoutNs = int64(timeout)
			})
	case protocol.CloseSession:
		s.proposeAndReply(cc, m, statemachine.Entry{Kind: statemachine.KindCloseSession, Session: m.Session}, nil)
	case protocol.OpenResource:
		s.proposeAndReply(cc, m, statemachine.Entry{Kind: statemachine.KindOpenResource, Session: m.Session, Type: m.ResType, Name: m.Name},
			func(o statemachine.Output, resp *protocol.Message) { resp.Resource = o.Resource })
	case protocol.DeleteResource:
		s.proposeAndReply(cc, m, statemachine.Entry{Kind: statemachine.KindDeleteResource, Session: m.Session, Resource: m.Resource}, nil)
	case protocol.Command:
		s.handleCommand(cc, m)
	case protocol.Query:
		go s.handleQuery(cc, m)
	case protocol.KeepAlive:
		s.handleKeepAlive(cc, m)
	case protocol.Attach, protocol.ResendEvents:
		go s.handleAttach(cc, m)
	case protocol.AdminStatus, protocol.AdminAdd, protocol.AdminRemove, protocol.AdminPromote, protocol.AdminDemote, protocol.AdminTransfer:
		go s.handleAdmin(cc, m)
	default:
		cc.fail(m, fmt.Errorf("%w: unexpected %s", runtime.ErrBadRequest, m.Type))
	}
}

// proposeAndReply proposes an entry and answers with its output.
func (s *Server) proposeAndReply(cc *clientConn, m *protocol.Message, e statemachine.Entry, fill func(statemachine.Output, *protocol.Message)) {
	n := s.currentNode()
	if n == nil || !s.IsLeader() {
		cc.fail(m, ErrNotLeader)
		return
	}
	data, err := e.Encode()
	if err != nil {
		cc.fail(m, err)
		return
	}
	ctx, cancel := context.WithTimeout(cc.ctx, requestTimeout)
	out, err := n.ProposeAsync(ctx, data)
	if err != nil {
		cancel()
		cc.fail(m, err)
		return
	}
	go func() {
		defer cancel()
		o := <-out
		if o.Err != nil {
			cc.fail(m, o.Err)
			return
		}
		outs, _ := o.Result.Value.([]statemachine.Output)
		resp := &protocol.Message{Index: o.Result.Index}
		if len(outs) > 0 {
			resp.Err = outs[0].Response.Err
			if resp.Err == nil && fill != nil {
				fill(outs[0], resp)
			}
		} else if err, ok := o.Result.Value.(error); ok {
			resp.Err = wire(fmt.Errorf("%w: %v", runtime.ErrBadRequest, err))
		}
		if resp.Err != nil {
			resp.Status = protocol.Failed
		}
		cc.reply(m, resp)
	}()
}

// handleCommand proposes a command, or answers a retry from the cache. The
// answer comes from the apply path (completeCommand); only a failure to get
// the entry committed is answered here, and the client retries then.
func (s *Server) handleCommand(cc *clientConn, m *protocol.Message) {
	n := s.currentNode()
	if n == nil || !s.IsLeader() {
		cc.fail(m, ErrNotLeader)
		return
	}
	w := &cmdWaiter{cc: cc, req: m}
	key := cmdKey{m.Session, m.Sequence}
	s.mu.Lock()
	sess, ok := s.sm.Session(m.Session)
	if !ok || sess.State != runtime.SessionOpen {
		s.mu.Unlock()
		cc.fail(m, runtime.ErrSessionExpired)
		return
	}
	if r, ok := sess.Cached(m.Sequence); ok {
		s.mu.Unlock()
		cc.reply(m, commandResponse(r))
		return
	}
	s.cmdWaiters[key] = append(s.cmdWaiters[key], w)
	s.mu.Unlock()
	e := statemachine.Entry{Kind: statemachine.KindCommand, Session: m.Session, Sequence: m.Sequence, Resource: m.Resource, Op: m.Op, Args: m.Args, CommandAck: m.CommandAck}
	data, err := e.Encode()
	if err == nil {
		err = n.ProposeFunc(cc.ctx, data, func(_ node.Result, err error) {
			if err != nil && s.dropWaiter(key, w) {
				// The entry may still commit under a new leader; the
				// client's retry there is answered from the session's cache.
				cc.fail(m, err)
			}
		})
	}
	if err != nil && s.dropWaiter(key, w) {
		cc.fail(m, err)
	}
}

// dropWaiter removes a waiter and reports whether it was still waiting.
func (s *Server) dropWaiter(key cmdKey, w *cmdWaiter) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.cmdWaiters[key]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			if len(ws) == 0 {
				delete(s.cmdWaiters, key)
			} else {
				s.cmdWaiters[key] = ws
			}
			return true
		}
	}
	return false
}

func commandResponse(r session.Response) *protocol.Message {
	resp := &protocol.Message{Index: r.Index, EventIndex: r.EventIndex, Result: r.Result, Err: r.Err}
	if r.Err != nil {
		resp.Status = protocol.Failed
	}
	return resp
}

// handleQuery runs a query at its consistency level once this member has
// applied what the query must observe.
func (s *Server) handleQuery(cc *clientConn, m *protocol.Message) {
	ctx, cancel := context.WithTimeout(cc.ctx, requestTimeout)
	defer cancel()
	n := s.currentNode()
	if n == nil {
		cc.fail(m, ErrNotLeader)
		return
	}
	minIndex := m.Index
	switch m.Consistency {
	case runtime.Sequential:
	case runtime.LinearizableLease, runtime.Linearizable, runtime.Default:
		if !s.IsLeader() {
			cc.fail(m, ErrNotLeader)
			return
		}
		idx, err := n.ReadIndex(ctx, m.Consistency == runtime.LinearizableLease)
		if err != nil {
			cc.fail(m, err)
			return
		}
		minIndex = max(minIndex, idx)
	default:
		cc.fail(m, fmt.Errorf("%w: consistency %d", runtime.ErrBadRequest, m.Consistency))
		return
	}
	for {
		s.mu.Lock()
		ready := s.sm.Index() >= minIndex
		var sess *session.Session
		if ready && m.Session != 0 {
			var ok bool
			sess, ok = s.sm.Session(m.Session)
			if ok {
				// Program order: the query follows the client's earlier commands.
				ready = sess.CommandSeq >= m.Sequence
			} else if s.sm.Index() >= m.Session {
				s.mu.Unlock()
				cc.fail(m, runtime.ErrSessionExpired)
				return
			} else {
				ready = false
			}
		}
		if ready {
			r := s.sm.Query(m.Session, m.Resource, m.Op, m.Args)
			resp := commandResponse(r)
			if sess != nil {
				resp.EventIndex = sess.EventIndex
			}
			s.mu.Unlock()
			cc.reply(m, resp)
			return
		}
		wait := s.appliedCh
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			cc.fail(m, ctx.Err())
			return
		}
	}
}

// handleAttach makes the connection receive the session's events, resending
// those after the client's last one.
func (s *Server) handleAttach(cc *clientConn, m *protocol.Message) {
	ctx, cancel := context.WithTimeout(cc.ctx, requestTimeout)
	defer cancel()
	for {
		s.mu.Lock()
		sess, ok := s.sm.Session(m.Session)
		if ok && sess.State == runtime.SessionOpen {
			cc.attachLocked(m.Session, m.EventAck)
			s.mu.Unlock()
			cc.reply(m, &protocol.Message{Session: m.Session})
			return
		}
		if s.sm.Index() >= m.Session {
			s.mu.Unlock()
			cc.fail(m, runtime.ErrSessionExpired)
			return
		}
		// This member has not applied the session's opening yet.
		wait := s.appliedCh
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			cc.fail(m, ctx.Err())
			return
		}
	}
}
