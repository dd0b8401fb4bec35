package lock_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/copycat-go/copycat/resources/lock"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

// ExampleMutex takes a lock on a running cluster (it is compiled, not run:
// it needs members at those addresses; TestPackageDoc runs the same code
// in memory).
func ExampleMutex() {
	ctx := context.Background()
	cli, err := client.Connect(ctx, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	if err := useLock(ctx, cli, func(step int, tok lock.Token) {
		fmt.Println("step", step, "under token", tok)
	}); err != nil {
		panic(err)
	}
}

// useLock is the code of the package documentation.
func useLock(ctx context.Context, cli *client.Client, write func(step int, tok lock.Token)) error {
	m, err := lock.NewMutex(ctx, cli, "orders")
	if err != nil {
		return err
	}
	tok, err := m.Lock(ctx) // waits its turn
	if err != nil {
		return err
	}
	var aborted atomic.Bool
	stop := m.OnLost(func() { aborted.Store(true) }) // e.g. abort the work in flight
	defer stop()
	for step := range 3 {
		if !m.Held() {
			break // another client may hold the lock soon: stop writing
		}
		write(step, tok) // the store refuses tokens lower than it has seen
	}
	if err := m.Unlock(ctx); err != nil {
		return err
	}

	tok, ok, err := m.TryLock(ctx, 2*time.Second)
	if err != nil {
		return err
	}
	if ok {
		info, err := m.Holder(ctx)
		if err != nil {
			return err
		}
		if info.Token != uint64(tok) {
			return fmt.Errorf("holder %d, want %d", info.Token, tok)
		}
		return m.Unlock(ctx)
	}
	return nil
}

func TestPackageDoc(t *testing.T) {
	c := copycattest.NewCluster(t, 3, lock.LockType)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var steps []int
	err := useLock(ctx, c.Client(), func(step int, tok lock.Token) {
		if tok == 0 {
			t.Error("zero token")
		}
		steps = append(steps, step)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 {
		t.Fatalf("steps %v", steps)
	}
}
