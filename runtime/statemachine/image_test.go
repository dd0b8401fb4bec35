package statemachine

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/session"
)

// kv is a Release-mode resource that keeps the release contract: a put
// releases the put it overwrites, a delete releases the put and itself, and a
// put with a TTL is released when its timer deletes the key. Puts publish an
// event to the writing session.
type kv struct {
	ctx  runtime.Context
	puts map[string]runtime.Commit
	vals map[string]string
	ttls map[string]runtime.Timer
}

const (
	opPut runtime.OpCode = 1 // args: key NUL value [NUL ttl-ms]
	opDel runtime.OpCode = 2
	opDig runtime.OpCode = 3 // query: a digest of the state
)

var kvType = &runtime.ResourceType{
	Name:       "test.KV",
	Compaction: runtime.Release,
	Operations: []runtime.Operation{
		{Code: opPut, Name: "Put", Kind: runtime.Command},
		{Code: opDel, Name: "Del", Kind: runtime.Command},
		{Code: opDig, Name: "Digest", Kind: runtime.Query},
	},
	Events: []runtime.EventType{{Code: 1, Name: "Put"}},
	New: func() runtime.Resource {
		return &kv{puts: map[string]runtime.Commit{}, vals: map[string]string{}, ttls: map[string]runtime.Timer{}}
	},
	EncodeEvent: func(e any) (runtime.EventCode, []byte, error) {
		if s, ok := e.(string); ok {
			return 1, []byte(s), nil
		}
		return 0, nil, errors.New("not an event")
	},
}

func (k *kv) Init(ctx runtime.Context) { k.ctx = ctx }

func (k *kv) drop(key string) {
	if p, ok := k.puts[key]; ok {
		p.Release()
	}
	if t, ok := k.ttls[key]; ok {
		t.Cancel()
	}
	delete(k.puts, key)
	delete(k.vals, key)
	delete(k.ttls, key)
}

func (k *kv) Execute(c runtime.Commit, op runtime.OpCode, args []byte) ([]byte, error) {
	parts := bytes.Split(args, []byte{0})
	key := string(parts[0])
	switch op {
	case opPut:
		k.drop(key)
		k.puts[key] = c
		k.vals[key] = fmt.Sprintf("%s@%d", parts[1], c.Index())
		if len(parts) > 2 {
			ms, _ := binary.Uvarint(parts[2])
			k.ttls[key] = k.ctx.Schedule(time.Duration(ms)*time.Millisecond, func() {
				c.Session().Publish("expired " + key)
				k.drop(key)
			})
		}
		c.Session().Publish("put " + key)
		return []byte(k.vals[key]), nil
	case opDel:
		k.drop(key)
		c.Release()
		return nil, nil
	case opDig:
		return []byte(k.digest()), nil
	}
	return nil, errors.New("unknown op")
}

func (k *kv) digest() string {
	var b bytes.Buffer
	for _, key := range slices.Sorted(maps.Keys(k.vals)) {
		_, ttl := k.ttls[key]
		fmt.Fprintf(&b, "%s=%s ttl=%v;", key, k.vals[key], ttl)
	}
	return b.String()
}

// tally is a Snapshot-mode resource: a sum and a deadline timer rebuilt in
// Init from the restored state.
type tally struct {
	ctx      runtime.Context
	sum      int64
	deadline int64 // UnixNano; a timer zeroes sum then
	timer    runtime.Timer
}

var tallyType = &runtime.ResourceType{
	Name:       "test.Tally",
	Compaction: runtime.Snapshot,
	Operations: []runtime.Operation{
		{Code: opPut, Name: "Add", Kind: runtime.Command},
		{Code: opDig, Name: "Digest", Kind: runtime.Query},
	},
	New: func() runtime.Resource { return &tally{} },
}

func (t *tally) Init(ctx runtime.Context) {
	t.ctx = ctx
	t.arm()
}

func (t *tally) arm() {
	if t.timer != nil {
		t.timer.Cancel()
	}
	if t.deadline != 0 {
		t.timer = t.ctx.Schedule(time.Unix(0, t.deadline).Sub(t.ctx.Now()), func() { t.sum, t.deadline = 0, 0 })
	}
}

func (t *tally) Execute(c runtime.Commit, op runtime.OpCode, args []byte) ([]byte, error) {
	switch op {
	case opPut:
		d, _ := binary.Varint(args)
		t.sum += d
		if d%3 == 0 {
			t.deadline = c.Time().Add(40 * time.Millisecond).UnixNano()
			t.arm()
		}
		return binary.AppendVarint(nil, t.sum), nil
	case opDig:
		return fmt.Appendf(nil, "sum=%d deadline=%d", t.sum, t.deadline), nil
	}
	return nil, errors.New("unknown op")
}

