package protocol

import (
	"errors"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/session"
)

// Admin requests are how operators run a cluster over the client port,
// without a session (see runtime/client's Admin for why):
//
//   - AdminStatus: any member answers with its own view, a ClusterStatus in
//     Result. It is never redirected, so that a member cut off from the
//     others can still say it knows no leader.
//   - AdminAdd, AdminRemove, AdminPromote, AdminDemote, AdminTransfer: the
//     request's AdminRequest travels in Args. They run on the leader; any
//     other member answers NotLeader with the leader's address, as for
//     commands, and the client retries there.
//
// TimeoutNs carries how long the client will wait, so that the member does
// not keep working on a request nobody waits for. A definitive refusal comes
// back as Status Failed with Err one of the admin errors below
// (AdminWireError / AdminErrorOf).

// AdminRequest is the Args of a membership change or leadership transfer.
type AdminRequest struct {
	// Member is the member the request is about: the one to add, remove,
	// promote or demote, or the transfer's target (0: any caught-up voter).
	Member uint64
	// Addr is the address of a member being added.
	Addr string
	// Type is the type of a member being added: raft.Passive (0 means
	// Passive) or raft.Reserve.
	Type raft.MemberType
}

// ClusterStatus is one member's view of the cluster, the Result of an
// AdminStatus request.
type ClusterStatus struct {
	// ID and Addr name the member that answered.
	ID   uint64
	Addr string
	// Role is the answering member's Raft role.
	Role raft.StateType
	Term uint64
	// Leader is the member the answering one believes leads (0: none), and
	// LeaderAddr its address from the configuration.
	Leader     uint64
	LeaderAddr string
	// Commit, Applied and LastIndex are the answering member's commit
	// index, applied index and last log index.
	Commit    uint64
	Applied   uint64
	LastIndex uint64
	// ConfigIndex is the log index of the configuration Members come from.
	ConfigIndex uint64
	// Transferee is the target of a leadership transfer under way (leader
	// only), or 0.
	Transferee uint64
	// Sessions and Resources count the open sessions and resource instances
	// the answering member's state machine holds.
	Sessions  uint64
	Resources uint64
	Members   []MemberStatus
}

// MemberStatus is one member of the configuration.
type MemberStatus struct {
	ID   uint64
	Addr string
	Type raft.MemberType
	// Progress is the leader's view of the member's log; nil unless the
	// answering member leads.
	Progress *MemberProgress
}

// MemberProgress is how far the leader has replicated to a member.
type MemberProgress struct {
	// Match is the highest index known to be in the member's log; Next the
	// next index the leader sends.
	Match uint64
	Next  uint64
	State raft.ProgressState
	// RecentActive is set when the leader heard from the member within the
	// current check-quorum round.
	RecentActive bool
}

// Errors an admin request may be refused with. They keep their identity
// across the wire: errors.Is works on what the client returns.
var (
	// ErrNotCaughtUp: a PASSIVE member cannot be promoted before its log has
	// caught up with the leader's commit index; retry later.
	ErrNotCaughtUp = errors.New("copycat: member has not caught up with the leader")
	// ErrUnknownMember: no member with that ID is in the configuration.
	ErrUnknownMember = errors.New("copycat: unknown member")
	// ErrMemberExists: a member with that ID (or address) is already in the
	// configuration, with another address or type.
	ErrMemberExists = errors.New("copycat: member already exists")
	// ErrInvalidChange: the change makes no sense (adding a member as
	// ACTIVE, promoting an ACTIVE member, leaving no ACTIVE member, ...).
	ErrInvalidChange = errors.New("copycat: invalid membership change")
	// ErrInvalidTransfer: the transfer's target cannot lead (not an ACTIVE
	// member), or there is no other voter to hand leadership to.
	ErrInvalidTransfer = errors.New("copycat: invalid leadership transfer")
	// ErrTransferInProgress: another leadership transfer is under way.
	ErrTransferInProgress = errors.New("copycat: a leadership transfer is in progress")
	// ErrTimeout: the member could not complete the request in the time the
	// client gave it or its own bound (a transfer whose target never took
	// over, a configuration change that stayed pending).
	ErrTimeout = errors.New("copycat: admin request timed out")
)

// adminErrors numbers the admin errors for the wire, as a resource type's
// declared errors are numbered (session.ErrorDeclared). Append only.
var adminErrors = &runtime.ResourceType{Name: "copycat.admin", Errors: []runtime.ErrorType{
	{Code: 1, Err: ErrNotCaughtUp},
	{Code: 2, Err: ErrUnknownMember},
	{Code: 3, Err: ErrMemberExists},
	{Code: 4, Err: ErrInvalidChange},
	{Code: 5, Err: ErrInvalidTransfer},
	{Code: 6, Err: ErrTransferInProgress},
	{Code: 7, Err: ErrTimeout},
}}

// AdminError is an admin error as a client receives it: Message is the
// member's explanation ("member 4 has not caught up (match 12, commit 40)"),
// Err the sentinel it matches with errors.Is.
type AdminError struct {
	Err     error
	Message string
}

func (e *AdminError) Error() string { return e.Message }

// Unwrap returns the sentinel.
func (e *AdminError) Unwrap() error { return e.Err }

// AdminWireError classifies an error for an admin response: one of the admin
// errors above keeps its code, a runtime error its runtime code, anything
// else travels as its message.
func AdminWireError(err error) *session.WireError {
	return session.ErrorFor(err, adminErrors)
}

// AdminErrorOf converts the wire error of an admin response back into an
// error that errors.Is matches against the admin and runtime errors,
// keeping the member's message.
func AdminErrorOf(w *session.WireError) error {
	if w == nil {
		return nil
	}
	if w.Kind == session.ErrorDeclared {
		if e, ok := adminErrors.Error(runtime.ErrorCode(w.Code)); ok {
			msg := w.Message
			if msg == "" {
				msg = e.Error()
			}
			return &AdminError{Err: e, Message: msg}
		}
	}
	return ErrorOf(w, nil)
}

// Member returns the member with the given ID.
func (s *ClusterStatus) Member(id uint64) (MemberStatus, bool) {
	for _, m := range s.Members {
		if m.ID == id {
			return m, true
		}
	}
	return MemberStatus{}, false
}
