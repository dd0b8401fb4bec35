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
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/transport"
)

// The cluster's status as one member sees it; see runtime/protocol.
type (
	ClusterStatus  = protocol.ClusterStatus
	MemberStatus   = protocol.MemberStatus
	MemberProgress = protocol.MemberProgress
	// AdminError is a refusal a member sent back: Error() is the member's
	// explanation, and it matches one of the sentinels below with errors.Is.
	AdminError = protocol.AdminError
)

// Errors an Admin's calls match with errors.Is, besides runtime.ErrNoLeader
// (no member knew a leader before ctx ended, with ctx's error) and
// context.DeadlineExceeded (ctx ended first).
var (
	// ErrNotCaughtUp: a PASSIVE member cannot be promoted before it has
	// caught up with the leader; retry (PromoteWhenCaughtUp does).
	ErrNotCaughtUp = protocol.ErrNotCaughtUp
	// ErrUnknownMember: no member with that ID is in the cluster.
	ErrUnknownMember = protocol.ErrUnknownMember
	// ErrMemberExists: the ID or address is already a member's, with
	// another address or type.
	ErrMemberExists = protocol.ErrMemberExists
	// ErrInvalidChange: the change makes no sense (adding an ACTIVE member,
	// promoting an ACTIVE one, removing the last voter, ...).
	ErrInvalidChange = protocol.ErrInvalidChange
	// ErrInvalidTransfer: the transfer's target cannot lead, or there is no
	// other voter.
	ErrInvalidTransfer = protocol.ErrInvalidTransfer
	// ErrTransferInProgress: another leadership transfer is under way.
	ErrTransferInProgress = protocol.ErrTransferInProgress
	// ErrTimeout: the leader gave up on the request (a transfer whose target
	// never took over, a change that could not commit in the time given).
	ErrTimeout = protocol.ErrTimeout
)

// leaderStatusWait bounds how long Status waits for each other member it
// asks on its way to the leader.
const leaderStatusWait = time.Second

// Admin operates a cluster: its status, membership changes and leadership
// transfer. It is safe for concurrent use; requests go out one at a time.
//
// An Admin opens no session, unlike a Client. An operator's tool must work
// when the cluster cannot commit anything — a member cut off from the others
// must still answer "I know no leader", which opening a session (a log
// entry) would prevent — and must leave nothing behind when it is killed, as
// a session would until it expired. Admin requests need none of a session's
// ordering or exactly-once replies either: status is a read, and each
// membership change is checked by the leader against its configuration.
// Adding a member that is already there with the same address and type
// succeeds, so a retried add is harmless; a remove, promotion or demotion
// retried after its answer was lost (to a leader change, say) may report
// ErrUnknownMember or ErrInvalidChange for what the first attempt did.
//
// Mutating calls run on the leader: the Admin follows redirects and retries
// with backoff until ctx ends, across leader changes.
type Admin struct {
	opts options
	// closing is cancelled by Close, ending the calls in flight.
	closing context.Context
	close   context.CancelFunc

	mu     sync.Mutex // held for a whole request
	addrs  []string
	next   int
	hint   string // the leader's address, learned from a redirect
	conn   *adminConn
	lastID uint64
	closed bool
}

// DialAdmin connects to one of the members at addrs, trying each in turn
// with backoff until ctx ends. Of the options, WithClusterID, WithTLS,
// WithDialer, WithBackoff and WithLogger apply.
func DialAdmin(ctx context.Context, addrs []string, opts ...Option) (*Admin, error) {
	if len(addrs) == 0 {
		return nil, errors.New("client: no member addresses")
	}
	o := defaultOptions()
	for _, f := range opts {
		f(&o)
	}
	a := &Admin{opts: o, addrs: slices.Clone(addrs)}
	a.closing, a.close = context.WithCancel(context.Background())
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.connectLocked(ctx, "connect"); err != nil {
		return nil, err
	}
	return a, nil
}

// Close closes the connection. Calls in flight fail with ErrClosed.
func (a *Admin) Close() error {
	a.close()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	if a.conn != nil {
		a.conn.close()
		a.conn = nil
	}
	return nil
}

