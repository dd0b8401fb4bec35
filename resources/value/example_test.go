package value_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/copycat-go/copycat/resources/value"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

// ExampleValueClient writes and watches a value on a running cluster (it
// is compiled, not run: it needs members at those addresses;
// TestPackageDoc runs the same code in memory).
func ExampleValueClient() {
	ctx := context.Background()
	cli, err := client.Connect(ctx, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	err = useValue(ctx, cli, 10*time.Second, func(e value.Changed) {
		fmt.Printf("%q -> %q (expired %v)\n", e.Old, e.New, e.Expired)
	})
	if err != nil {
		panic(err)
	}
}

// useValue is the code of the package documentation; the lease lives for
// ttl.
func useValue(ctx context.Context, cli *client.Client, ttl time.Duration, seen func(value.Changed)) error {
	v, err := value.OpenValue(ctx, cli, "config")
	if err != nil {
		return err
	}
	stop, err := v.Watch(ctx, seen)
	if err != nil {
		return err
	}
	if err := v.Set(ctx, []byte("v1"), 0); err != nil { // no expiry
		return err
	}
	ok, err := v.CompareAndSet(ctx, []byte("v1"), []byte("v2"))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("CompareAndSet v1 -> v2 refused")
	}
	old, err := v.GetAndSet(ctx, []byte("v3"))
	if err != nil {
		return err
	}
	if string(old) != "v2" {
		return fmt.Errorf("GetAndSet returned %q, want v2", old)
	}
	if err := v.Set(ctx, []byte("lease"), ttl); err != nil { // gone ttl later
		return err
	}
	b, err := v.Get(ctx)
	if err != nil {
		return err
	}
	if string(b) != "lease" {
		return fmt.Errorf("Get returned %q, want lease", b)
	}
	// Wait for the expiry: the value reads nil once ttl has passed on the
	// state machine's clock.
	tick := time.NewTicker(max(ttl/10, 10*time.Millisecond))
	defer tick.Stop()
	for b != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if b, err = v.Get(ctx); err != nil {
			return err
		}
	}
	return stop(ctx) // seen has had every change by now
}

func TestPackageDoc(t *testing.T) {
	c := copycattest.NewCluster(t, 3, value.ValueType)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	var events []string
	err := useValue(ctx, c.Client(), 300*time.Millisecond, func(e value.Changed) {
		mu.Lock()
		events = append(events, fmt.Sprintf("%s->%s/%v", e.Old, e.New, e.Expired))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Unlisten's response follows every event published before it.
	want := "[->v1/false v1->v2/false v2->v3/false v3->lease/false lease->/true]"
	if got := fmt.Sprint(events); got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
}
