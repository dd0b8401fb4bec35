package log

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/bbolt"
)

const (
	// DefaultSegmentSize is the file size past which the head segment is
	// sealed and a new one started.
	DefaultSegmentSize = 64 << 20
	// DefaultCleanThreshold is the live fraction below which Clean rewrites
	// a segment.
	DefaultCleanThreshold = 0.5
	// DefaultCacheSize is how many of the most recent entries are kept in
	// memory to serve reads without touching bolt.
	DefaultCacheSize = 4096
	// defaultLockTimeout bounds the wait for another process's lock on a file
	// of the log, so a second Open of a directory fails instead of hanging.
	defaultLockTimeout = time.Second
)

// Options configures Open. The zero value of every field but Dir means its
// default; call EnsureDefaults to see them and Validate to check a value.
type Options struct {
	// Dir holds stable.db, the segment files and the image. It is created
	// if missing.
	Dir string

	// SegmentSize is the size in bytes past which the head segment's file is
	// sealed: the next batch starts a new segment at the next index. A batch is
	// never split, so a segment may exceed it by one batch. Bolt grows files
	// in steps (doubling up to 16 MiB), so sizes below 32 KiB mean "a segment
	// per batch"; tests use 1 for that. Default DefaultSegmentSize.
	SegmentSize int64

	// CacheSize is the number of most recent entries kept in memory.
	// Default DefaultCacheSize.
	CacheSize int

	// CleanThreshold is the fraction of live entries below which Clean
	// rewrites a sealed segment at or below the compaction point: lower
	// means less rewriting and more garbage kept on disk. In (0, 1];
	// default DefaultCleanThreshold.
	CleanThreshold float64

	// NoSync skips every fsync (bolt commits and directory syncs). It is
	// UNSAFE: acknowledged entries and votes can be lost on a machine crash,
	// which breaks Raft's safety. For tests only.
	NoSync bool

	// BoltOptions are passed to bbolt for every file. Nil means the defaults
	// tuned for a log, set by EnsureDefaults: NoFreelistSync (no freelist
	// write per commit; Open rebuilds it by scanning, which our integrity
	// check does anyway), the map freelist, and a lock timeout of one second.
	// ReadOnly is not allowed.
	BoltOptions *bbolt.Options

	// NoBoltTuning makes EnsureDefaults leave out the log tuning (bbolt's
	// defaults plus the lock timeout). It exists to measure the tuning.
	NoBoltTuning bool

	// Logger receives notices about recovery (stray files removed, segments
	// dropped). Default slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills the zero fields of o with their defaults and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.CleanThreshold == 0 {
		o.CleanThreshold = DefaultCleanThreshold
	}
	if o.BoltOptions == nil {
		bo := &bbolt.Options{Timeout: defaultLockTimeout}
		if !o.NoBoltTuning {
			bo.NoFreelistSync = true
			bo.FreelistType = bbolt.FreelistMapType
		}
		o.BoltOptions = bo
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate reports every problem with o at once, joined.
func (o *Options) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("log: options: dir is required"))
	}
	if o.SegmentSize <= 0 {
		errs = append(errs, errors.New("log: options: segment size must be greater than 0"))
	}
	if o.CacheSize <= 0 {
		errs = append(errs, errors.New("log: options: cache size must be greater than 0"))
	}
	if !(o.CleanThreshold > 0 && o.CleanThreshold <= 1) {
		errs = append(errs, fmt.Errorf("log: options: clean threshold %v must lie in (0, 1]", o.CleanThreshold))
	}
	if o.BoltOptions != nil && o.BoltOptions.ReadOnly {
		errs = append(errs, errors.New("log: options: bolt options must not be read-only"))
	}
	return errors.Join(errs...)
}