// Status returns the cluster's status as its leader sees it, with every
// member's replication progress. It asks the member it is connected to and
// then the leader that member names; if that member knows no leader or
// cannot be reached, it asks the other members it knows of — from
// DialAdmin, redirects and the configuration in the answers — in turn
// (once each, at most a second each) for one that does. When no leader can be found before ctx ends, it returns the first
// answer, which shows that its member knows no leader.
func (a *Admin) Status(ctx context.Context) (*ClusterStatus, error) {
	resp, err := a.do(ctx, "status", &protocol.Message{Type: protocol.AdminStatus})
	if err != nil {
		return nil, err
	}
	first, err := protocol.DecodeClusterStatus(resp.Result)
	if err != nil {
		return nil, fmt.Errorf("client: status: %w", err)
	}
	if first.Role == raft.StateLeader {
		return first, nil
	}
	a.mu.Lock()
	addrs := slices.Clone(a.addrs)
	a.mu.Unlock()
	tried := map[string]bool{first.Addr: true}
	for st := first; ctx.Err() == nil; {
		if st.Role == raft.StateLeader {
			return st, nil
		}
		for _, m := range st.Members {
			if m.Addr != "" && !slices.Contains(addrs, m.Addr) {
				addrs = append(addrs, m.Addr)
			}
		}
		next := st.LeaderAddr
		if next == "" || tried[next] {
			next = ""
			for _, addr := range addrs {
				if !tried[addr] {
					next = addr
					break
				}
			}
		}
		if next == "" {
			break
		}
		tried[next] = true
		mctx, cancel := context.WithTimeout(ctx, leaderStatusWait)
		if ms, err := a.memberStatus(mctx, next, false); err == nil {
			st = ms
			tried[ms.Addr] = true
		}
		cancel()
	}
	return first, nil
}

// MemberStatus returns the view of the member at addr, whatever its role:
// a member cut off from the others shows that it knows no leader. It retries
// until ctx ends while the member cannot be reached.
func (a *Admin) MemberStatus(ctx context.Context, addr string) (*ClusterStatus, error) {
	return a.memberStatus(ctx, addr, true)
}

// memberStatus asks the member at addr for its view, once or (retry)
// until ctx ends while it cannot be reached.
func (a *Admin) memberStatus(ctx context.Context, addr string, retry bool) (*ClusterStatus, error) {
	ctx, done := a.untilClosed(ctx)
	defer done()
	st, err := a.memberStatusUntil(ctx, addr, retry)
	if err != nil && a.closing.Err() != nil {
		return nil, fmt.Errorf("client: status of %s: %w", addr, ErrClosed)
	}
	return st, err
}

func (a *Admin) memberStatusUntil(ctx context.Context, addr string, retry bool) (*ClusterStatus, error) {
	backoff := a.opts.backoffMin
	var last error
	for {
		cn, err := dialAdmin(ctx, &a.opts, addr)
		if err == nil {
			var resp *protocol.Message
			resp, err = cn.roundTrip(ctx, &protocol.Message{Type: protocol.AdminStatus, ID: 1, TimeoutNs: remaining(ctx)})
			cn.close()
			if err == nil {
				if resp.Status != protocol.OK {
					return nil, fmt.Errorf("client: status of %s: %w", addr, protocol.AdminErrorOf(resp.Err))
				}
				st, err := protocol.DecodeClusterStatus(resp.Result)
				if err != nil {
					return nil, fmt.Errorf("client: status of %s: %w", addr, err)
				}
				return st, nil
			}
		}
		if !retry || errors.Is(err, transport.ErrRefused) {
			return nil, fmt.Errorf("client: status of %s: %w", addr, err)
		}
		last = err
		if err := a.sleep(ctx, &backoff); err != nil {
			return nil, timeoutError("status of "+addr, err, last)
		}
	}
}

// AddMember adds a member with the given ID, address and type: raft.Passive
// (0 means Passive) or raft.Reserve. New members join PASSIVE and are
// promoted once they have caught up; adding one ACTIVE is refused with
// ErrInvalidChange. Start the member (with its peers' addresses) first or
// soon after: the leader starts replicating to it at once.
func (a *Admin) AddMember(ctx context.Context, id uint64, addr string, t raft.MemberType) error {
	what := fmt.Sprintf("add member %d", id)
	_, err := a.do(ctx, what, &protocol.Message{Type: protocol.AdminAdd,
		Args: protocol.EncodeAdminRequest(protocol.AdminRequest{Member: id, Addr: addr, Type: t})})
	return err
}

