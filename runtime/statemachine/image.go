package statemachine

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/session"
)

// An image is the state machine's state at a compaction point C, less what
// the log itself keeps: the session table, the resource registry, the state
// of every Snapshot-mode resource, and the list of commands at or below C
// that Release-mode resources still hold (the live set L_C). Those commands
// stay in the log; replaying them, in index order, after loading the image
// rebuilds the Release-mode resources (DESIGN.md, "The log"). Everything else
// at or below C — session opens, keep-alives, resource opens and deletes,
// released commands, every command of a Snapshot-mode resource — is
// garbage once the image is durable.

const imageVersion = 1

// ErrImage is returned for an image that does not decode or does not fit
// the state machine (a resource type it does not host, a live entry missing).
var ErrImage = errors.New("statemachine: bad image")

type image struct {
	Version   int             `msgpack:"v"`
	Index     uint64          `msgpack:"index"`
	Time      int64           `msgpack:"time"` // UnixNano
	Sessions  []session.Image `msgpack:"sessions"`
	Resources []resourceImage `msgpack:"resources"`
}

type resourceImage struct {
	ID   uint64 `msgpack:"id"`
	Type string `msgpack:"type"`
	Name string `msgpack:"name"`
	// State is a Snapshot-mode resource's Snapshot output.
	State []byte `msgpack:"state,omitempty"`
	// Live lists the commands a Release-mode resource holds, in index order,
	// and LiveTimes the state machine time (UnixNano) each ran at.
	Live      []uint64 `msgpack:"live,omitempty"`
	LiveTimes []int64  `msgpack:"live_times,omitempty"`
}

// ImageInfo is what the log and the server need to know of an image without
// loading it.
type ImageInfo struct {
	// Index is the compaction point the image was taken at.
	Index uint64
	// Live is the live set: the commands at or below Index that must stay in
	// the log, in index order.
	Live []uint64
}

// Contains reports whether index is in the live set.
func (i ImageInfo) Contains(index uint64) bool {
	_, ok := slices.BinarySearch(i.Live, index)
	return ok
}

// Snapshot returns the image of the state machine at its last applied index
// and the live set. Snapshot-mode resources are snapshotted and their
// commands stop being live; Release-mode resources keep theirs.
func (sm *StateMachine) Snapshot() ([]byte, ImageInfo, error) {
	return sm.snapshot(true)
}

// Digest returns a digest of the whole state at the last applied index.
// Members that applied the same entries have equal digests: the image is
// written deterministically and names the live entries, which are the same
// on every member (Log Matching). Unlike Snapshot it changes nothing.
func (sm *StateMachine) Digest() ([sha256.Size]byte, error) {
	img, _, err := sm.snapshot(false)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	return sha256.Sum256(img), nil
}

func (sm *StateMachine) snapshot(cover bool) ([]byte, ImageInfo, error) {
	img := image{Version: imageVersion, Index: sm.index, Time: sm.now.UnixNano()}
	for _, id := range sm.sessions.IDs() {
		s, _ := sm.sessions.Get(id)
		img.Sessions = append(img.Sessions, s.Image())
	}
	var live []uint64
	var covered []*instance
	for _, id := range sm.instanceIDs() {
		inst := sm.resources[id]
		ri := resourceImage{ID: inst.id, Type: inst.typ.Name, Name: inst.name}
		if snap, ok := snapshotter(inst); ok {
			var buf bytes.Buffer
			if err := snap.Snapshot(&buf); err != nil {
				return nil, ImageInfo{}, fmt.Errorf("statemachine: snapshot %s %q (%d): %w", inst.typ.Name, inst.name, inst.id, err)
			}
			ri.State = buf.Bytes()
			covered = append(covered, inst)
		} else {
			ri.Live = slices.Sorted(maps.Keys(inst.commands))
			for _, idx := range ri.Live {
				ri.LiveTimes = append(ri.LiveTimes, inst.commands[idx])
			}
			live = append(live, ri.Live...)
		}
		img.Resources = append(img.Resources, ri)
	}
	data, err := msgpack.Marshal(&img)
	if err != nil {
		return nil, ImageInfo{}, fmt.Errorf("statemachine: encode image at %d: %w", sm.index, err)
	}
	// Only once the image exists do the snapshotted commands stop holding
	// state: a failed snapshot leaves them live.
	for _, inst := range covered {
		if cover {
			clear(inst.commands)
		}
	}
	slices.Sort(live)
	return data, ImageInfo{Index: sm.index, Live: live}, nil
}

