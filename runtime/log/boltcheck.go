package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// checkBolt reads a bolt file with plain, bounds-checked Go before bbolt ever
// maps it, and reports the first structural problem. It exists because bbolt
// trusts its files: a damaged page makes it fault on an address outside the
// map, or, when the freelist is not synced (our tuning), panic inside a
// goroutine that Open starts to rebuild the freelist, which no recover() can
// catch. checkBolt verifies everything that rebuild and later cursors rely
// on: meta pages and checksums, page ids and types, page bounds against the
// file size, each page referenced once, key order within and across pages,
// bucket headers and inline pages, and the synced freelist if there is one.
// Data values are not checksummed by bolt; entries are validated when decoded.
//
// visit is called for every key in key order, with the path of bucket names
// leading to it; bucket keys have a nil value and bucket set.
//
// The layout read here is bbolt's version 2 file format on a little-endian
// machine, the only one bbolt writes on the platforms we build for.
func checkBolt(path string, visit func(path [][]byte, key, value []byte, bucket bool) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	c := &boltChecker{r: f, size: st.Size(), seen: make(map[uint64]bool), visit: visit}
	if err := c.check(); err != nil {
		if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrForeign) { // from visit
			return err
		}
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

const (
	boltMagic         = 0xED0CDAED
	boltVersion       = 2
	boltPageHeader    = 16
	boltElemSize      = 16
	boltBranchPage    = 0x01
	boltLeafPage      = 0x02
	boltFreelistPage  = 0x10
	boltBucketLeaf    = 0x01
	boltBucketHeader  = 16
	boltNoFreelist    = ^uint64(0)
	boltMetaSumOffset = 56 // bytes of the meta struct covered by its checksum
	boltMaxDepth      = 64
)

type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	hwm      uint64 // first page id past the end of the data
	txid     uint64
}

type boltChecker struct {
	r        io.ReaderAt
	size     int64
	pageSize uint64
	hwm      uint64
	seen     map[uint64]bool
	visit    func(path [][]byte, key, value []byte, bucket bool) error
}

var le = binary.LittleEndian

func (c *boltChecker) check() error {
	if c.size == 0 {
		return errors.New("empty file")
	}
	m, err := c.readMeta()
	if err != nil {
		return err
	}
	c.pageSize, c.hwm = uint64(m.pageSize), m.hwm
	if c.hwm < 3 || c.hwm > uint64(c.size)/c.pageSize {
		return fmt.Errorf("file of %d bytes is truncated: meta says %d pages of %d bytes", c.size, c.hwm, c.pageSize)
	}
	var freelist []byte
	if m.freelist != boltNoFreelist {
		if freelist, err = c.page(m.freelist, boltFreelistPage); err != nil {
			return fmt.Errorf("freelist: %w", err)
		}
	}
	if err := c.walkPage(nil, m.root, nil, nil, 0); err != nil {
		return err
	}
	if freelist != nil {
		return c.checkFreelist(freelist)
	}
	return nil
}

// readMeta picks the meta page bbolt would use: the page size from the first
// valid meta (bbolt probes the second at 1 KiB..16 MiB when the first is bad),
// then the valid meta with the highest transaction id.
func (c *boltChecker) readMeta() (boltMeta, error) {
	var pageSize uint32
	if m, err := c.metaAt(0); err == nil {
		pageSize = m.pageSize
	} else {
		for i := 0; i <= 14 && pageSize == 0; i++ {
			pos := int64(1024) << i
			if pos >= c.size-1024 {
				break
			}
			if m, err := c.metaAt(pos); err == nil {
				pageSize = m.pageSize
			}
		}
		if pageSize == 0 {
			return boltMeta{}, fmt.Errorf("not a bolt database: %v", err)
		}
	}
	if pageSize < 1024 || pageSize > 1<<24 || pageSize&(pageSize-1) != 0 {
		return boltMeta{}, fmt.Errorf("bad page size %d", pageSize)
	}
	if c.size < 2*int64(pageSize) {
		return boltMeta{}, fmt.Errorf("file of %d bytes is too small", c.size)
	}
	m0, err0 := c.metaAt(0)
	m1, err1 := c.metaAt(int64(pageSize))
	switch {
	case err0 != nil && err1 != nil:
		return boltMeta{}, fmt.Errorf("both meta pages invalid: %v", err0)
	case err0 != nil:
		m0 = m1
	case err1 == nil && m1.txid > m0.txid:
		m0 = m1
	}
	if m0.pageSize != pageSize {
		return boltMeta{}, fmt.Errorf("meta pages disagree on the page size (%d, %d)", pageSize, m0.pageSize)
	}
	return m0, nil
}

