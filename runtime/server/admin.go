package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/protocol"
	"github.com/copycat-go/copycat/runtime/raft"
)

// handleAdmin serves an operator's request (see protocol.AdminRequest).
// Status is answered by any member from its own view; every other request
// runs on the leader, and a member that does not lead redirects it there
// as it does commands. It runs in its own goroutine: membership changes wait
// for their entry to commit.
func (s *Server) handleAdmin(cc *clientConn, m *protocol.Message) {
	timeout := requestTimeout
	if m.TimeoutNs > 0 {
		timeout = min(timeout, time.Duration(m.TimeoutNs))
	}
	ctx, cancel := context.WithTimeout(cc.ctx, timeout)
	defer cancel()
	if m.Type == protocol.AdminStatus {
		cc.reply(m, &protocol.Message{Result: protocol.EncodeClusterStatus(s.clusterStatus(ctx))})
		return
	}
	req, err := protocol.DecodeAdminRequest(m.Args)
	if err != nil {
		cc.fail(m, fmt.Errorf("%w: %v", runtime.ErrBadRequest, err))
		return
	}
	if !s.IsLeader() {
		cc.fail(m, ErrNotLeader)
		return
	}
	var leader string
	switch m.Type {
	case protocol.AdminAdd:
		err = s.adminAdd(ctx, req)
	case protocol.AdminRemove:
		err = s.adminChange(ctx, raft.RemoveMember, req.Member)
	case protocol.AdminPromote:
		err = s.adminChange(ctx, raft.PromoteMember, req.Member)
	case protocol.AdminDemote:
		err = s.adminChange(ctx, raft.DemoteMember, req.Member)
	case protocol.AdminTransfer:
		err = s.adminTransfer(ctx, req.Member)
		leader = s.leaderAddr()
	default:
		err = fmt.Errorf("%w: unexpected %s", runtime.ErrBadRequest, m.Type)
	}
	switch {
	case err == nil:
		cc.reply(m, &protocol.Message{Index: s.Status().Config.Index, Leader: leader})
	case isAdminRefusal(err):
		cc.reply(m, &protocol.Message{Status: protocol.Failed, Err: protocol.AdminWireError(err)})
	case ctx.Err() != nil && cc.ctx.Err() == nil:
		// The client's time (or requestTimeout) ran out while the change
		// stayed pending or uncommitted: say so rather than redirect.
		msg := fmt.Sprintf("%s did not complete within %v", describeAdmin(m.Type, req), timeout)
		if !errors.Is(err, context.DeadlineExceeded) {
			msg += fmt.Sprintf(" (%v)", err)
		}
		cc.reply(m, &protocol.Message{Status: protocol.Failed, Err: protocol.AdminWireError(fmt.Errorf("%w: %s", protocol.ErrTimeout, msg))})
	default:
		// Leadership lost, a transfer under way, the member stopping: the
		// client retries, at the leader if this member knows it.
		cc.fail(m, err)
	}
}