// snapshotter returns the Snapshotter of a Snapshot-mode resource; a
// Release-mode one (or a Snapshot-mode one that cannot snapshot itself) is
// rebuilt from its live commands instead.
func snapshotter(inst *instance) (runtime.Snapshotter, bool) {
	if inst.typ.Compaction != runtime.Snapshot {
		return nil, false
	}
	s, ok := inst.res.(runtime.Snapshotter)
	return s, ok
}

// ReadImageInfo decodes an image's index and live set.
func ReadImageInfo(data []byte) (ImageInfo, error) {
	img, err := decodeImage(data)
	if err != nil {
		return ImageInfo{}, err
	}
	return img.info(), nil
}

// info returns the image's index and live set.
func (img *image) info() ImageInfo {
	var live []uint64
	for _, r := range img.Resources {
		live = append(live, r.Live...)
	}
	slices.Sort(live)
	return ImageInfo{Index: img.Index, Live: live}
}

func decodeImage(data []byte) (image, error) {
	var img image
	if err := checkLengths(data); err != nil {
		return image{}, fmt.Errorf("%w: %v", ErrImage, err)
	}
	if err := msgpack.Unmarshal(data, &img); err != nil {
		return image{}, fmt.Errorf("%w: %v", ErrImage, err)
	}
	if img.Version != imageVersion {
		return image{}, fmt.Errorf("%w: version %d, want %d", ErrImage, img.Version, imageVersion)
	}
	return img, nil
}

// LiveEntry is one log entry handed to Restore.
type LiveEntry struct {
	Index     uint64
	Timestamp int64
	Data      []byte
}

// Restore replaces the whole state with the image's and replays the live
// commands at or below its index. entries must call yield for the log's
// entries at or below the image's index in increasing index order; entries
// not in the live set (not cleaned yet) are skipped, and a live one that
// never comes is an error. Nothing Restore does reaches clients: the
// sessions' response caches and event queues come from the image.
//
// The state machine is rebuilt in place (resources keep their Context, which
// points at it); if Restore fails, it is left empty and must not be used
// except for another Restore. It returns the image's index and live set.
func (sm *StateMachine) Restore(data []byte, entries func(yield func(LiveEntry) error) error) (ImageInfo, error) {
	img, err := decodeImage(data)
	if err != nil {
		return ImageInfo{}, err
	}
	*sm = StateMachine{
		types:     sm.types,
		sessions:  session.NewTable(),
		resources: map[uint64]*instance{},
		names:     map[[2]string]uint64{},
		published: map[uint64]bool{},
		replaying: true,
	}
	fresh := sm
	for _, si := range img.Sessions {
		fresh.sessions.Add(session.FromImage(si))
	}
	live := map[uint64]liveCommand{}
	var restored []*instance
	for _, ri := range img.Resources {
		typ, ok := sm.types[ri.Type]
		if !ok {
			return ImageInfo{}, fmt.Errorf("%w: resource %d has type %q, which this member does not host", ErrImage, ri.ID, ri.Type)
		}
		inst := &instance{id: ri.ID, name: ri.Name, typ: typ, res: typ.New(), commands: map[uint64]int64{}}
		fresh.resources[ri.ID] = inst
		fresh.names[[2]string{ri.Type, ri.Name}] = ri.ID
		if snap, ok := snapshotter(inst); ok {
			if err := snap.Restore(bytes.NewReader(ri.State)); err != nil {
				return ImageInfo{}, fmt.Errorf("%w: restore %s %q (%d): %v", ErrImage, ri.Type, ri.Name, ri.ID, err)
			}
			restored = append(restored, inst)
			continue
		}
		if len(ri.LiveTimes) != len(ri.Live) {
			return ImageInfo{}, fmt.Errorf("%w: resource %d lists %d live commands and %d times", ErrImage, ri.ID, len(ri.Live), len(ri.LiveTimes))
		}
		for i, idx := range ri.Live {
			live[idx] = liveCommand{inst: inst, time: ri.LiveTimes[i]}
		}
		// Release-mode instances start empty and are rebuilt by replay.
		fresh.initInstance(inst, ri.ID)
	}
	if entries != nil {
		err := entries(func(e LiveEntry) error {
			lc, ok := live[e.Index]
			if !ok {
				return nil
			}
			if e.Index > img.Index {
				return fmt.Errorf("%w: entry %d above the image's index %d", ErrImage, e.Index, img.Index)
			}
			delete(live, e.Index)
			return fresh.replay(lc, e)
		})
		if err != nil {
			return ImageInfo{}, fmt.Errorf("statemachine: restore image at %d: %w", img.Index, err)
		}
	}
	if len(live) > 0 {
		missing := slices.Sorted(maps.Keys(live))
		return ImageInfo{}, fmt.Errorf("%w: %d live entries missing from the log, first %d", ErrImage, len(missing), missing[0])
	}
	// Time catches up with the image; timers due by then fired before C too.
	fresh.index = img.Index
	fresh.fireDue(img.Index, time.Unix(0, img.Time))
	for _, inst := range restored {
		fresh.initInstance(inst, img.Index)
	}
	fresh.replaying = false
	return img.info(), nil
}

