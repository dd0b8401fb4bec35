package log

import "errors"

var (
	// ErrCorrupt is returned when a file of the log is damaged: it is not a
	// valid bolt database, an entry does not decode, or the segments do not
	// fit together (a gap, a first index that does not match the file name,
	// terms that go down).
	ErrCorrupt = errors.New("log: corrupt")
	// ErrForeign is returned when a file in the log directory is a sound bolt
	// database that is not ours: a hashicorp raft-boltdb store, a segment of
	// another log, or a format version this code does not read.
	ErrForeign = errors.New("log: foreign file")
	// ErrClosed is returned by every method of a closed Log or Memory.
	ErrClosed = errors.New("log: closed")
)