func (t *tally) Snapshot(w io.Writer) error {
	return binary.Write(w, binary.BigEndian, [2]int64{t.sum, t.deadline})
}

func (t *tally) Restore(r io.Reader) error {
	var v [2]int64
	if err := binary.Read(r, binary.BigEndian, &v); err != nil {
		return err
	}
	t.sum, t.deadline = v[0], v[1]
	return nil
}

// logEntry is one applied entry as the log holds it.
type logEntry struct {
	index uint64
	ts    int64
	data  []byte
}

// workload generates a random stream of entries: sessions opening, keeping
// alive and closing, resources opening and being deleted, puts, deletes,
// TTLs, tally adds, out-of-order and retried commands.
type workload struct {
	rng      *rand.Rand
	sessions []uint64
	seq      map[uint64]uint64
	res      []uint64
	now      int64
}

func (w *workload) next(sm *StateMachine, index uint64) Entry {
	w.now += int64(w.rng.IntN(15)) * int64(time.Millisecond)
	if w.rng.IntN(8) == 0 {
		// A leader whose clock is behind the previous one's: entry
		// timestamps go back, state machine time does not.
		w.now -= int64(w.rng.IntN(60)) * int64(time.Millisecond)
	}
	if len(w.sessions) == 0 || w.rng.IntN(30) == 0 {
		return Entry{Kind: KindOpenSession, ClientID: "c", Timeout: time.Second}
	}
	s := w.sessions[w.rng.IntN(len(w.sessions))]
	switch r := w.rng.IntN(100); {
	case r < 5:
		return Entry{Kind: KindKeepAlive, KeepAlives: []KeepAlive{{Session: s, CommandAck: w.seq[s] / 2, EventAck: index / 2}}}
	case r < 7 && len(w.sessions) > 2:
		return Entry{Kind: KindCloseSession, Session: s, Expired: w.rng.IntN(2) == 0}
	case r < 12 || len(w.res) == 0:
		typ := kvType.Name
		if w.rng.IntN(3) == 0 {
			typ = tallyType.Name
		}
		return Entry{Kind: KindOpenResource, Session: s, Type: typ, Name: fmt.Sprint(w.rng.IntN(4))}
	case r < 13:
		return Entry{Kind: KindDeleteResource, Session: s, Resource: w.res[w.rng.IntN(len(w.res))]}
	}
	res := w.res[w.rng.IntN(len(w.res))]
	inst, ok := sm.resources[res]
	e := Entry{Kind: KindCommand, Session: s, Resource: res}
	switch {
	case w.rng.IntN(20) == 0 && w.seq[s] > 0:
		e.Sequence = w.seq[s] - uint64(w.rng.IntN(int(min(w.seq[s], 3)))) // a retry
	case w.rng.IntN(30) == 0:
		e.Sequence = w.seq[s] + 2 // ahead of its turn
	default:
		w.seq[s]++
		e.Sequence = w.seq[s]
	}
	if ok && inst.typ == tallyType {
		e.Op, e.Args = opPut, binary.AppendVarint(nil, int64(w.rng.IntN(10)))
		return e
	}
	key := fmt.Sprint(w.rng.IntN(6))
	if w.rng.IntN(4) == 0 {
		e.Op, e.Args = opDel, []byte(key)
		return e
	}
	e.Op, e.Args = opPut, fmt.Appendf(nil, "%s\x00v%d", key, w.rng.IntN(100))
	if w.rng.IntN(3) == 0 {
		e.Args = append(append(e.Args, 0), binary.AppendUvarint(nil, uint64(10+w.rng.IntN(100)))...)
	}
	return e
}

// observe updates the workload's view after an entry was applied.
func (w *workload) observe(sm *StateMachine) {
	w.sessions = sm.SessionIDs()
	w.res = slices.Sorted(maps.Keys(sm.resources))
	for id := range w.seq {
		if s, ok := sm.sessions.Get(id); ok && s.CommandSeq < w.seq[id] {
			w.seq[id] = s.CommandSeq // an out-of-order one did not apply
		}
	}
}

// digest is the whole observable state: the image taken now (sessions,
// registry, Snapshot-mode state, live set) plus every Release-mode
// resource's own digest, which the image does not hold.
func digest(t *testing.T, sm *StateMachine) string {
	t.Helper()
	img, info, err := sm.Snapshot()
	require.NoError(t, err)
	h := sha256.New()
	h.Write(img)
	fmt.Fprint(h, info.Live)
	for _, id := range sm.instanceIDs() {
		r := sm.Query(0, id, opDig, nil)
		require.Nil(t, r.Err)
		h.Write(r.Result)
	}
	fmt.Fprint(h, sm.Now().UnixNano(), sm.Index())
	return fmt.Sprintf("%x", h.Sum(nil))
}

