package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	rlog "github.com/copycat-go/copycat/runtime/log"
	"github.com/copycat-go/copycat/runtime/transport"
)

// Config configures a member.
type Config struct {
	// ID is the member's ID, unique in the cluster, not 0.
	ID uint64
	// ClusterID names the cluster; members and clients of another cluster
	// are refused at the handshake.
	ClusterID string
	// Addr is the address peers and clients reach this member at; the member
	// listens on it unless Listener is set.
	Addr string
	// Listener, if set, is where the member accepts peers and clients.
	Listener net.Listener
	// DataDir holds the durable log. Required unless Storage is set.
	DataDir string
	// Storage overrides DataDir with a log the caller owns (tests use an
	// in-memory one). The server does not close it.
	Storage rlog.Store
	// Transport, if set, replaces the TCP transport between members (tests
	// use an in-memory network); clients are then served through ServeConn
	// or on Listener if set.
	Transport func(handler transport.Handler) transport.Transport
	// Peers seeds addresses of other members for a member joining with an
	// empty log.
	Peers map[uint64]string
	// SourceIP, if set, is the local IP the member dials its peers from
	// (normally the IP it listens on), so firewalls can tell members apart.
	SourceIP net.IP
	// TLS secures peer and client connections with mutual TLS.
	TLS *tls.Config

	// TickInterval is the Raft tick (default 10 ms); ElectionTicks and
	// HeartbeatTicks are in ticks (defaults 20 and 2: a 200–400 ms election
	// timeout, 20 ms heartbeats).
	TickInterval   time.Duration
	ElectionTicks  int
	HeartbeatTicks int
	// CommitDelay bounds how long followers may go without learning of a
	// commit when the leader has nothing else to send them (default 1 ms;
	// negative: at once). The next append normally carries it, so a leader
	// under load sends no message of its own per commit; a follower
	// applies, and answers Sequential reads, up to CommitDelay later.
	CommitDelay time.Duration

	// MinSessionTimeout and MaxSessionTimeout bound the timeouts clients may
	// ask for (defaults 1 s and 5 min).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration

	// SnapshotEntries is how many entries are applied between state images
	// (default 8192). TrailingEntries is how many applied entries the log
	// keeps above the compaction point at least (default 2048), so that a
	// follower that fell briefly behind catches up from the log rather than
	// by a snapshot. The leader also keeps, for a follower that is
	// replicating from the log, every entry it still needs (up to
	// 64×SnapshotEntries behind, which bounds the disk), and compacts nothing
	// while it streams a snapshot: a transfer slower than the window still
	// converges.
	SnapshotEntries int
	TrailingEntries int
	// SnapshotBytes takes an image sooner than SnapshotEntries when the
	// entries applied since the last one hold this many bytes (default
	// 64 MiB), so that a log of large values is compacted by its size, not
	// only by its count.
	SnapshotBytes int64
	// SegmentSize is the size past which the log starts a new segment file
	// (default 8 MiB). Only whole sealed segments at or below the compaction
	// point are cleaned, so it bounds how much garbage waits on disk.
	SegmentSize int64
	// NoCompaction keeps the whole log: no images, no cleaning. For
	// measuring what cleaning costs and saves.
	NoCompaction bool

	// NoSync turns off fsync in the log: only for tests and benchmarks of
	// the CPU path. A member that acknowledges unsynced entries can lose
	// committed data in a power failure.
	NoSync bool

	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.TickInterval <= 0 {
		c.TickInterval = 10 * time.Millisecond
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = 20
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = 2
	}
	if c.SnapshotEntries <= 0 {
		c.SnapshotEntries = 8192
	}
	if c.SnapshotBytes <= 0 {
		c.SnapshotBytes = 64 << 20
	}
	if c.TrailingEntries <= 0 {
		c.TrailingEntries = 2048
	}
	if c.SegmentSize <= 0 {
		c.SegmentSize = 8 << 20
	}
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = time.Second
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = 5 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.ID == 0 {
		errs = append(errs, errors.New("ID must not be 0"))
	}
	if c.ClusterID == "" {
		errs = append(errs, errors.New("ClusterID must be set"))
	}
	if c.Addr == "" && c.Listener == nil && c.Transport == nil {
		errs = append(errs, errors.New("Addr or Listener must be set"))
	}
	if c.DataDir == "" && c.Storage == nil {
		errs = append(errs, errors.New("DataDir or Storage must be set"))
	}
	if c.ElectionTicks <= c.HeartbeatTicks {
		errs = append(errs, fmt.Errorf("ElectionTicks (%d) must exceed HeartbeatTicks (%d)", c.ElectionTicks, c.HeartbeatTicks))
	}
	if c.MinSessionTimeout > c.MaxSessionTimeout {
		errs = append(errs, fmt.Errorf("MinSessionTimeout (%v) exceeds MaxSessionTimeout (%v)", c.MinSessionTimeout, c.MaxSessionTimeout))
	}
	if electionTimeout := time.Duration(c.ElectionTicks) * c.TickInterval; c.MinSessionTimeout < 2*electionTimeout {
		errs = append(errs, fmt.Errorf("MinSessionTimeout (%v) must be at least twice the election timeout (%v), or sessions expire across ordinary elections", c.MinSessionTimeout, electionTimeout))
	}
	if len(errs) > 0 {
		return fmt.Errorf("server: invalid config: %w", errors.Join(errs...))
	}
	return nil
}
