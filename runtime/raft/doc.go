// Package raft is Copycat's consensus core: a deterministic Raft state machine
// in the shape of etcd-io/raft.
//
// The core has no goroutines, no clock and does no I/O of its own. A driver
// (runtime/server, or a test) feeds it time with Tick, messages with Step and
// requests with Propose, ReadIndex, ProposeConfChange and TransferLeadership,
// and collects what to do with Ready: entries and hard state to persist,
// messages to send, committed entries to apply, read states to answer. After
// doing it, the driver calls Advance. The same inputs always give the same
// outputs, which is what makes seeded simulation of whole clusters possible.
//
// # Features
//
//   - Leader election with randomized timeouts (§5.2), pre-vote (§9.6) and
//     check-quorum (§6.2), both on by default.
//   - Replication with per-follower probe/replicate/snapshot states,
//     pipelining bounded in messages and bytes, batching, and fast back-off on
//     conflicts (§5.3).
//   - Commitment by counting only for entries of the current term (§5.4.2),
//     with a NoOp appended by every new leader.
//   - ReadIndex reads (§6.4) with a fresh sequence per round, and lease reads
//     (§6.4.1) that require check-quorum and keep a clock-drift margin.
//   - Membership changes one member at a time (§4.1–§4.3), effective on
//     append, with ACTIVE, PASSIVE and RESERVE members and a compare-and-set
//     on the configuration index.
//   - Leadership transfer (§3.10) with a timeout.
//   - A compaction point below which a lagging follower is sent a snapshot.
//   - A leader whose own storage has not persisted for an election timeout
//     no longer counts itself live for check-quorum, so a stalled disk
//     cannot hold leadership (the lesson of hashicorp/raft#612).
//
// # Persistence and messages
//
// Ready separates Messages, which may be sent at once (a leader's appends go
// out in parallel with its own write, §10.2.1), from MessagesAfterSave,
// which must wait until the Ready's HardState and Entries are durable (vote
// grants, acknowledgements, vote requests).
package raft