var imageSeed = flag.Uint64("image.seed", 0, "run TestImage_RestoreEqualsHistory with this seed only")

// TestImage_RestoreEqualsHistory checks the log cleaning contract at the
// state machine: for random histories and compaction points C, restoring the
// image taken at C and replaying the log's entries at or below C (dead ones
// included: the machine skips what is not live), then applying the rest,
// gives the same outputs and the same state as applying the whole history.
func TestImage_RestoreEqualsHistory(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if *imageSeed != 0 {
		seeds = []uint64{*imageSeed}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			a, err := New(kvType, tallyType)
			require.NoError(t, err)
			w := &workload{rng: rng, seq: map[uint64]uint64{}, now: time.Unix(1000, 0).UnixNano()}
			var log []logEntry
			var outs [][]Output
			const n = 600
			c := uint64(100 + rng.IntN(n-200))
			var img []byte
			var info ImageInfo
			for i := uint64(1); i <= n; i++ {
				e := w.next(a, i)
				data, err := e.Encode()
				require.NoError(t, err)
				log = append(log, logEntry{i, w.now, data})
				out, err := a.Apply(i, w.now, data)
				require.NoError(t, err)
				outs = append(outs, out)
				w.observe(a)
				if i == c {
					img, info, err = a.Snapshot()
					require.NoError(t, err)
				}
			}
			require.Equal(t, c, info.Index)

			b, err := New(kvType, tallyType)
			require.NoError(t, err)
			_, err = b.Restore(img, func(yield func(LiveEntry) error) error {
				for _, e := range log[:c] {
					if err := yield(LiveEntry{e.index, e.ts, e.data}); err != nil {
						return err
					}
				}
				return nil
			})
			require.NoError(t, err)
			assert.Equal(t, c, b.Index())
			for _, e := range log[c:] {
				out, err := b.Apply(e.index, e.ts, e.data)
				require.NoError(t, err)
				require.Equal(t, outs[e.index-1], out, "entry %d: outputs after restore differ", e.index)
			}
			require.Equal(t, digest(t, a), digest(t, b), "state after restore differs (replay with -image.seed=%d)", seed)
		})
	}
}

// TestImage_OnlyLiveEntriesNeeded: the log may drop everything at or below C
// outside the live set, and restore still works — that is what lets log
// cleaning reclaim the space.
func TestImage_OnlyLiveEntriesNeeded(t *testing.T) {
	h := newImageHarness(t)
	s := h.openSession()
	m := h.open(s, kvType)
	p1 := h.command(s, m, opPut, "k\x00one")
	h.command(s, m, opPut, "k\x00two") // overwrites p1
	p3 := h.command(s, m, opPut, "j\x00three")
	h.command(s, m, opDel, "j") // releases p3 and itself
	p5 := h.command(s, m, opPut, "i\x00five")
	img, info, err := h.sm.Snapshot()
	require.NoError(t, err)
	assert.Equal(t, []uint64{p5.Index - 3, p5.Index}, info.Live, "the live put of k, and i")
	assert.NotContains(t, info.Live, p1.Index)
	assert.NotContains(t, info.Live, p3.Index)
	parsed, err := ReadImageInfo(img)
	require.NoError(t, err)
	assert.Equal(t, info, parsed)

	b, err := New(kvType, tallyType)
	require.NoError(t, err)
	restored, err := b.Restore(img, h.entries(info.Live))
	require.NoError(t, err)
	assert.Equal(t, info, restored, "Restore reports the image's live set")
	assert.Equal(t, digest(t, h.sm), digest(t, b))
	// A retry of a command whose entry is gone gets the original response.
	out, err := b.Apply(h.index+1, h.now.UnixNano(), h.encode(Entry{Kind: KindCommand, Session: s, Sequence: 1, Resource: m, Op: opPut, Args: []byte("k\x00again")}))
	require.NoError(t, err)
	require.Len(t, out, 1)
	assert.Equal(t, p1, out[0].Response, "exactly once across compaction")

	// A live entry the log lost is an error, not a silently different state.
	c, err := New(kvType, tallyType)
	require.NoError(t, err)
	_, err = c.Restore(img, h.entries(info.Live[1:]))
	require.ErrorIs(t, err, ErrImage)
	assert.Contains(t, err.Error(), fmt.Sprint(info.Live[0]))
}

func TestImage_Refused(t *testing.T) {
	h := newImageHarness(t)
	s := h.openSession()
	h.open(s, tallyType)
	img, _, err := h.sm.Snapshot()
	require.NoError(t, err)
	onlyKV, err := New(kvType)
	require.NoError(t, err)
	_, err = onlyKV.Restore(img, nil)
	require.ErrorIs(t, err, ErrImage, "a type this member does not host")
	_, err = onlyKV.Restore([]byte("junk"), nil)
	require.ErrorIs(t, err, ErrImage)
	_, err = ReadImageInfo(img[:len(img)/2])
	require.ErrorIs(t, err, ErrImage)
}

