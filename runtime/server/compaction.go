package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	rlog "github.com/copycat-go/copycat/runtime/log"
	"github.com/copycat-go/copycat/runtime/node"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/statemachine"
)

// Log cleaning, the member's side (DESIGN.md, "The log"). Every
// SnapshotEntries applied entries, or SnapshotBytes of them if that comes
// first (large values), the apply path takes a state image at the
// last applied index I (statemachine.Snapshot: sessions, registry,
// Snapshot-mode resources, the live set). The image waits in memory until I
// may become the compaction point C — the log keeps TrailingEntries above
// it, the leader does not compact past an active follower that is not far
// behind, nor while it streams a snapshot — and then the compactor, off the
// apply path, makes it durable (Store.Compact) and cleans the segments at or
// below C of every entry outside the live set (Store.Clean).

// compactionState is guarded by Server.mu.
type compactionState struct {
	conf      raft.Configuration // the configuration as of the last applied entry
	lastImage uint64             // index of the newest image taken
	bytes     int64              // bytes of entries applied since it
	pending   *pendingImage      // taken, not yet the compaction point
	point     statemachine.ImageInfo
	stats     CompactionStats
}

type pendingImage struct {
	snap raft.Snapshot
	info statemachine.ImageInfo
}

// CompactionStats describes the member's log cleaning.
type CompactionStats struct {
	// Point is the compaction point C; Live is the number of entries at or
	// below it that the log keeps.
	Point uint64
	Live  int
	// ImageBytes is the size of the image at C.
	ImageBytes int
	// Images counts images taken; Compactions counts compaction points made
	// durable; Cleanings counts cleaning passes.
	Images, Compactions, Cleanings int
	// LastClean is the last cleaning pass's result.
	LastClean rlog.CleanStats
	// LongestImage is the longest time taking an image held up applying.
	LongestImage time.Duration
	// LongestPause is the longest time a cleaning pass held the log's lock,
	// which stalls appends and reads.
	LongestPause time.Duration
}

// CompactionStats returns figures about log cleaning on this member.
func (s *Server) CompactionStats() CompactionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.comp.stats
}

// trackConfig follows the configuration through applied entries, for the
// image's metadata.
func (s *Server) trackConfig(e raft.Entry) {
	if e.Type != raft.EntryConfig {
		return
	}
	c, err := raft.DecodeConfiguration(e.Data)
	if err != nil {
		s.log.Error("undecodable configuration entry", "index", e.Index, "err", err)
		return
	}
	c.Index, c.Term = e.Index, e.Term
	s.comp.conf = c
}

// maybeImage takes an image after the applied batch ents if enough has been
// applied since the previous one: SnapshotEntries entries or SnapshotBytes
// of them. Called with s.mu held.
func (s *Server) maybeImage(ents []raft.Entry) {
	for k := range ents {
		s.comp.bytes += int64(len(ents[k].Data))
	}
	last := ents[len(ents)-1]
	if s.cfg.NoCompaction || s.comp.pending != nil ||
		(last.Index < s.comp.lastImage+uint64(s.cfg.SnapshotEntries) && s.comp.bytes < s.cfg.SnapshotBytes) {
		return
	}
	s.comp.bytes = 0
	start := time.Now()
	img, info, err := s.sm.Snapshot()
	if err != nil {
		// Not fatal: the log keeps growing until a later image succeeds.
		s.log.Error("state image failed", "index", last.Index, "err", err)
		s.comp.lastImage = last.Index
		return
	}
	s.comp.pending = &pendingImage{
		snap: raft.Snapshot{Meta: raft.SnapshotMeta{Index: last.Index, Term: last.Term, Config: s.comp.conf.Clone()}, Data: img},
		info: info,
	}
	s.comp.lastImage = last.Index
	s.comp.stats.Images++
	s.comp.stats.LongestImage = max(s.comp.stats.LongestImage, time.Since(start))
	select {
	case s.compactWake <- struct{}{}:
	default:
	}
}

