package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/copycat-go/copycat/runtime/raft"
)

// An image file holds the state image at the compaction point (the Data of
// the snapshot given to Compact or Install), named after the point it
// belongs to:
//
//	image-<index, 20 digits>-<term, 20 digits>.snap
//
// It is a fixed header followed by the image bytes:
//
//	magic    8 bytes  "CCIMAGE\n"
//	version  uint32   imageVersion
//	log ID   16 bytes the identity of the log it belongs to
//	index    uint64   the compaction point
//	term     uint64
//	size     uint64   bytes of image data after the header
//	data CRC uint32   CRC-32C of the image data
//	head CRC uint32   CRC-32C of the header bytes before it
//
// all integers big-endian. The compaction record in stable.db also records
// the size and data CRC, so Open loads exactly the image that record was
// written with.
const (
	imageMagic      = "CCIMAGE\n"
	imageVersion    = 1
	imageHeaderSize = 8 + 4 + 16 + 8 + 8 + 8 + 4 + 4
	imageSuffix     = ".snap"
)

// imageHeader is the decoded header of an image file.
type imageHeader struct {
	logID   []byte
	index   uint64
	term    uint64
	size    uint64
	dataCRC uint32
}

// imageRef is what the compaction record says about its image.
type imageRef struct {
	present bool
	size    uint64
	crc     uint32
}

func imageName(index, term uint64) string {
	return fmt.Sprintf("image-%020d-%020d%s", index, term, imageSuffix)
}

// parseImageName returns the point named by an image file name.
func parseImageName(name string) (index, term uint64, ok bool) {
	s, ok := strings.CutPrefix(name, "image-")
	if !ok {
		return 0, 0, false
	}
	s, ok = strings.CutSuffix(s, imageSuffix)
	if !ok || len(s) != 41 || s[20] != '-' {
		return 0, 0, false
	}
	index, err1 := strconv.ParseUint(s[:20], 10, 64)
	term, err2 := strconv.ParseUint(s[21:], 10, 64)
	return index, term, err1 == nil && err2 == nil
}

func encodeImageHeader(h imageHeader) []byte {
	b := make([]byte, 0, imageHeaderSize)
	b = append(b, imageMagic...)
	b = binary.BigEndian.AppendUint32(b, imageVersion)
	b = append(b, h.logID...)
	b = binary.BigEndian.AppendUint64(b, h.index)
	b = binary.BigEndian.AppendUint64(b, h.term)
	b = binary.BigEndian.AppendUint64(b, h.size)
	b = binary.BigEndian.AppendUint32(b, h.dataCRC)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// decodeImageHeader decodes the header at the start of b. Its errors say
// what is wrong and wrap nothing; the caller adds the file and the class.
func decodeImageHeader(b []byte) (imageHeader, error) {
	if len(b) < imageHeaderSize {
		return imageHeader{}, fmt.Errorf("header of %d bytes, want %d", len(b), imageHeaderSize)
	}
	b = b[:imageHeaderSize]
	if string(b[:8]) != imageMagic {
		return imageHeader{}, fmt.Errorf("no image magic (%q)", b[:8])
	}
	if got, want := binary.BigEndian.Uint32(b[imageHeaderSize-4:]), crc32.Checksum(b[:imageHeaderSize-4], crcTable); got != want {
		return imageHeader{}, fmt.Errorf("header checksum %08x, want %08x", got, want)
	}
	if v := binary.BigEndian.Uint32(b[8:]); v != imageVersion {
		return imageHeader{}, fmt.Errorf("unsupported image version %d", v)
	}
	return imageHeader{
		logID:   bytes.Clone(b[12:28]),
		index:   binary.BigEndian.Uint64(b[28:]),
		term:    binary.BigEndian.Uint64(b[36:]),
		size:    binary.BigEndian.Uint64(b[44:]),
		dataCRC: binary.BigEndian.Uint32(b[52:]),
	}, nil
}

// writeImage writes data as the image at meta's point: under a temporary
// name, synced, renamed into place, and the directory synced, so that a
// crash leaves either no image file or a whole one (Open removes temporary
// files, and image files no compaction record names).
func writeImage(dir string, logID []byte, meta raft.SnapshotMeta, data []byte, noSync bool) (imageRef, error) {
	path := filepath.Join(dir, imageName(meta.Index, meta.Term))
	ref := imageRef{present: true, size: uint64(len(data)), crc: crc32.Checksum(data, crcTable)}
	if err := writeImageFile(path+tmpSuffix, imageHeader{logID: logID, index: meta.Index, term: meta.Term, size: ref.size, dataCRC: ref.crc}, data, noSync); err != nil {
		return imageRef{}, fmt.Errorf("log: image %s: %w", path, err)
	}
	if err := fail("image.before-rename"); err != nil {
		return imageRef{}, err
	}
	if err := os.Rename(path+tmpSuffix, path); err != nil {
		return imageRef{}, fmt.Errorf("log: image %s: %w", path, err)
	}
	if err := syncDir(dir, noSync); err != nil {
		return imageRef{}, fmt.Errorf("log: image %s: sync directory: %w", path, err)
	}
	if err := fail("image.after-rename"); err != nil {
		return imageRef{}, err
	}
	return ref, nil
}

func writeImageFile(path string, h imageHeader, data []byte, noSync bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(encodeImageHeader(h))
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil && !noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// readImage reads and checks the image at meta's point that the compaction
// record describes as ref. Errors name the file and wrap ErrCorrupt, or
// ErrForeign for an image of another log.
func readImage(dir string, logID []byte, meta raft.SnapshotMeta, ref imageRef) ([]byte, error) {
	path := filepath.Join(dir, imageName(meta.Index, meta.Term))
	data, err := readImageFile(path, logID, meta, ref)
	if err != nil {
		return nil, fmt.Errorf("log: image %s: %w", path, err)
	}
	return data, nil
}

func readImageFile(path string, logID []byte, meta raft.SnapshotMeta, ref imageRef) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: missing, but the compaction record at %d names it", ErrCorrupt, meta.Index)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	head := make([]byte, imageHeaderSize)
	if _, err := io.ReadFull(f, head); err != nil {
		return nil, fmt.Errorf("%w: file of %d bytes has no whole header", ErrCorrupt, st.Size())
	}
	h, err := decodeImageHeader(head)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	case !bytes.Equal(h.logID, logID):
		return nil, fmt.Errorf("%w: belongs to another log (identity %x, want %x)", ErrForeign, h.logID, logID)
	case h.index != meta.Index || h.term != meta.Term:
		return nil, fmt.Errorf("%w: holds the image at %d (term %d), its name says %d (term %d)", ErrCorrupt, h.index, h.term, meta.Index, meta.Term)
	case h.size != ref.size || h.dataCRC != ref.crc:
		return nil, fmt.Errorf("%w: %d bytes with CRC %08x, the compaction record says %d bytes with CRC %08x", ErrCorrupt, h.size, h.dataCRC, ref.size, ref.crc)
	case uint64(st.Size()) != imageHeaderSize+h.size:
		// Checked before allocating: a damaged size cannot ask for more
		// memory than the file holds.
		return nil, fmt.Errorf("%w: file of %d bytes, its header says %d", ErrCorrupt, st.Size(), imageHeaderSize+h.size)
	}
	data := make([]byte, h.size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("%w: reading data: %v", ErrCorrupt, err)
	}
	if got := crc32.Checksum(data, crcTable); got != h.dataCRC {
		return nil, fmt.Errorf("%w: data checksum %08x, want %08x", ErrCorrupt, got, h.dataCRC)
	}
	return data, nil
}
