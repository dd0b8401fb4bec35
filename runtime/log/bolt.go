package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/copycat-go/copycat/runtime/raft"
)

// Keys of the records every file keeps in raft-boltdb's stable-store bucket.
var (
	keyFormat = []byte("copycat.format") // stableFormat or segmentFormat
	keyLogID  = []byte("copycat.log-id") // random identity of the log, the same in all its files
	keyFirst  = []byte("copycat.first")  // segments: the first index the segment covers
	keyRange  = []byte("copycat.range")  // cleaned segments: first and last index covered, with a CRC-32C
)

// The bucket names raft-boltdb creates; our files hold nothing else.
var (
	bucketLogs = []byte("logs")
	bucketConf = []byte("conf")
)

// boltContents is what checkBolt saw in a file: the conf records and the
// keys of the logs bucket, as runs of consecutive indexes.
type boltContents struct {
	conf map[string][]byte
	logs uint64 // number of log keys
	runs []run  // ascending, neither overlapping nor touching
}

// openBolt checks the file at path (see checkBolt), checks that it is one of
// ours — its format record one of formats and, if logID is not nil, the
// log's identity — and only then opens it with raft-boltdb, with panics
// converted to errors for good measure. Errors are not wrapped with the path.
//
// owner names the file logID comes from, for the error when they differ.
func openBolt(path string, o *Options, formats []string, logID []byte, owner string) (*raftboltdb.BoltStore, *boltContents, error) {
	c, err := scanBolt(path)
	if err != nil {
		return nil, nil, err
	}
	switch got := c.conf[string(keyFormat)]; {
	case got == nil:
		return nil, nil, fmt.Errorf("%w: no copycat format record (a raft-boltdb store or another bolt database?)", ErrForeign)
	case !slices.Contains(formats, string(got)):
		want := make([]string, len(formats))
		for k, f := range formats {
			want[k] = strconv.Quote(f)
		}
		return nil, nil, fmt.Errorf("%w: format %q, want %s", ErrForeign, got, strings.Join(want, " or "))
	}
	if logID != nil && !bytes.Equal(c.conf[string(keyLogID)], logID) {
		return nil, nil, fmt.Errorf("%w: belongs to another log (identity %x, %s has %x)", ErrForeign, c.conf[string(keyLogID)], owner, logID)
	}
	var store *raftboltdb.BoltStore
	err = safely(func() (err error) {
		store, err = raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: o.BoltOptions, NoSync: o.NoSync})
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return store, c, nil
}

// scanBolt runs checkBolt over path, collecting its contents.
func scanBolt(path string) (*boltContents, error) {
	c := &boltContents{conf: make(map[string][]byte)}
	err := checkBolt(path, func(p [][]byte, key, value []byte, bucket bool) error {
		switch {
		case len(p) == 0:
			if !bucket || !(bytes.Equal(key, bucketLogs) || bytes.Equal(key, bucketConf)) {
				return fmt.Errorf("%w: unexpected top-level key %q", ErrForeign, key)
			}
		case len(p) > 1 || bucket:
			return fmt.Errorf("%w: unexpected nested bucket %q", ErrForeign, key)
		case bytes.Equal(p[0], bucketConf):
			c.conf[string(key)] = bytes.Clone(value)
		default: // logs: raft-boltdb's keys are big-endian indexes
			if len(key) != 8 {
				return fmt.Errorf("%w: log key %x is not an index", ErrCorrupt, key)
			}
			// checkBolt checks that keys ascend; this keeps runs sound
			// whatever it lets through.
			i := binary.BigEndian.Uint64(key)
			switch n := len(c.runs); {
			case n > 0 && i <= c.runs[n-1].hi:
				return fmt.Errorf("%w: log key %d after %d", ErrCorrupt, i, c.runs[n-1].hi)
			case n > 0 && c.runs[n-1].hi+1 == i:
				c.runs[n-1].hi = i
			default:
				c.runs = append(c.runs, run{lo: i, hi: i})
			}
			c.logs++
		}
		return nil
	})
	return c, err
}

// createBolt writes a new file at path holding the given records and
// entries: first under a temporary name, then renamed into place and the
// directory synced, so that a crash leaves either no file or a complete
// one. Open removes leftover temporary files. The file is then reopened for
// use.
func createBolt(path string, o *Options, records [][2][]byte, ents []raft.Entry, failBefore, failAfter string) (*raftboltdb.BoltStore, error) {
	tmp := path + tmpSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: tmp, BoltOptions: o.BoltOptions, NoSync: o.NoSync})
	if err != nil {
		return nil, err
	}
	for _, r := range records {
		if err := store.Set(r[0], r[1]); err != nil {
			store.Close()
			return nil, err
		}
	}
	if len(ents) > 0 {
		if err := storeEntries(store, ents); err != nil {
			store.Close()
			return nil, err
		}
	}
	if err := store.Close(); err != nil {
		return nil, err
	}
	if err := fail(failBefore); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	if err := syncDir(filepath.Dir(path), o.NoSync); err != nil {
		return nil, err
	}
	if err := fail(failAfter); err != nil {
		return nil, err
	}
	return raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: o.BoltOptions, NoSync: o.NoSync})
}

const tmpSuffix = ".tmp"

// safely runs f, turning a panic or a memory fault (a bolt file damaged in a
// way checkBolt missed) into an error wrapping ErrCorrupt.
func safely(f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: bolt panicked: %v", ErrCorrupt, r)
		}
	}()
	return f()
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string, noSync bool) error {
	if noSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func uint64Bytes(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
