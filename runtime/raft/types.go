package raft

import "fmt"

// EntryType says how the core and the state machine treat an entry's Data.
type EntryType uint8

const (
	// EntryNormal carries an opaque payload for the state machine.
	EntryNormal EntryType = iota
	// EntryNoOp is appended by every new leader so that it can commit an entry
	// of its own term (§5.4.2) and learn the commit index; Data is empty.
	EntryNoOp
	// EntryConfig carries an encoded Configuration (see EncodeConfiguration).
	// It takes effect as soon as it is appended to a log, committed or not (§4.1).
	EntryConfig
)

func (t EntryType) String() string {
	switch t {
	case EntryNormal:
		return "Normal"
	case EntryNoOp:
		return "NoOp"
	case EntryConfig:
		return "Config"
	}
	return fmt.Sprintf("EntryType(%d)", uint8(t))
}

// Entry is one slot of the replicated log.
type Entry struct {
	Term  uint64
	Index uint64
	Type  EntryType
	// Timestamp is the proposing leader's wall clock in Unix nanoseconds, set by
	// the driver (the core has no clock). The state machine derives its
	// deterministic time from it; the core never reads it.
	Timestamp int64
	Data      []byte
}

// size is the accounting size used for flow control and batching limits.
func (e *Entry) size() uint64 { return uint64(len(e.Data)) + 32 }

// HardState is what a member must persist before it sends a message that
// depends on it: its current term and vote (§5.1, Figure 2). Commit is saved as
// a hint for restarts; losing it is safe.
type HardState struct {
	Term   uint64
	Vote   uint64
	Commit uint64
}

// IsEmpty reports whether h carries no state.
func (h HardState) IsEmpty() bool { return h == HardState{} }

// MemberType says what a member does in the cluster.
type MemberType uint8

const (
	// Active members vote, count towards quorums and may lead.
	Active MemberType = iota + 1
	// Passive members receive the log but neither vote nor count; they serve
	// sequential reads and are how a new member catches up before promotion.
	Passive
	// Reserve members are standbys that receive no log at all.
	Reserve
)

func (t MemberType) String() string {
	switch t {
	case Active:
		return "ACTIVE"
	case Passive:
		return "PASSIVE"
	case Reserve:
		return "RESERVE"
	}
	return fmt.Sprintf("MemberType(%d)", uint8(t))
}

// Member is one entry of a Configuration.
type Member struct {
	ID   uint64
	Type MemberType
	// Addr is where peers and clients reach the member. The core carries it so
	// that every member learns every other member's address from the log; it
	// never interprets it.
	Addr string
}

// Configuration is the cluster membership as of the configuration entry at
// Index (0 for the bootstrap configuration).
type Configuration struct {
	Index   uint64
	Term    uint64
	Members []Member
}

