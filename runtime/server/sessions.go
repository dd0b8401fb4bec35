package server

import (
	"context"
	"time"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/protocol"
	"github.com/copycat-go/copycat/runtime/statemachine"
)

// kaRequest is one client's keep-alive waiting to be batched.
type kaRequest struct {
	cc *clientConn
	m  *protocol.Message
}

// handleKeepAlive queues a keep-alive for the next batch entry. The leader
// notes when it heard from the session: expiry counts from here.
func (s *Server) handleKeepAlive(cc *clientConn, m *protocol.Message) {
	if !s.IsLeader() {
		cc.fail(m, ErrNotLeader)
		return
	}
	s.mu.Lock()
	if _, ok := s.lastSeen[m.Session]; ok || s.sessionOpen(m.Session) {
		s.lastSeen[m.Session] = now()
	}
	s.mu.Unlock()
	select {
	case s.keepAlive <- &kaRequest{cc: cc, m: m}:
	case <-s.stop:
	}
}

func (s *Server) sessionOpen(id uint64) bool {
	sess, ok := s.sm.Session(id)
	return ok && sess.State == runtime.SessionOpen
}

// keepAliveLoop batches the keep-alives of many sessions into one entry.
func (s *Server) keepAliveLoop() {
	defer s.wg.Done()
	for {
		var batch []*kaRequest
		select {
		case r := <-s.keepAlive:
			batch = append(batch, r)
		case <-s.stop:
			return
		}
	drain:
		for len(batch) < 4096 {
			select {
			case r := <-s.keepAlive:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.proposeKeepAlives(batch)
	}
}

func (s *Server) proposeKeepAlives(batch []*kaRequest) {
	n := s.currentNode()
	e := statemachine.Entry{Kind: statemachine.KindKeepAlive}
	for _, r := range batch {
		e.KeepAlives = append(e.KeepAlives, statemachine.KeepAlive{Session: r.m.Session, CommandAck: r.m.CommandAck, EventAck: r.m.EventAck})
	}
	data, err := e.Encode()
	if err != nil || n == nil {
		for _, r := range batch {
			r.cc.fail(r.m, ErrNotLeader)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	out, err := n.ProposeAsync(ctx, data)
	if err != nil {
		cancel()
		for _, r := range batch {
			r.cc.fail(r.m, err)
		}
		return
	}
	go func() {
		defer cancel()
		o := <-out
		if o.Err != nil {
			for _, r := range batch {
				r.cc.fail(r.m, o.Err)
			}
			return
		}
		outs, _ := o.Result.Value.([]statemachine.Output)
		bySession := map[uint64]statemachine.Output{}
		for _, out := range outs {
			bySession[out.Session] = out
		}
		leader, members := s.leaderAddr(), s.memberAddrs()
		for _, r := range batch {
			out := bySession[r.m.Session]
			resp := &protocol.Message{Session: r.m.Session, Index: o.Result.Index, EventIndex: out.Response.EventIndex,
				Err: out.Response.Err, Leader: leader, Members: members}
			if out.Response.Err != nil {
				resp.Status = protocol.Failed
			}
			r.cc.reply(r.m, resp)
		}
	}()
}

// expiryLoop expires sessions the leader has not heard from for their
// timeout. A member that just became leader first gives every session a
// fresh timeout: it cannot know when the old leader last heard from them.
func (s *Server) expiryLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.TickInterval * 5)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.stop:
			return
		}
		leader := s.IsLeader()
		var expire []uint64
		s.mu.Lock()
		if leader && !s.wasLeader {
			nowT := now()
			for _, id := range s.sm.SessionIDs() {
				s.lastSeen[id] = nowT
			}
		}
		s.wasLeader = leader
		if leader {
			nowT := now()
			for _, id := range s.sm.SessionIDs() {
				sess, _ := s.sm.Session(id)
				if sess.State != runtime.SessionOpen || s.expiring[id] {
					continue
				}
				seen, ok := s.lastSeen[id]
				if !ok {
					s.lastSeen[id] = nowT
					continue
				}
				if nowT.Sub(seen) > sess.Timeout {
					s.expiring[id] = true
					expire = append(expire, id)
				}
			}
		}
		s.mu.Unlock()
		for _, id := range expire {
			s.expireSession(id)
		}
	}
}

func (s *Server) expireSession(id uint64) {
	n := s.currentNode()
	e := statemachine.Entry{Kind: statemachine.KindCloseSession, Session: id, Expired: true}
	data, err := e.Encode()
	if err != nil || n == nil {
		return
	}
	s.log.Info("expiring session", "session", id)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	out, err := n.ProposeAsync(ctx, data)
	if err != nil {
		cancel()
		s.mu.Lock()
		delete(s.expiring, id)
		s.mu.Unlock()
		return
	}
	go func() {
		defer cancel()
		if o := <-out; o.Err != nil {
			s.mu.Lock()
			delete(s.expiring, id)
			s.mu.Unlock()
		}
	}()
}
