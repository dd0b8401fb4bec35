package long_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/copycat-go/copycat/resources/long"
	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

// ExampleLongClient counts on a running cluster (it is compiled, not run:
// it needs members at those addresses; TestPackageDoc runs the same code
// in memory).
func ExampleLongClient() {
	ctx := context.Background()
	cli, err := client.Connect(ctx, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	r, err := useLong(ctx, cli)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.incremented, r.added, r.swapped, r.read)
}

// longResults are the answers of the steps of useLong.
type longResults struct {
	incremented int64 // IncrementAndGet
	added       int64 // AddAndGet(10)
	swapped     bool  // CompareAndSet(11, 0)
	read        int64 // Get, sequential
}

// useLong is the code of the package documentation.
func useLong(ctx context.Context, cli *client.Client) (longResults, error) {
	var r longResults
	n, err := long.OpenLong(ctx, cli, "requests")
	if err != nil {
		return r, err
	}
	if r.incremented, err = n.IncrementAndGet(ctx); err != nil { // 1
		return r, err
	}
	if r.added, err = n.AddAndGet(ctx, 10); err != nil { // 11
		return r, err
	}
	if r.swapped, err = n.CompareAndSet(ctx, 11, 0); err != nil { // true
		return r, err
	}
	// A sequential read is served by any member, and still sees this
	// session's own writes.
	r.read, err = n.Get(ctx, client.WithConsistency(runtime.Sequential))
	return r, err
}

func TestPackageDoc(t *testing.T) {
	c := copycattest.NewCluster(t, 3, long.LongType)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := useLong(ctx, c.Client())
	if err != nil {
		t.Fatal(err)
	}
	want := longResults{incremented: 1, added: 11, swapped: true, read: 0}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}

	// Another client sees the same instance, by name.
	n, err := long.OpenLong(ctx, c.Client(), "requests")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := n.Get(ctx); err != nil || v != 0 {
		t.Fatalf("Get from another client: %d, %v", v, err)
	}
}
