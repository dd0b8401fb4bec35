package raft

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Config configures a core. Ticks are the driver's unit of time: a driver
// calls Tick at a fixed interval (runtime/server uses 10 ms by default).
type Config struct {
	// ID is this member's ID; it must not be 0.
	ID uint64
	// Group names the Raft group; it is copied onto every message sent.
	Group uint64
	// Storage is the durable log. The core only reads it.
	Storage Storage
	// ElectionTick is the election timeout in ticks: a follower that hears
	// nothing from a leader for a random time in [ElectionTick, 2*ElectionTick)
	// starts an election, and with check-quorum a leader that has not heard
	// from a quorum for ElectionTick steps down. It must exceed HeartbeatTick.
	ElectionTick int
	// HeartbeatTick is the interval between a leader's heartbeats.
	HeartbeatTick int
	// DisablePreVote turns off the pre-vote phase (§9.6). Pre-vote keeps a
	// member that was partitioned away from deposing a healthy leader when it
	// returns; turning it off is only for tests of what it prevents.
	DisablePreVote bool
	// DisableCheckQuorum turns off check-quorum (§6.2), which also disables
	// lease reads (they fall back to ReadIndex).
	DisableCheckQuorum bool
	// LeaseMarginTick is how much shorter than ElectionTick a leader's lease
	// is, to absorb clock drift between members. Defaults to ElectionTick/5,
	// at least 1.
	LeaseMarginTick int
	// MaxSizePerMsg bounds the bytes of entries in one append message.
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds the appends in flight to one follower.
	MaxInflightMsgs int
	// MaxInflightBytes bounds the bytes of entries in flight to one follower
	// (0: no byte bound).
	MaxInflightBytes uint64
	// MaxApplySize bounds the bytes of committed entries handed out per Ready.
	MaxApplySize uint64
	// Rand is the source of election timeout randomness. Simulations pass a
	// seeded source; nil uses a seed derived from ID.
	Rand *rand.Rand
	// AsyncStorageWrites declares a driver that persists Readys on another
	// goroutine while it keeps calling Step, Tick and Ready: Ready hands out
	// only entries (and a snapshot) not handed out before, the driver
	// reports each Ready's write durable with AdvanceWrite and its
	// committed entries applied with AdvanceApply, and committed entries
	// are handed out for applying only once they are durable on this member
	// too. Without it a Ready's committed entries may include its own
	// Entries, which a driver that saves before applying may do (the
	// default, and what Advance reports).
	AsyncStorageWrites bool
	// LazyCommit stops a leader from sending every follower an append the
	// moment its commit index advances (etcd's behaviour). Under a light
	// load that append and its acknowledgement double the messages of each
	// commit, while the next append, moments later, would have carried the
	// commit index anyway. With it set, followers learn the commit index
	// from the next append or heartbeat, or when the driver calls
	// BroadcastCommit — which it should do shortly after CommitPending
	// turns true, so that followers apply, and serve reads, promptly.
	LazyCommit bool
	// Now returns the wall clock in Unix nanoseconds, used to timestamp the
	// entries the core creates itself (a new leader's NoOp, configuration
	// changes). Nil leaves them at the previous entry's timestamp.
	Now func() int64
}

// DefaultConfig returns a Config with the defaults for a member with the given ID.
func DefaultConfig(id uint64, storage Storage) Config {
	return Config{
		ID:               id,
		Storage:          storage,
		ElectionTick:     10,
		HeartbeatTick:    1,
		MaxSizePerMsg:    1 << 20,
		MaxInflightMsgs:  256,
		MaxInflightBytes: 32 << 20,
		MaxApplySize:     4 << 20,
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.ID == 0 {
		errs = append(errs, errors.New("ID must not be 0"))
	}
	if c.Storage == nil {
		errs = append(errs, errors.New("Storage must be set"))
	}
	if c.HeartbeatTick <= 0 {
		errs = append(errs, errors.New("HeartbeatTick must be greater than 0"))
	}
	if c.ElectionTick <= c.HeartbeatTick {
		errs = append(errs, fmt.Errorf("ElectionTick (%d) must be greater than HeartbeatTick (%d)", c.ElectionTick, c.HeartbeatTick))
	}
	if c.LeaseMarginTick < 0 || (c.LeaseMarginTick > 0 && c.LeaseMarginTick >= c.ElectionTick) {
		errs = append(errs, fmt.Errorf("LeaseMarginTick (%d) must be in [0, ElectionTick)", c.LeaseMarginTick))
	}
	if c.MaxInflightMsgs <= 0 {
		errs = append(errs, errors.New("MaxInflightMsgs must be greater than 0"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("raft: invalid config: %w", errors.Join(errs...))
	}
	if c.LeaseMarginTick == 0 {
		c.LeaseMarginTick = max(1, c.ElectionTick/5)
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = 1 << 20
	}
	if c.MaxApplySize == 0 {
		c.MaxApplySize = 4 << 20
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(c.ID, c.ID^0x9e3779b97f4a7c15))
	}
	return nil
}
