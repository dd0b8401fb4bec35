package group_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/copycat-go/copycat/resources/group"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/copycattest"
)

// ExampleGroupClient joins a group on a running cluster (it is compiled,
// not run: it needs members at those addresses; TestPackageDoc runs the
// same code in memory).
func ExampleGroupClient() {
	ctx := context.Background()
	cli, err := client.Connect(ctx, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	if err := useGroup(ctx, cli, func(c group.Changed) { fmt.Println(c.Kind, c.Member.ID) }); err != nil {
		panic(err)
	}
}

// useGroup is the code of the package documentation.
func useGroup(ctx context.Context, cli *client.Client, seen func(group.Changed)) error {
	g, err := group.OpenGroup(ctx, cli, "workers")
	if err != nil {
		return err
	}
	stop, err := g.Watch(ctx, seen)
	if err != nil {
		return err
	}
	me, err := g.Join(ctx, "worker-1", []byte("10.0.0.7:9000")) // leaves with the session
	if err != nil {
		return err
	}
	members, err := g.Members(ctx) // in join order
	if err != nil {
		return err
	}
	if len(members) != 1 || members[0].ID != me.ID {
		return fmt.Errorf("members %v", members)
	}
	if err := g.Leave(ctx, "worker-1"); err != nil {
		return err
	}
	return stop(ctx)
}

func TestPackageDoc(t *testing.T) {
	c := copycattest.NewCluster(t, 3, group.GroupType)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var kinds []group.Kind
	err := useGroup(ctx, c.Client(), func(e group.Changed) {
		mu.Lock()
		kinds = append(kinds, e.Kind)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Unlisten's response follows every event published before it.
	if fmt.Sprint(kinds) != "[joined left]" {
		t.Fatalf("events %v", kinds)
	}
}