func (c *boltChecker) metaAt(off int64) (boltMeta, error) {
	buf := make([]byte, boltPageHeader+boltMetaSumOffset+8)
	if _, err := c.r.ReadAt(buf, off); err != nil {
		return boltMeta{}, fmt.Errorf("read meta at %d: %w", off, err)
	}
	m := buf[boltPageHeader:]
	if le.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, errors.New("bad magic")
	}
	if v := le.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("bolt version %d", v)
	}
	h := fnv.New64a()
	h.Write(m[:boltMetaSumOffset])
	if h.Sum64() != le.Uint64(m[boltMetaSumOffset:]) {
		return boltMeta{}, errors.New("meta checksum mismatch")
	}
	return boltMeta{
		pageSize: le.Uint32(m[8:]),
		root:     le.Uint64(m[16:]),
		freelist: le.Uint64(m[32:]),
		hwm:      le.Uint64(m[40:]),
		txid:     le.Uint64(m[48:]),
	}, nil
}

// page reads page id with its overflow pages, checking that it lies in the
// file, names itself id, has the expected type and is referenced only once.
func (c *boltChecker) page(id uint64, flags uint16) ([]byte, error) {
	if id < 2 || id >= c.hwm {
		return nil, fmt.Errorf("page %d out of bounds [2, %d)", id, c.hwm)
	}
	var hdr [boltPageHeader]byte
	if _, err := c.r.ReadAt(hdr[:], int64(id*c.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	if got := le.Uint64(hdr[0:]); got != id {
		return nil, fmt.Errorf("page %d calls itself %d", id, got)
	}
	if got := le.Uint16(hdr[8:]); got&flags == 0 || got&^(boltBranchPage|boltLeafPage|boltFreelistPage) != 0 || got&(got-1) != 0 {
		return nil, fmt.Errorf("page %d has type %#x, want %#x", id, got, flags)
	}
	overflow := uint64(le.Uint32(hdr[12:]))
	if id+overflow >= c.hwm {
		return nil, fmt.Errorf("page %d overflows %d pages past the end", id, overflow)
	}
	for i := uint64(0); i <= overflow; i++ {
		if c.seen[id+i] {
			return nil, fmt.Errorf("page %d referenced twice", id+i)
		}
		c.seen[id+i] = true
	}
	buf := make([]byte, (overflow+1)*c.pageSize)
	if _, err := c.r.ReadAt(buf, int64(id*c.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return buf, nil
}

// walkPage checks the subtree at page id, whose keys must lie in [lo, hi)
// (nil: unbounded).
func (c *boltChecker) walkPage(path [][]byte, id uint64, lo, hi []byte, depth int) error {
	if depth > boltMaxDepth {
		return errors.New("tree too deep")
	}
	p, err := c.page(id, boltBranchPage|boltLeafPage)
	if err != nil {
		return err
	}
	if le.Uint16(p[8:])&boltLeafPage != 0 {
		return c.walkLeaf(path, p, lo, hi, depth)
	}
	n := int(le.Uint16(p[10:]))
	if n == 0 || boltPageHeader+n*boltElemSize > len(p) {
		return fmt.Errorf("branch page %d has %d elements", id, n)
	}
	keys := make([][]byte, n)
	children := make([]uint64, n)
	for i := range n {
		at := boltPageHeader + i*boltElemSize
		key, _, err := elemKV(p, at, uint64(le.Uint32(p[at:])), uint64(le.Uint32(p[at+4:])), 0)
		if err != nil {
			return fmt.Errorf("branch page %d element %d: %w", id, i, err)
		}
		if err := keyInRange(key, lo, hi, keys, i); err != nil {
			return fmt.Errorf("branch page %d element %d: %w", id, i, err)
		}
		keys[i], children[i] = key, le.Uint64(p[at+8:])
	}
	for i, child := range children {
		next := hi
		if i+1 < n {
			next = keys[i+1]
		}
		if err := c.walkPage(path, child, keys[i], next, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// walkLeaf checks a leaf page held in p (a page read from the file, or an
// inline bucket's page inside its parent's value) and visits its keys.
func (c *boltChecker) walkLeaf(path [][]byte, p []byte, lo, hi []byte, depth int) error {
	if len(p) < boltPageHeader {
		return errors.New("leaf page too short")
	}
	id := le.Uint64(p)
	n := int(le.Uint16(p[10:]))
	if boltPageHeader+n*boltElemSize > len(p) {
		return fmt.Errorf("leaf page %d: %d elements do not fit", id, n)
	}
	keys := make([][]byte, n)
	for i := range n {
		at := boltPageHeader + i*boltElemSize
		flags := le.Uint32(p[at:])
		key, value, err := elemKV(p, at, uint64(le.Uint32(p[at+4:])), uint64(le.Uint32(p[at+8:])), uint64(le.Uint32(p[at+12:])))
		if err != nil {
			return fmt.Errorf("leaf page %d element %d: %w", id, i, err)
		}
		if err := keyInRange(key, lo, hi, keys, i); err != nil {
			return fmt.Errorf("leaf page %d element %d: %w", id, i, err)
		}
		keys[i] = key
		switch flags {
		case 0:
			if c.visit != nil {
				if err := c.visit(path, key, value, false); err != nil {
					return err
				}
			}
		case boltBucketLeaf:
			if c.visit != nil {
				if err := c.visit(path, key, nil, true); err != nil {
					return err
				}
			}
			if err := c.walkBucket(append(path[:len(path):len(path)], key), value, depth+1); err != nil {
				return err
			}
		default:
			return fmt.Errorf("leaf page %d element %d: flags %#x", id, i, flags)
		}
	}
	return nil
}

func (c *boltChecker) walkBucket(path [][]byte, value []byte, depth int) error {
	if depth > boltMaxDepth {
		return errors.New("buckets nested too deep")
	}
	if len(value) < boltBucketHeader {
		return fmt.Errorf("bucket %q: header of %d bytes", path[len(path)-1], len(value))
	}
	if root := le.Uint64(value); root != 0 {
		return c.walkPage(path, root, nil, nil, depth)
	}
	inline := value[boltBucketHeader:]
	if len(inline) < boltPageHeader || le.Uint16(inline[8:]) != boltLeafPage {
		return fmt.Errorf("bucket %q: bad inline page", path[len(path)-1])
	}
	return c.walkLeaf(path, inline, nil, nil, depth)
}

// elemKV returns the key (and value) of the element at offset at, whose data
// starts pos bytes after the element.
func elemKV(p []byte, at int, pos, ksize, vsize uint64) (key, value []byte, err error) {
	start := uint64(at) + pos
	end := start + ksize + vsize
	if pos > uint64(len(p)) || ksize > uint64(len(p)) || vsize > uint64(len(p)) || end > uint64(len(p)) {
		return nil, nil, fmt.Errorf("key/value of %d+%d bytes at %d past the page end %d", ksize, vsize, start, len(p))
	}
	return p[start : start+ksize], p[start+ksize : end], nil
}

func keyInRange(key, lo, hi []byte, keys [][]byte, i int) error {
	switch {
	case i > 0 && bytes.Compare(keys[i-1], key) >= 0:
		return fmt.Errorf("key %x not above the previous key %x", key, keys[i-1])
	case lo != nil && bytes.Compare(key, lo) < 0:
		return fmt.Errorf("key %x below its parent's %x", key, lo)
	case hi != nil && bytes.Compare(key, hi) >= 0:
		return fmt.Errorf("key %x not below its parent's next key %x", key, hi)
	}
	return nil
}

// checkFreelist checks a synced freelist page: every id must lie in the file
// and not be reachable from the tree.
func (c *boltChecker) checkFreelist(p []byte) error {
	count, idx := uint64(le.Uint16(p[10:])), uint64(0)
	if count == 0xFFFF {
		if len(p) < boltPageHeader+8 {
			return errors.New("freelist: too short")
		}
		count, idx = le.Uint64(p[boltPageHeader:]), 1
	}
	room := uint64(len(p)-boltPageHeader) / 8
	if count > room || idx+count > room {
		return fmt.Errorf("freelist: %d ids do not fit", count)
	}
	for i := idx; i < idx+count; i++ {
		id := le.Uint64(p[boltPageHeader+8*i:])
		if id < 2 || id >= c.hwm {
			return fmt.Errorf("freelist: page %d out of bounds [2, %d)", id, c.hwm)
		}
		if c.seen[id] {
			return fmt.Errorf("freelist: page %d is both free and in use", id)
		}
	}
	return nil
}