// RemoveMember removes a member. Removing the leader is allowed: it steps
// down once the change commits and the others elect a new one.
func (a *Admin) RemoveMember(ctx context.Context, id uint64) error {
	return a.change(ctx, protocol.AdminRemove, fmt.Sprintf("remove member %d", id), id)
}

// PromoteMember moves a RESERVE member to PASSIVE, or a PASSIVE member to
// ACTIVE. It tries once: a PASSIVE member that has not caught up with the
// leader yet is refused with ErrNotCaughtUp (see PromoteWhenCaughtUp).
func (a *Admin) PromoteMember(ctx context.Context, id uint64) error {
	return a.change(ctx, protocol.AdminPromote, fmt.Sprintf("promote member %d", id), id)
}

// PromoteWhenCaughtUp promotes a member, retrying with backoff while the
// leader answers ErrNotCaughtUp, until ctx ends. A member that is ACTIVE
// already counts as promoted, so a retried call succeeds.
func (a *Admin) PromoteWhenCaughtUp(ctx context.Context, id uint64) error {
	backoff := a.opts.backoffMin
	for {
		err := a.PromoteMember(ctx, id)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrInvalidChange):
			if st, serr := a.Status(ctx); serr == nil {
				if m, ok := st.Member(id); ok && m.Type == raft.Active {
					return nil
				}
			}
			return err
		case !errors.Is(err, ErrNotCaughtUp):
			return err
		}
		if serr := a.sleep(ctx, &backoff); serr != nil {
			return timeoutError(fmt.Sprintf("promote member %d", id), serr, err)
		}
	}
}

// DemoteMember moves an ACTIVE member to PASSIVE, or a PASSIVE member to
// RESERVE.
func (a *Admin) DemoteMember(ctx context.Context, id uint64) error {
	return a.change(ctx, protocol.AdminDemote, fmt.Sprintf("demote member %d", id), id)
}

// TransferLeadership hands leadership to the ACTIVE member to, or, if to is
// 0, to the other voter with the most up-to-date log, and returns once
// another member leads. Naming the current leader does nothing.
func (a *Admin) TransferLeadership(ctx context.Context, to uint64) error {
	what := "transfer leadership"
	if to != 0 {
		what = fmt.Sprintf("transfer leadership to member %d", to)
	}
	return a.change(ctx, protocol.AdminTransfer, what, to)
}

func (a *Admin) change(ctx context.Context, t protocol.Type, what string, id uint64) error {
	_, err := a.do(ctx, what, &protocol.Message{Type: t, Args: protocol.EncodeAdminRequest(protocol.AdminRequest{Member: id})})
	return err
}