// liveCommand is a command the image names: its resource and the time it
// ran at.
type liveCommand struct {
	inst *instance
	time int64
}

// replay re-executes one live command of a Release-mode resource at the
// state machine time it first ran at (the running maximum of timestamps
// then, which the entry's own timestamp may be below: leaders' clocks
// differ), firing the timers due by then first, as the first run did.
func (sm *StateMachine) replay(lc liveCommand, e LiveEntry) error {
	inst := lc.inst
	if e.Index <= sm.index {
		return fmt.Errorf("%w: entry %d replayed after %d", ErrImage, e.Index, sm.index)
	}
	ent, err := DecodeEntry(e.Data)
	if err != nil {
		return fmt.Errorf("entry %d: %w", e.Index, err)
	}
	if ent.Kind != KindCommand || ent.Resource != inst.id {
		return fmt.Errorf("%w: live entry %d is a %s for resource %d, not a command for %d", ErrImage, e.Index, ent.Kind, ent.Resource, inst.id)
	}
	sm.index = e.Index
	sm.fireDue(e.Index, time.Unix(0, lc.time))
	exec := &execution{index: e.Index, session: ent.Session, resource: inst}
	sm.cur = exec
	// The outcome went to the client long ago (and sits in the session's
	// cache if it is still wanted); only the state matters here.
	_, _ = sm.safeExecute(inst, exec, ent.Op, ent.Args)
	sm.cur = nil
	if !exec.released {
		inst.commands[e.Index] = lc.time
	}
	return nil
}

func (sm *StateMachine) initInstance(inst *instance, index uint64) {
	if in, ok := inst.res.(runtime.Initializer); ok {
		sm.cur = &execution{index: index, resource: inst}
		in.Init(&resourceContext{sm: sm, inst: inst})
		sm.cur = nil
	}
}

// checkLengths walks msgpack data and refuses any array or map that claims
// more elements than bytes remain: msgpack's decoder allocates a slice of
// the claimed length up front, so a damaged length would otherwise exhaust
// memory before the decoder found the data short.
func checkLengths(data []byte) error {
	r := bytes.NewReader(data)
	dec := msgpack.NewDecoder(r)
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > 64 {
			return errors.New("nested too deeply")
		}
		c, err := dec.PeekCode()
		if err != nil {
			return err
		}
		switch {
		case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
			n, err := dec.DecodeArrayLen()
			if err != nil {
				return err
			}
			if n > r.Len() {
				return fmt.Errorf("an array of %d elements in %d bytes", n, r.Len())
			}
			for range n {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			return nil
		case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
			n, err := dec.DecodeMapLen()
			if err != nil {
				return err
			}
			if n > r.Len() {
				return fmt.Errorf("a map of %d entries in %d bytes", n, r.Len())
			}
			for range 2 * max(n, 0) {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			return nil
		}
		return dec.Skip()
	}
	return walk(0)
}
