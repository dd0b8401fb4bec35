// Command counter runs the example Counter resource end to end in one
// process: three members on loopback TCP with their logs in a temporary
// directory, a few clients incrementing one counter concurrently, and the
// result, which must be exactly the number of increments.
//
//	go run ./examples/counter/cmd/counter -workers 4 -increments 25
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"time"

	"github.com/copycat-go/copycat/examples/counter"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/server"
)

const clusterID = "counter-example"

func main() {
	workers := flag.Int("workers", 4, "clients incrementing concurrently, each with its own session")
	increments := flag.Int("increments", 25, "increments per client")
	flag.Parse()
	if *workers < 1 || *increments < 1 {
		fmt.Fprintln(os.Stderr, "counter: -workers and -increments must be at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, *workers, *increments); err != nil {
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
}

// run starts the cluster, counts and stops the cluster.
func run(ctx context.Context, out io.Writer, workers, increments int) (err error) {
	dir, err := os.MkdirTemp("", "copycat-counter-")
	if err != nil {
		return fmt.Errorf("create a data directory: %w", err)
	}
	defer os.RemoveAll(dir)
	servers, addrs, err := startCluster(dir)
	defer func() {
		// Shutdown hands leadership over before a leader stops; bounded.
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range servers {
			if serr := s.Shutdown(sctx); serr != nil && err == nil {
				err = fmt.Errorf("stop member %d: %w", s.ID(), serr)
			}
		}
	}()
	if err != nil {
		return err
	}
	if err := waitLeader(ctx, servers); err != nil {
		return err
	}
	fmt.Fprintf(out, "3 members on %v, logs in %s\n", addrs, dir)

	// Each worker is a client with its own session, as separate processes
	// would be; they all open the same instance, by name.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for w := range workers {
		wg.Go(func() {
			if err := work(ctx, addrs, fmt.Sprint("worker-", w), increments); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}

	cli, err := client.Connect(ctx, addrs, client.WithClusterID(clusterID))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer cli.Close()
	hits, err := counter.OpenCounter(ctx, cli, "hits")
	if err != nil {
		return fmt.Errorf("open counter: %w", err)
	}
	n, err := hits.Get(ctx)
	if err != nil {
		return fmt.Errorf("read counter: %w", err)
	}
	want := int64(workers * increments)
	if n != want {
		return fmt.Errorf("counter is %d after %d increments", n, want)
	}
	fmt.Fprintf(out, "hits = %d (%d clients x %d increments, each counted once)\n", n, workers, increments)
	return nil
}

// work increments the counter from its own client.
func work(ctx context.Context, addrs []string, name string, increments int) error {
	cli, err := client.Connect(ctx, addrs, client.WithClusterID(clusterID), client.WithClientID(name))
	if err != nil {
		return fmt.Errorf("%s: connect: %w", name, err)
	}
	defer cli.Close()
	hits, err := counter.OpenCounter(ctx, cli, "hits")
	if err != nil {
		return fmt.Errorf("%s: open counter: %w", name, err)
	}
	for range increments {
		if _, err := hits.Increment(ctx); err != nil {
			return fmt.Errorf("%s: increment: %w", name, err)
		}
	}
	return nil
}

// startCluster starts three members on loopback ports the system picks,
// each hosting the Counter type, and bootstraps them as a new cluster.
func startCluster(dir string) ([]*server.Server, []string, error) {
	var (
		lns     []net.Listener
		members []raft.Member
		addrs   []string
	)
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeAll(lns)
			return nil, nil, fmt.Errorf("listen on loopback: %w", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
		members = append(members, raft.Member{ID: uint64(i + 1), Type: raft.Active, Addr: ln.Addr().String()})
	}
	var servers []*server.Server
	for i, ln := range lns {
		srv, err := server.New(server.Config{
			ID: members[i].ID, ClusterID: clusterID, Addr: addrs[i], Listener: ln,
			DataDir: filepath.Join(dir, fmt.Sprint("member-", i+1)),
		}, counter.CounterType)
		if err != nil {
			closeAll(lns[i:])
			return servers, addrs, fmt.Errorf("start member %d: %w", i+1, err)
		}
		if err := srv.Bootstrap(members); err != nil {
			srv.Stop() // closes its listener
			closeAll(lns[i+1:])
			return servers, addrs, fmt.Errorf("start member %d: %w", i+1, err)
		}
		servers = append(servers, srv)
	}
	return servers, addrs, nil
}

// closeAll closes listeners no member took over.
func closeAll(lns []net.Listener) {
	for _, l := range lns {
		l.Close()
	}
}

// waitLeader waits until a member leads.
func waitLeader(ctx context.Context, servers []*server.Server) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, s := range servers {
			if s.IsLeader() {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no member became leader: %w", ctx.Err())
		case <-tick.C:
		}
	}
}