// untilClosed returns ctx, also cancelled by Close.
func (a *Admin) untilClosed(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(a.closing, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// do sends a request to the member it is connected to and follows
// redirects to the leader, reconnecting and retrying with backoff until
// ctx ends. Refusals (Status Failed) are final.
func (a *Admin) do(ctx context.Context, what string, m *protocol.Message) (*protocol.Message, error) {
	ctx, done := a.untilClosed(ctx)
	defer done()
	a.mu.Lock()
	defer a.mu.Unlock()
	resp, err := a.doLocked(ctx, what, m)
	if err != nil && a.closing.Err() != nil {
		return nil, fmt.Errorf("client: %s: %w", what, ErrClosed)
	}
	return resp, err
}

func (a *Admin) doLocked(ctx context.Context, what string, m *protocol.Message) (*protocol.Message, error) {
	backoff := a.opts.backoffMin
	var last error
	redirects := 0
	for {
		cn, err := a.connectLocked(ctx, what)
		if err != nil {
			if last != nil && ctx.Err() != nil {
				return nil, timeoutError(what, ctx.Err(), last)
			}
			return nil, err
		}
		a.lastID++
		m.ID = a.lastID
		m.TimeoutNs = remaining(ctx)
		resp, err := cn.roundTrip(ctx, m)
		switch {
		case err != nil:
			a.dropLocked()
			if ctx.Err() != nil && last != nil {
				// Cut short by ctx: the failure before says more.
				return nil, timeoutError(what, ctx.Err(), last)
			}
			last = err
		case resp.Status == protocol.OK:
			return resp, nil
		case resp.Status == protocol.Failed:
			err := protocol.AdminErrorOf(resp.Err)
			if !errors.Is(err, runtime.ErrNoLeader) {
				return nil, fmt.Errorf("client: %s: %w", what, err)
			}
			last = err
		default: // NotLeader
			a.learnLocked(resp.Leader, resp.Members)
			a.dropLocked()
			if resp.Leader != "" && resp.Leader != cn.addr {
				last = fmt.Errorf("client: %s does not lead; %s does", cn.addr, resp.Leader)
				// Straight to the leader, unless members keep naming each
				// other (stale views during an election): then wait.
				if redirects++; redirects <= len(a.addrs) {
					continue
				}
				break
			}
			last = fmt.Errorf("%w: %s knows none", runtime.ErrNoLeader, cn.addr)
		}
		if err := a.sleep(ctx, &backoff); err != nil {
			return nil, timeoutError(what, err, last)
		}
	}
}

// connectLocked returns the connection, dialling the leader's address if a
// redirect named one, else the next address, with backoff, until ctx ends.
// When every address refused the handshake (another cluster's ID, a bad
// certificate) in one round, it gives up at once.
func (a *Admin) connectLocked(ctx context.Context, what string) (*adminConn, error) {
	if a.closed {
		return nil, ErrClosed
	}
	if a.conn != nil {
		return a.conn, nil
	}
	backoff := a.opts.backoffMin
	var last error
	refused, tried := 0, 0
	for {
		addr := a.hint
		a.hint = ""
		if addr == "" {
			addr = a.addrs[a.next%len(a.addrs)]
			a.next++
		}
		cn, err := dialAdmin(ctx, &a.opts, addr)
		if err == nil {
			a.conn = cn
			return cn, nil
		}
		a.opts.logger.Debug("admin: connect failed", "addr", addr, "err", err)
		last = err
		if errors.Is(err, transport.ErrRefused) {
			if refused++; refused >= len(a.addrs) {
				return nil, fmt.Errorf("client: %s: %w", what, err)
			}
		} else {
			refused = 0
		}
		if tried++; tried < len(a.addrs) && ctx.Err() == nil {
			continue // try the other addresses before waiting
		}
		tried = 0
		if err := a.sleep(ctx, &backoff); err != nil {
			return nil, timeoutError(what, err, last)
		}
	}
}

func (a *Admin) dropLocked() {
	if a.conn != nil {
		a.conn.close()
		a.conn = nil
	}
}

// learnLocked remembers the leader's address and any member address not
// known yet.
func (a *Admin) learnLocked(leader string, members []string) {
	a.hint = leader
	for _, addr := range members {
		if addr != "" && !slices.Contains(a.addrs, addr) {
			a.addrs = append(a.addrs, addr)
		}
	}
}

// sleep waits out the backoff (with jitter) and doubles it, or returns
// ctx's error.
func (a *Admin) sleep(ctx context.Context, backoff *time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(*backoff + time.Duration(rand.Int64N(int64(*backoff)+1)))
	defer t.Stop()
	*backoff = min(2**backoff, a.opts.backoffMax)
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// remaining is how long the member may work on a request: ctx's time left,
// or 0 (the member's own bound) without a deadline.
func remaining(ctx context.Context) int64 {
	if d, ok := ctx.Deadline(); ok {
		return int64(max(time.Until(d), time.Millisecond))
	}
	return 0
}

// timeoutError reports that ctx ended (ctxErr) with the last failure, so
// that errors.Is matches both: context.DeadlineExceeded and, say,
// runtime.ErrNoLeader.
func timeoutError(what string, ctxErr, last error) error {
	if last == nil {
		return fmt.Errorf("client: %s: %w", what, ctxErr)
	}
	return fmt.Errorf("client: %s: %w (last error: %w)", what, ctxErr, last)
}
