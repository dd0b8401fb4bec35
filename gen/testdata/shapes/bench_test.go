package shapes

import (
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Run with: go test -run '^$' -bench . -benchmem ./gen/testdata/shapes/
//
// Each benchmark encodes and decodes one value the way the generated
// dispatch and client do (msgpack.Marshal / msgpack.Unmarshal): the
// generated structs through their written-out EncodeMsgpack/DecodeMsgpack,
// the plain structs through msgpack's reflection.

// plainBasics is StoreBasics without generated methods.
type plainBasics struct {
	B   bool
	I   int
	I8  int8
	U   uint16
	U64 uint64
	F32 float32
	F64 float64
	Str string
	R   rune
	By  byte
}

// plainTimes is StoreTimes without generated methods.
type plainTimes struct {
	D    time.Duration
	At   time.Time
	Temp Celsius
}

var (
	basics = StoreBasics{B: true, I: -12345, I8: -8, U: 16, U64: 1 << 60, F32: 1.5, F64: 2.5, Str: "hello, world", R: 'r', By: 'b'}
	times  = StoreTimes{D: time.Hour, At: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), Temp: 21.5}
)

func roundTrip[T any](b *testing.B, v *T) {
	b.ReportAllocs()
	for b.Loop() {
		data, err := msgpack.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		var out T
		if err := msgpack.Unmarshal(data, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBasics_Generated(b *testing.B) { roundTrip(b, &basics) }

func BenchmarkBasics_Reflection(b *testing.B) {
	p := plainBasics(basics)
	roundTrip(b, &p)
}

func BenchmarkTimes_Generated(b *testing.B) { roundTrip(b, &times) }

func BenchmarkTimes_Reflection(b *testing.B) {
	p := plainTimes(times)
	roundTrip(b, &p)
}

func BenchmarkSum_Generated(b *testing.B) {
	v := StoreSum{Base: 1, More: []int64{2, 3, 4}}
	roundTrip(b, &v)
}

func BenchmarkSum_Reflection(b *testing.B) {
	v := struct {
		Base int64
		More []int64
	}{1, []int64{2, 3, 4}}
	roundTrip(b, &v)
}

// TestGeneratedMatchesValues checks the generated codecs round-trip.
func TestGeneratedMatchesValues(t *testing.T) {
	data, err := msgpack.Marshal(&basics)
	if err != nil {
		t.Fatal(err)
	}
	var got StoreBasics
	if err := msgpack.Unmarshal(data, &got); err != nil || got != basics {
		t.Fatalf("basics: got %+v, %v", got, err)
	}
	data, err = msgpack.Marshal(&times)
	if err != nil {
		t.Fatal(err)
	}
	var gt StoreTimes
	if err := msgpack.Unmarshal(data, &gt); err != nil || !gt.At.Equal(times.At) || gt.D != times.D || gt.Temp != times.Temp {
		t.Fatalf("times: got %+v, %v", gt, err)
	}
}