// restoreImage loads the log's compaction point at start: the image, then
// the live entries at or below it.
func (s *Server) restoreImage() error {
	snap, err := s.store.Snapshot()
	if err != nil {
		return fmt.Errorf("server: read the compaction point: %w", err)
	}
	if snap.Meta.Index == 0 {
		return nil
	}
	start := time.Now()
	info, err := s.sm.Restore(snap.Data, func(yield func(statemachine.LiveEntry) error) error {
		return s.store.Compacted(func(e raft.Entry) error {
			return yield(statemachine.LiveEntry{Index: e.Index, Timestamp: e.Timestamp, Data: e.Data})
		})
	})
	if err != nil {
		return fmt.Errorf("server: restore the state at the compaction point %d: %w", snap.Meta.Index, err)
	}
	s.installed(snap, info)
	s.log.Info("state restored from the compaction point", "index", snap.Meta.Index, "image_bytes", len(snap.Data),
		"live", len(s.comp.point.Live), "duration", time.Since(start))
	return nil
}

// applySnapshot replaces the state with a snapshot the leader streamed; the
// node has put it in the log already.
func (s *Server) applySnapshot(snap raft.Snapshot, live []raft.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, err := s.sm.Restore(snap.Data, func(yield func(statemachine.LiveEntry) error) error {
		for _, e := range live {
			if err := yield(statemachine.LiveEntry{Index: e.Index, Timestamp: e.Timestamp, Data: e.Data}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.installed(snap, info)
	// Whatever waited for an index at or below the snapshot's may go on.
	close(s.appliedCh)
	s.appliedCh = make(chan struct{})
	return nil
}

// installed records that the state machine now stands at snap. Called with
// s.mu held, or before the member starts.
func (s *Server) installed(snap raft.Snapshot, info statemachine.ImageInfo) {
	s.comp.conf = snap.Meta.Config.Clone()
	s.comp.lastImage = snap.Meta.Index
	s.comp.pending = nil
	s.comp.point = info
	s.comp.stats.Point = snap.Meta.Index
	s.comp.stats.Live = len(info.Live)
	s.comp.stats.ImageBytes = len(snap.Data)
}

// liveEntries streams the live entries at or below a snapshot to a follower.
func (s *Server) liveEntries(snap raft.Snapshot, fn func(raft.Entry) error) error {
	info, err := statemachine.ReadImageInfo(snap.Data)
	if err != nil {
		return err
	}
	n := 0
	err = s.store.Compacted(func(e raft.Entry) error {
		if !info.Contains(e.Index) {
			return nil
		}
		n++
		return fn(e)
	})
	if err == nil && n != len(info.Live) {
		// The log compacted and cleaned past this snapshot while it was
		// being read: the stream is abandoned, and the leader's core sends
		// the newer one.
		err = fmt.Errorf("server: snapshot %d: %d of its %d live entries left in the log", snap.Meta.Index, n, len(info.Live))
	}
	return err
}

// checkSnapshot checks a snapshot received from the leader before it
// replaces anything: the image decodes and every live entry it names came.
func (s *Server) checkSnapshot(snap raft.Snapshot, live []raft.Entry) error {
	info, err := statemachine.ReadImageInfo(snap.Data)
	if err != nil {
		return err
	}
	if info.Index != snap.Meta.Index {
		return fmt.Errorf("server: snapshot %d carries an image of %d", snap.Meta.Index, info.Index)
	}
	if len(live) != len(info.Live) {
		return fmt.Errorf("server: snapshot %d: %d live entries came, the image names %d", snap.Meta.Index, len(live), len(info.Live))
	}
	for i, e := range live {
		if e.Index != info.Live[i] {
			return fmt.Errorf("server: snapshot %d: live entry %d came where the image names %d", snap.Meta.Index, e.Index, info.Live[i])
		}
	}
	return nil
}

// compactLoop makes pending images durable when the policy allows and
// cleans the log after each.
func (s *Server) compactLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(10 * s.cfg.TickInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.compactWake:
		case <-tick.C:
		}
		if err := s.compactOnce(); err != nil {
			s.log.Error("log compaction failed", "err", err)
		}
	}
}

// errNotYet says the pending image may not become the compaction point yet.
var errNotYet = errors.New("not yet")

func (s *Server) compactOnce() error {
	s.mu.Lock()
	p := s.comp.pending
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := s.mayCompact(p.snap.Meta.Index); err != nil {
		if errors.Is(err, errNotYet) {
			return nil
		}
		return err
	}
	if err := s.store.Compact(p.snap); err != nil {
		s.mu.Lock()
		superseded := s.comp.pending != p
		s.mu.Unlock()
		if superseded {
			return nil // a snapshot from the leader replaced the state meanwhile
		}
		return fmt.Errorf("compact at %d: %w", p.snap.Meta.Index, err)
	}
	s.mu.Lock()
	if s.comp.pending != p || s.comp.point.Index >= p.snap.Meta.Index {
		// A snapshot from the leader was installed meanwhile: the log's
		// compaction point is that one, which p's live set does not
		// describe.
		s.mu.Unlock()
		return nil
	}
	s.comp.pending = nil
	s.comp.point = p.info
	s.comp.stats.Compactions++
	s.comp.stats.Point = p.snap.Meta.Index
	s.comp.stats.Live = len(p.info.Live)
	s.comp.stats.ImageBytes = len(p.snap.Data)
	s.mu.Unlock()
	// Clean does nothing if the point moved again since: p's live set
	// describes p only.
	cs, err := s.store.Clean(p.snap.Meta.Index, p.info.Contains)
	if err != nil {
		return fmt.Errorf("clean below %d: %w", p.snap.Meta.Index, err)
	}
	s.mu.Lock()
	s.comp.stats.Cleanings++
	s.comp.stats.LastClean = cs
	s.comp.stats.LongestPause = max(s.comp.stats.LongestPause, cs.LongestLockHold)
	s.mu.Unlock()
	return nil
}

// mayCompact applies the trailing-window policy to a candidate point.
func (s *Server) mayCompact(index uint64) error {
	n := s.currentNode()
	if n == nil {
		return errNotYet
	}
	st := n.Status()
	if st.Applied < index+uint64(s.cfg.TrailingEntries) {
		return errNotYet
	}
	if st.SoftState.State != raft.StateLeader {
		return nil
	}
	if n.SnapshotInFlight() {
		return errNotYet
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	full, err := n.FullStatus(ctx)
	cancel()
	if err != nil {
		return errNotYet
	}
	// A follower replicating from the log keeps what it still needs, however
	// far behind it is, up to a cap that bounds the disk: a window of a fixed
	// size would send a slow follower one snapshot after another (it falls
	// behind again while each transfers) and it might never catch up.
	maxLag := 64 * uint64(s.cfg.SnapshotEntries)
	for id, pr := range full.Progress {
		if id == s.cfg.ID || pr.Match >= index {
			continue
		}
		if pr.State == raft.StateSnapshot {
			// Installing a snapshot (silent meanwhile: it writes and
			// replays the live entries): keep what comes after it.
			if pr.PendingSnapshot < index && full.Applied-pr.PendingSnapshot <= maxLag {
				return errNotYet
			}
			continue
		}
		if pr.RecentActive && full.Applied-pr.Match <= maxLag {
			return errNotYet
		}
	}
	return nil
}

// StateDigest returns the last applied index and a digest of the whole
// replicated state there (statemachine.Digest): members at the same index
// must have equal digests.
func (s *Server) StateDigest() (uint64, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.sm.Digest()
	if err != nil {
		return 0, "", err
	}
	return s.sm.Index(), fmt.Sprintf("%x", d[:8]), nil
}

// SnapshotStats returns the member's snapshot streams: sent to lagging
// followers, and installed from the leader.
func (s *Server) SnapshotStats() node.SnapshotStats {
	if n := s.currentNode(); n != nil {
		return n.SnapshotStats()
	}
	return node.SnapshotStats{}
}

// LogUsage returns the operator's view of the member's log: segments,
// entries, how many are live (entries at or below the compaction point are
// live if the image there names them; those above it all are), bytes.
func (s *Server) LogUsage() (rlog.Usage, error) {
	s.mu.Lock()
	point := s.comp.point
	s.mu.Unlock()
	return s.store.Usage(func(index uint64) bool {
		return index > point.Index || point.Contains(index)
	})
}
