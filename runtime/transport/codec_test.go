package transport

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/copycat-go/copycat/runtime/raft"
)

var genFuzzSeeds = flag.Bool("gen-fuzz-seeds", false, "rewrite testdata/fuzz/FuzzDecodeBatch seeds")

// randBytes returns nil, empty or random bytes.
func randBytes(r *rand.Rand, maxLen int) []byte {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, r.IntN(maxLen+1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randUint returns small and large values, to cover every msgpack width.
func randUint(r *rand.Rand) uint64 {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return uint64(r.IntN(200))
	case 2:
		return uint64(r.Uint32())
	}
	return r.Uint64()
}

func randMessage(r *rand.Rand) raft.Message {
	m := raft.Message{
		Group: randUint(r), Type: raft.MessageType(1 + r.IntN(int(raft.MsgReadIndexResp))),
		From: randUint(r), To: randUint(r), Term: randUint(r), LogTerm: randUint(r),
		Index: randUint(r), Commit: randUint(r), Reject: r.IntN(2) == 0,
		RejectHint: randUint(r), Context: randUint(r),
	}
	switch r.IntN(3) {
	case 0:
	case 1:
		m.Entries = []raft.Entry{}
	default:
		for range 1 + r.IntN(20) {
			m.Entries = append(m.Entries, raft.Entry{
				Term: randUint(r), Index: randUint(r), Type: raft.EntryType(r.IntN(256)),
				Timestamp: int64(randUint(r)), Data: randBytes(r, 300),
			})
		}
	}
	if r.IntN(3) == 0 {
		s := &raft.Snapshot{Data: randBytes(r, 1000)}
		s.Meta.Index, s.Meta.Term = randUint(r), randUint(r)
		s.Meta.Config.Index, s.Meta.Config.Term = randUint(r), randUint(r)
		switch r.IntN(3) {
		case 0:
		case 1:
			s.Meta.Config.Members = []raft.Member{}
		default:
			for range 1 + r.IntN(7) {
				s.Meta.Config.Members = append(s.Meta.Config.Members, raft.Member{
					ID: randUint(r), Type: raft.MemberType(r.IntN(256)),
					Addr: fmt.Sprintf("10.0.0.%d:%d", r.IntN(256), r.IntN(65536)),
				})
			}
		}
		m.Snapshot = s
	}
	return m
}

func randBatch(r *rand.Rand) []raft.Message {
	n := r.IntN(40)
	if n == 0 {
		return nil
	}
	msgs := make([]raft.Message, n)
	for i := range msgs {
		msgs[i] = randMessage(r)
	}
	return msgs
}

// TestCodecRoundTrip is a property test: decode(encode(b)) == b for random
// batches covering every field, nil and empty slices, and every int width.
func TestCodecRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var buf []byte
	for i := range 500 {
		msgs := randBatch(r)
		var err error
		buf, err = EncodeBatch(buf, msgs)
		check(t, err)
		got, err := DecodeBatch(buf)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, msgs) {
			t.Fatalf("batch %d: round trip changed it:\n got %+v\nwant %+v", i, got, msgs)
		}
	}
}

// Decoded messages own their memory: the frame buffer is reused at once.
func TestDecodeDoesNotAlias(t *testing.T) {
	msgs := []raft.Message{{Type: raft.MsgSnap, Entries: []raft.Entry{{Data: []byte("entry")}},
		Snapshot: &raft.Snapshot{Data: []byte("state"), Meta: raft.SnapshotMeta{Config: raft.Configuration{
			Members: []raft.Member{{ID: 1, Type: raft.Active, Addr: "a:1"}}}}}}}
	body, err := EncodeBatch(nil, msgs)
	check(t, err)
	got, err := DecodeBatch(body)
	check(t, err)
	clear(body)
	if !reflect.DeepEqual(got, msgs) {
		t.Fatalf("decoded batch changed with its frame buffer: %+v", got)
	}
}

// enc builds test inputs with msgpack's encoder.
func enc(f func(e *msgpack.Encoder)) []byte {
	var w appendBuf
	f(msgpack.NewEncoder(&w))
	return w.b
}

// messageHeader encodes a message's fields up to Entries, with the given
// field count and type.
func messageHeader(e *msgpack.Encoder, fields int, typ uint64) {
	e.EncodeArrayLen(fields)
	e.EncodeUint(0)   // group
	e.EncodeUint(typ) // type
	for range 5 {     // from, to, term, logterm, index
		e.EncodeUint(1)
	}
}

func messageTail(e *msgpack.Encoder) {
	e.EncodeUint(0)     // commit
	e.EncodeBool(false) // reject
	e.EncodeUint(0)     // rejecthint
	e.EncodeUint(0)     // context
	e.EncodeNil()       // snapshot
}

