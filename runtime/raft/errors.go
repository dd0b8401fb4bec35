package raft

import "errors"

var (
	// ErrCompacted is returned by Storage when the requested index lies at or
	// below the compaction point.
	ErrCompacted = errors.New("raft: requested index is compacted")
	// ErrUnavailable is returned by Storage when the requested entry does not exist yet.
	ErrUnavailable = errors.New("raft: requested entry is unavailable")
	// ErrNotLeader is returned for operations only a leader can perform.
	ErrNotLeader = errors.New("raft: not the leader")
	// ErrProposalDropped is returned when a proposal cannot be accepted now:
	// a leadership transfer is under way or the leader is stepping down.
	ErrProposalDropped = errors.New("raft: proposal dropped")
	// ErrConfigChangePending is returned when a configuration change is
	// proposed while another is uncommitted, or before the leader has
	// committed an entry of its term (§4.3 and its correction).
	ErrConfigChangePending = errors.New("raft: a configuration change is pending")
	// ErrConfigIndexMismatch is returned when a ConfChange's expected
	// configuration index is not the current one (a lost compare-and-set).
	ErrConfigIndexMismatch = errors.New("raft: configuration index mismatch")
	// ErrInvalidConfChange is returned for changes that make no sense: adding
	// an existing member, removing an unknown one, promoting a member that has
	// not caught up, leaving no voter.
	ErrInvalidConfChange = errors.New("raft: invalid configuration change")
	// ErrNotCaughtUp is returned (with ErrInvalidConfChange) when a PASSIVE
	// member is promoted before its log has caught up; retry later.
	ErrNotCaughtUp = errors.New("raft: member has not caught up yet")
	// ErrTransferInProgress is returned when a transfer is requested while
	// another is under way.
	ErrTransferInProgress = errors.New("raft: leadership transfer in progress")
	// ErrInvalidTransferTarget is returned when the target cannot lead.
	ErrInvalidTransferTarget = errors.New("raft: invalid leadership transfer target")
)