// Member returns the member with the given ID.
func (c Configuration) Member(id uint64) (Member, bool) {
	for _, m := range c.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// Voters returns the IDs of the Active members.
func (c Configuration) Voters() []uint64 {
	var ids []uint64
	for _, m := range c.Members {
		if m.Type == Active {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// IsVoter reports whether id is an Active member.
func (c Configuration) IsVoter(id uint64) bool {
	m, ok := c.Member(id)
	return ok && m.Type == Active
}

// Clone returns a deep copy of c.
func (c Configuration) Clone() Configuration {
	c.Members = append([]Member(nil), c.Members...)
	return c
}

// SnapshotMeta describes the compaction point: every entry at or below Index
// has left the core's view. A follower whose log ends below it must install
// state from elsewhere (the live entries and snapshots the leader streams).
type SnapshotMeta struct {
	Index  uint64
	Term   uint64
	Config Configuration
}

// IsEmpty reports whether m describes no compaction at all.
func (m SnapshotMeta) IsEmpty() bool { return m.Index == 0 }

// Snapshot is a compaction point and, optionally, the state at it. The core
// never looks at Data; drivers that move state out of band leave it empty.
type Snapshot struct {
	Meta SnapshotMeta
	Data []byte
}

// MessageType identifies a Message.
type MessageType uint8

const (
	MsgPreVote MessageType = iota + 1
	MsgPreVoteResp
	MsgVote
	MsgVoteResp
	MsgApp
	MsgAppResp
	MsgHeartbeat
	MsgHeartbeatResp
	MsgSnap
	MsgTimeoutNow
	MsgReadIndex
	MsgReadIndexResp
	// MsgSnapChunk and MsgSnapChunkResp carry a compaction point's state to a
	// follower in pieces, with flow control; the driver (runtime/node)
	// exchanges them and hands the core one MsgSnap once the follower has it
	// all. The core refuses them.
	MsgSnapChunk
	MsgSnapChunkResp
	// msgMax bounds the valid message types; decoders use ValidMessageType.
	msgMax
)

// ValidMessageType reports whether t is a known message type, so decoders can
// refuse garbage before it reaches Step.
func ValidMessageType(t MessageType) bool { return t > 0 && t < msgMax }

var msgNames = [...]string{
	MsgPreVote: "PreVote", MsgPreVoteResp: "PreVoteResp", MsgVote: "Vote",
	MsgVoteResp: "VoteResp", MsgApp: "App", MsgAppResp: "AppResp",
	MsgHeartbeat: "Heartbeat", MsgHeartbeatResp: "HeartbeatResp", MsgSnap: "Snap",
	MsgTimeoutNow: "TimeoutNow", MsgReadIndex: "ReadIndex", MsgReadIndexResp: "ReadIndexResp",
	MsgSnapChunk: "SnapChunk", MsgSnapChunkResp: "SnapChunkResp",
}

func (t MessageType) String() string {
	if ValidMessageType(t) {
		return msgNames[t]
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Message is what members exchange. Fields are reused across types the way
// etcd-io/raft does it; each type's use is documented at the code that builds it.
type Message struct {
	// Group names the Raft group the message belongs to, so that one member
	// can later host many groups on one connection. The core only copies it.
	Group uint64
	Type  MessageType
	From  uint64
	To    uint64
	Term  uint64
	// LogTerm and Index: for MsgApp the entry preceding Entries; for votes the
	// candidate's last entry; for MsgAppResp the follower's match (or, on a
	// rejection, Index is the rejected index and LogTerm/RejectHint say where
	// the follower's log could match).
	LogTerm uint64
	Index   uint64
	Entries []Entry
	Commit  uint64
	Reject  bool
	// RejectHint is the follower's best guess of the last index that may match,
	// for fast back-off on conflict.
	RejectHint uint64
	// Context carries a ReadIndex round's sequence number on heartbeats and
	// their responses, and a caller's request context on MsgReadIndex.
	Context uint64
	// Snapshot is set on MsgSnap.
	Snapshot *Snapshot
}

func (m Message) String() string {
	return fmt.Sprintf("%s %d->%d term=%d logterm=%d index=%d commit=%d entries=%d reject=%v hint=%d ctx=%d",
		m.Type, m.From, m.To, m.Term, m.LogTerm, m.Index, m.Commit, len(m.Entries), m.Reject, m.RejectHint, m.Context)
}

// ReadState answers a ReadIndex or lease read: once the state machine has
// applied Index, a read issued with Context observes every write that was
// committed before the read was requested.
type ReadState struct {
	Index   uint64
	Context uint64
}

// Storage is the core's read-only view of the durable log. runtime/log
// implements it on disk and MemoryStorage in memory. Calls must not block on
// the network; they may read the disk.
type Storage interface {
	// InitialState returns the saved hard state and compaction point.
	InitialState() (HardState, SnapshotMeta, error)
	// Entries returns entries in [lo, hi), at least one if any exist and
	// stopping once their total size would exceed maxSize.
	Entries(lo, hi, maxSize uint64) ([]Entry, error)
	// Term returns the term of entry i, which must lie in [FirstIndex()-1, LastIndex()].
	Term(i uint64) (uint64, error)
	// FirstIndex is the first index in the core's view: compaction point + 1.
	FirstIndex() (uint64, error)
	// LastIndex is the index of the last durable entry, or the compaction
	// point if there is none above it.
	LastIndex() (uint64, error)
	// Snapshot returns the current compaction point with any state the
	// storage can hand to a lagging follower in band.
	Snapshot() (Snapshot, error)
}