func TestImage_EventsAndTimersSurvive(t *testing.T) {
	h := newImageHarness(t)
	s := h.openSession()
	m := h.open(s, kvType)
	tl := h.open(s, tallyType)
	h.command(s, m, opPut, "k\x00v\x00"+string(binary.AppendUvarint(nil, 50))) // expires in 50ms
	h.command(s, tl, opPut, string(binary.AppendVarint(nil, 3)))               // deadline in 40ms
	img, info, err := h.sm.Snapshot()
	require.NoError(t, err)
	b, err := New(kvType, tallyType)
	require.NoError(t, err)
	_, err = b.Restore(img, h.entries(info.Live))
	require.NoError(t, err)
	sess, ok := b.Session(s)
	require.True(t, ok)
	require.Len(t, sess.EventsAfter(0), 1, "the unacknowledged event is part of the image")
	assert.Empty(t, b.TakePublished(), "replay published nothing anew")
	// Both timers fire on the restored machine exactly when they would have.
	for _, sm := range []*StateMachine{h.sm, b} {
		sm.Advance(h.index+1, h.now.Add(45*time.Millisecond).UnixNano())
	}
	assert.Equal(t, digest(t, h.sm), digest(t, b))
	assert.Contains(t, string(b.Query(s, tl, opDig, nil).Result), "sum=0")
	assert.Contains(t, string(b.Query(s, m, opDig, nil).Result), "k=", "not yet: 50ms")
	for _, sm := range []*StateMachine{h.sm, b} {
		sm.Advance(h.index+2, h.now.Add(55*time.Millisecond).UnixNano())
	}
	assert.Empty(t, string(b.Query(s, m, opDig, nil).Result))
	assert.Equal(t, digest(t, h.sm), digest(t, b))
}

type imageHarness struct {
	t     testing.TB
	sm    *StateMachine
	index uint64
	now   time.Time
	seq   map[uint64]uint64
	log   map[uint64]logEntry
}

func newImageHarness(t testing.TB) *imageHarness {
	sm, err := New(kvType, tallyType)
	require.NoError(t, err)
	return &imageHarness{t: t, sm: sm, now: time.Unix(1000, 0), seq: map[uint64]uint64{}, log: map[uint64]logEntry{}}
}

func (h *imageHarness) encode(e Entry) []byte {
	data, err := e.Encode()
	require.NoError(h.t, err)
	return data
}

func (h *imageHarness) apply(e Entry) []Output {
	h.index++
	h.now = h.now.Add(time.Millisecond)
	data := h.encode(e)
	h.log[h.index] = logEntry{h.index, h.now.UnixNano(), data}
	out, err := h.sm.Apply(h.index, h.now.UnixNano(), data)
	require.NoError(h.t, err)
	return out
}

func (h *imageHarness) openSession() uint64 {
	return h.apply(Entry{Kind: KindOpenSession, ClientID: "c", Timeout: 5 * time.Second})[0].Session
}

func (h *imageHarness) open(s uint64, typ *runtime.ResourceType) uint64 {
	return h.apply(Entry{Kind: KindOpenResource, Session: s, Type: typ.Name, Name: "r"})[0].Resource
}

func (h *imageHarness) command(s, res uint64, op runtime.OpCode, args string) session.Response {
	h.seq[s]++
	out := h.apply(Entry{Kind: KindCommand, Session: s, Sequence: h.seq[s], Resource: res, Op: op, Args: []byte(args)})
	require.Len(h.t, out, 1)
	require.Nil(h.t, out[0].Response.Err)
	return out[0].Response
}

// entries yields only the given indexes of the log: what is left after
// cleaning dropped every dead entry.
func (h *imageHarness) entries(live []uint64) func(func(LiveEntry) error) error {
	return func(yield func(LiveEntry) error) error {
		for _, i := range live {
			e := h.log[i]
			if err := yield(LiveEntry{e.index, e.ts, e.data}); err != nil {
				return err
			}
		}
		return nil
	}
}

// FuzzRestore: a damaged image is an error, never a panic or a state built
// from garbage.
func FuzzRestore(f *testing.F) {
	h := newImageHarness(f)
	s := h.openSession()
	m := h.open(s, kvType)
	h.open(s, tallyType)
	h.command(s, m, opPut, "k\x00v")
	img, _, err := h.sm.Snapshot()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(img)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		sm, err := New(kvType, tallyType)
		require.NoError(t, err)
		if _, err := sm.Restore(data, nil); err != nil {
			return
		}
		// What decodes must describe itself consistently.
		_, err = ReadImageInfo(data)
		require.NoError(t, err)
	})
}
