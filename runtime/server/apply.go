package server

import (
	"github.com/copycat-go/copycat/runtime/protocol"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/session"
	"github.com/copycat-go/copycat/runtime/statemachine"
)

// apply runs on the node goroutine with each batch of committed entries. It
// applies them to the state machine, pushes new events to the clients
// attached here and completes the commands waiting on this member — events
// first, entry by entry: a waiter that an entry grants something (a lock,
// a leadership) hears so before the client whose command granted it is
// answered, whose next command would compete with the waiter's for the
// next write, and a session's own events reach it before the answer they
// precede.
func (s *Server) apply(ents []raft.Entry) []any {
	results := make([]any, len(ents))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range ents {
		if e.Type != raft.EntryNormal {
			s.trackConfig(e)
			s.sm.Advance(e.Index, e.Timestamp)
			s.pushPublished() // timers may have fired
			continue
		}
		outs, err := s.sm.Apply(e.Index, e.Timestamp, e.Data)
		if err != nil {
			// Every member skips the same malformed entry alike.
			s.log.Error("skipping entry", "index", e.Index, "err", err)
			results[i] = err
			continue
		}
		s.pushPublished()
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
	if len(ents) > 0 {
		s.maybeImage(ents)
	}
	close(s.appliedCh)
	s.appliedCh = make(chan struct{})
	return results
}

// pushPublished pushes the event batches published since the last call to
// the connections of their sessions. Called with s.mu held.
func (s *Server) pushPublished() {
	for _, sid := range s.sm.TakePublished() {
		sess, ok := s.sm.Session(sid)
		if !ok {
			continue
		}
		for c := range s.conns[sid] {
			c.pushEvents(sess)
		}
	}
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