// isAdminRefusal reports whether err is a definitive answer to an admin
// request (one of protocol's admin errors, or a malformed request), as
// opposed to one the client should retry elsewhere.
func isAdminRefusal(err error) bool {
	for _, e := range []error{protocol.ErrNotCaughtUp, protocol.ErrUnknownMember, protocol.ErrMemberExists,
		protocol.ErrInvalidChange, protocol.ErrInvalidTransfer, protocol.ErrTransferInProgress, protocol.ErrTimeout,
		runtime.ErrBadRequest} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// describeAdmin names a request for messages: "promoting member 4".
func describeAdmin(t protocol.Type, req protocol.AdminRequest) string {
	switch t {
	case protocol.AdminAdd:
		return fmt.Sprintf("adding member %d", req.Member)
	case protocol.AdminRemove:
		return fmt.Sprintf("removing member %d", req.Member)
	case protocol.AdminPromote:
		return fmt.Sprintf("promoting member %d", req.Member)
	case protocol.AdminDemote:
		return fmt.Sprintf("demoting member %d", req.Member)
	case protocol.AdminTransfer:
		if req.Member == 0 {
			return "handing leadership over"
		}
		return fmt.Sprintf("handing leadership to member %d", req.Member)
	}
	return t.String()
}

// clusterStatus is this member's view of the cluster, with every member's
// replication progress when it leads.
func (s *Server) clusterStatus(ctx context.Context) *protocol.ClusterStatus {
	st, err := s.FullStatus(ctx)
	if err != nil {
		st = s.Status() // busy or stopping: answer without progress
	}
	out := &protocol.ClusterStatus{
		ID: s.cfg.ID, Addr: s.cfg.Addr, Role: st.SoftState.State, Term: st.HardState.Term,
		Leader: st.SoftState.Lead, Commit: st.HardState.Commit, Applied: st.Applied, LastIndex: st.LastIndex,
		ConfigIndex: st.Config.Index, Transferee: st.LeadTransferee,
		Sessions: uint64(s.Sessions()), Resources: uint64(s.Resources()),
		Members: make([]protocol.MemberStatus, 0, len(st.Config.Members)),
	}
	if lead, ok := st.Config.Member(st.SoftState.Lead); ok {
		out.LeaderAddr = lead.Addr
	}
	for _, m := range st.Config.Members {
		ms := protocol.MemberStatus{ID: m.ID, Addr: m.Addr, Type: m.Type}
		if p, ok := st.Progress[m.ID]; ok && st.SoftState.State == raft.StateLeader {
			ms.Progress = &protocol.MemberProgress{Match: p.Match, Next: p.Next, State: p.State, RecentActive: p.RecentActive}
		}
		out.Members = append(out.Members, ms)
	}
	return out
}

// adminAdd adds a member. Adding a member that is already there with the
// same address and type succeeds, so that a client may retry an add whose
// answer it lost (to a leader change, say) without getting ErrMemberExists.
func (s *Server) adminAdd(ctx context.Context, req protocol.AdminRequest) error {
	typ := req.Type
	if typ == 0 {
		typ = raft.Passive
	}
	switch {
	case req.Member == 0:
		return fmt.Errorf("%w: member ID 0 is not allowed", protocol.ErrInvalidChange)
	case req.Addr == "":
		return fmt.Errorf("%w: member %d needs an address", protocol.ErrInvalidChange, req.Member)
	case typ == raft.Active:
		return fmt.Errorf("%w: add member %d as PASSIVE and promote it once it has caught up", protocol.ErrInvalidChange, req.Member)
	}
	for _, m := range s.Status().Config.Members {
		switch {
		case m.ID == req.Member && m.Addr == req.Addr && m.Type == typ:
			return nil
		case m.ID == req.Member:
			return fmt.Errorf("%w: member %d is already in the cluster, %s at %s", protocol.ErrMemberExists, m.ID, m.Type, m.Addr)
		case m.Addr == req.Addr:
			return fmt.Errorf("%w: address %s is already member %d's", protocol.ErrMemberExists, m.Addr, m.ID)
		}
	}
	return s.refine(ctx, req.Member, s.AddMember(ctx, req.Member, req.Addr, typ))
}

// adminChange removes, promotes or demotes a member, once: a promotion of a
// member still catching up answers ErrNotCaughtUp at once, and the client
// decides whether to wait (Server.PromoteMember would wait here instead).
func (s *Server) adminChange(ctx context.Context, t raft.ConfChangeType, id uint64) error {
	m, ok := s.Status().Config.Member(id)
	if !ok {
		return fmt.Errorf("%w: member %d is not in the cluster", protocol.ErrUnknownMember, id)
	}
	switch {
	case t == raft.PromoteMember && m.Type == raft.Active:
		return fmt.Errorf("%w: member %d is already ACTIVE", protocol.ErrInvalidChange, id)
	case t == raft.DemoteMember && m.Type == raft.Reserve:
		return fmt.Errorf("%w: member %d is already RESERVE", protocol.ErrInvalidChange, id)
	}
	return s.refine(ctx, id, s.change(ctx, raft.ConfChange{Type: t, ID: id}))
}

// adminTransfer hands leadership to a voter, or to the most up-to-date
// other voter when to is 0, and waits until another member leads. The
// core gives up on a transfer after an election timeout, so the wait is
// bounded by a few of them: the client hears ErrTimeout rather than waiting
// out its own deadline.
func (s *Server) adminTransfer(ctx context.Context, to uint64) error {
	st, err := s.FullStatus(ctx)
	if err != nil {
		return err
	}
	if st.SoftState.State != raft.StateLeader {
		return ErrNotLeader
	}
	if to == 0 {
		to = bestTransferTarget(st)
		if to == 0 {
			return fmt.Errorf("%w: there is no other ACTIVE member to hand leadership to", protocol.ErrInvalidTransfer)
		}
	}
	m, ok := st.Config.Member(to)
	switch {
	case !ok:
		return fmt.Errorf("%w: member %d is not in the cluster", protocol.ErrUnknownMember, to)
	case m.Type != raft.Active:
		return fmt.Errorf("%w: member %d is %s; only ACTIVE members can lead", protocol.ErrInvalidTransfer, to, m.Type)
	case to == s.cfg.ID:
		return nil // it leads already
	}
	bound := 3 * time.Duration(s.cfg.ElectionTicks) * s.cfg.TickInterval
	tctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	err = s.TransferLeadership(tctx, to)
	switch {
	case errors.Is(err, raft.ErrTransferInProgress):
		return fmt.Errorf("%w: to member %d", protocol.ErrTransferInProgress, st.LeadTransferee)
	case errors.Is(err, raft.ErrInvalidTransferTarget):
		return fmt.Errorf("%w: member %d cannot lead", protocol.ErrInvalidTransfer, to)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("%w: member %d did not take over within %v", protocol.ErrTimeout, to, bound)
	}
	return err
}

// bestTransferTarget picks the other voter to hand leadership to: one the
// leader heard from in this check-quorum round before one it did not, then
// the longest log, then the lowest ID. It returns 0 if there is none.
func bestTransferTarget(st raft.Status) uint64 {
	var best uint64
	var bestP raft.Progress
	for _, id := range st.Config.Voters() {
		p, ok := st.Progress[id]
		if id == st.ID || !ok {
			continue
		}
		better := best == 0 ||
			(p.RecentActive && !bestP.RecentActive) ||
			(p.RecentActive == bestP.RecentActive && (p.Match > bestP.Match || (p.Match == bestP.Match && id < best)))
		if better {
			best, bestP = id, p
		}
	}
	return best
}

// refine translates the raft package's refusals into the admin errors the
// client matches, with what an operator needs to know.
func (s *Server) refine(ctx context.Context, id uint64, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotCaughtUp):
		if st, serr := s.FullStatus(ctx); serr == nil {
			if p, ok := st.Progress[id]; ok {
				return fmt.Errorf("%w: member %d has %d of the leader's %d committed entries; retry once it has caught up",
					protocol.ErrNotCaughtUp, id, p.Match, st.HardState.Commit)
			}
		}
		return fmt.Errorf("%w: member %d; retry once it has caught up", protocol.ErrNotCaughtUp, id)
	case errors.Is(err, raft.ErrInvalidConfChange):
		return fmt.Errorf("%w: %v", protocol.ErrInvalidChange, err)
	}
	return err
}
