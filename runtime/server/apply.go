package server

import (
	"github.com/copycat-go/copycat/runtime/protocol"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/session"
	"github.com/copycat-go/copycat/runtime/statemachine"
)

// apply runs on the node goroutine with each batch of committed entries. It
// applies them to the state machine, completes the commands waiting on this
// member, and pushes new events to the clients attached here.
func (s *Server) apply(ents []raft.Entry) []any {
	results := make([]any, len(ents))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range ents {
		if e.Type != raft.EntryNormal {
			s.trackConfig(e)
			s.sm.Advance(e.Index, e.Timestamp)
			continue
		}
		outs, err := s.sm.Apply(e.Index, e.Timestamp, e.Data)
		if err != nil {
			// Every member skips the same malformed entry alike.
			s.log.Error("skipping entry", "index", e.Index, "err", err)
			results[i] = err
			continue
		}
		for _, o := range outs {
			switch o.Kind {
			case statemachine.KindCommand:
				s.completeCommand(o.Session, o.Sequence, o.Response)
			case statemachine.KindOpenSession:
				s.lastSeen[o.Session] = now()
			case statemachine.KindCloseSession:
				s.sessionEnded(o.Session)
			}
		}
		results[i] = outs
	}
	for _, sid := range s.sm.TakePublished() {
		sess, ok := s.sm.Session(sid)
		if !ok {
			continue
		}
		for c := range s.conns[sid] {
			c.pushEvents(sess)
		}
	}
	if len(ents) > 0 {
		s.maybeImage(ents)
	}
	close(s.appliedCh)
	s.appliedCh = make(chan struct{})
	return results
}

// completeCommand answers whoever waits here for a command's outcome, right
// from the apply path (replies are queued, never written inline).
func (s *Server) completeCommand(sid, seq uint64, r session.Response) {
	key := cmdKey{sid, seq}
	ws := s.cmdWaiters[key]
	if len(ws) == 0 {
		return
	}
	delete(s.cmdWaiters, key)
	resp := commandResponse(r)
	for _, w := range ws {
		out := *resp
		w.cc.reply(w.req, &out)
	}
}

// sessionEnded fails what waits on a closed or expired session and detaches
// its connections.
func (s *Server) sessionEnded(sid uint64) {
	delete(s.lastSeen, sid)
	delete(s.expiring, sid)
	for key, ws := range s.cmdWaiters {
		if key.session == sid {
			for _, w := range ws {
				w.cc.reply(w.req, &protocol.Message{Status: protocol.Failed, Err: sessionExpiredError})
			}
			delete(s.cmdWaiters, key)
		}
	}
	for c := range s.conns[sid] {
		c.detach()
	}
	delete(s.conns, sid)
}