func TestDecodeBatchRejects(t *testing.T) {
	valid, err := EncodeBatch(nil, []raft.Message{app(1, 2, 3)})
	check(t, err)
	tests := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"not an array", enc(func(e *msgpack.Encoder) { e.EncodeString("hello") })},
		{"nil batch", enc(func(e *msgpack.Encoder) { e.EncodeNil() })},
		{"count beyond the bytes", enc(func(e *msgpack.Encoder) { e.EncodeArrayLen(1 << 30) })},
		{"message type 0", enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(1)
			messageHeader(e, messageFields, 0)
			e.EncodeNil()
			messageTail(e)
		})},
		{"unknown message type", enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(1)
			messageHeader(e, messageFields, uint64(raft.MsgSnapChunkResp)+1)
			e.EncodeNil()
			messageTail(e)
		})},
		{"message type beyond a byte", enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(1)
			messageHeader(e, messageFields, 256+uint64(raft.MsgApp))
			e.EncodeNil()
			messageTail(e)
		})},
		{"too few fields", enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(1)
			messageHeader(e, messageFields-1, uint64(raft.MsgApp))
			e.EncodeNil()
			messageTail(e)
		})},
		{"entry count beyond the bytes", enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(1)
			messageHeader(e, messageFields, uint64(raft.MsgApp))
			e.EncodeArrayLen(100000)
			messageTail(e)
		})},
		{"data length beyond the bytes", enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(1)
			messageHeader(e, messageFields, uint64(raft.MsgApp))
			e.EncodeArrayLen(1)
			e.EncodeArrayLen(entryFields)
			e.EncodeUint(1)
			e.EncodeUint(1)
			e.EncodeUint(0)
			e.EncodeInt(0)
			e.EncodeBytesLen(1 << 31)
		})},
		{"entry type beyond a byte", enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(1)
			messageHeader(e, messageFields, uint64(raft.MsgApp))
			e.EncodeArrayLen(1)
			e.EncodeArrayLen(entryFields)
			e.EncodeUint(1)
			e.EncodeUint(1)
			e.EncodeUint(300)
			e.EncodeInt(0)
			e.EncodeNil()
			messageTail(e)
		})},
		{"snapshot with wrong shape", enc(func(e *msgpack.Encoder) {
			e.EncodeArrayLen(1)
			messageHeader(e, messageFields, uint64(raft.MsgSnap))
			e.EncodeNil()
			e.EncodeUint(0)
			e.EncodeBool(false)
			e.EncodeUint(0)
			e.EncodeUint(0)
			e.EncodeArrayLen(1)
			e.EncodeUint(1)
		})},
		{"truncated", valid[:len(valid)-3]},
		{"trailing bytes", append(append([]byte{}, valid...), 0xc0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := DecodeBatch(tt.body)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeBatch = %v, %v; want ErrMalformed", msgs, err)
			}
		})
	}
}

func FuzzDecodeBatch(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := DecodeBatch(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not match ErrMalformed", err)
			}
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := EncodeBatch(nil, msgs)
		if err != nil {
			t.Fatal(err)
		}
		msgs2, err := DecodeBatch(again)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if !reflect.DeepEqual(msgs, msgs2) {
			t.Fatalf("re-encoding changed the batch:\n%+v\n%+v", msgs, msgs2)
		}
	})
}

// fuzzSeeds are valid batches and near misses; the committed corpus under
// testdata/fuzz/FuzzDecodeBatch holds the same, written by
// go test -run TestWriteFuzzSeeds -gen-fuzz-seeds.
func fuzzSeeds() [][]byte {
	r := rand.New(rand.NewPCG(7, 7))
	var seeds [][]byte
	add := func(msgs []raft.Message) {
		b, err := EncodeBatch(nil, msgs)
		if err != nil {
			panic(err)
		}
		seeds = append(seeds, b)
	}
	add(nil)
	add([]raft.Message{app(1, 2, 3)})
	add([]raft.Message{{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 5, Commit: 9, Context: 4}})
	for range 3 {
		add(randBatch(r))
	}
	valid := seeds[len(seeds)-1]
	seeds = append(seeds,
		valid[:len(valid)/2],                                                  // truncated
		append(append([]byte{}, valid...), 0x01),                              // trailing byte
		[]byte{0xdd, 0xff, 0xff, 0xff, 0xff},                                  // huge count
		[]byte{0x91, 0x9d, 0, 0x0d, 1, 2, 3, 4, 5, 0x90, 0, 0xc2, 0, 0, 0xc0}, // unknown type 13
		[]byte("GET / HTTP/1.1\r\n"),
	)
	return seeds
}

func TestWriteFuzzSeeds(t *testing.T) {
	if !*genFuzzSeeds {
		t.Skip("run with -gen-fuzz-seeds to rewrite the committed fuzz corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeBatch")
	check(t, os.MkdirAll(dir, 0o755))
	for i, seed := range fuzzSeeds() {
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(seed)) + ")\n"
		check(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(content), 0o644))
	}
}

// benchBatch is a typical replication batch: 64 appends of 4 entries of 128 bytes.
func benchBatch() []raft.Message {
	msgs := make([]raft.Message, 64)
	for i := range msgs {
		m := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 7, LogTerm: 7,
			Index: uint64(1000 + 4*i), Commit: uint64(990 + 4*i)}
		for j := range 4 {
			m.Entries = append(m.Entries, raft.Entry{Term: 7, Index: m.Index + uint64(j) + 1,
				Timestamp: 1_700_000_000_000_000_000, Data: make([]byte, 128)})
		}
		msgs[i] = m
	}
	return msgs
}

func BenchmarkEncodeBatch(b *testing.B) {
	msgs := benchBatch()
	buf, _ := EncodeBatch(nil, msgs)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = EncodeBatch(buf, msgs)
	}
	b.ReportMetric(float64(len(msgs))*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkDecodeBatch(b *testing.B) {
	msgs := benchBatch()
	buf, _ := EncodeBatch(nil, msgs)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBatch(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(msgs))*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
