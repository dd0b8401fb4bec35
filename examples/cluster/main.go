// Command cluster shows how to embed Copycat in your own program: it starts
// three members with runtime/server (on loopback, each with its own data
// directory), waits for a leader, connects a client with runtime/client,
// uses two built-in resources (a lock guarding writes to a map, with the
// lock's fencing token stored beside the data), stops the leader gracefully
// (it hands leadership over first, so the client sees no election) and
// checks the data survived, then shuts everything down.
//
//	go run ./examples/cluster            # data in a temporary directory
//	go run ./examples/cluster -dir /tmp/cluster-example -keep
//
// In production each member is its own process on its own machine: the same
// server.Config with that member's ID, address and data directory, and the
// same founding member list on every one (see `copycat server`).
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
	"strconv"
	"time"

	"github.com/copycat-go/copycat/resources/dmap"
	"github.com/copycat-go/copycat/resources/lock"
	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/server"
)

// clusterID names the cluster: members and clients of another one are
// refused at the handshake.
const clusterID = "cluster-example"

func main() {
	dir := flag.String("dir", "", "new (empty) data directory for the members (default: a temporary one)")
	keep := flag.Bool("keep", false, "keep the data directory to look at afterwards")
	flag.Parse()
	if err := start(*dir, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// start prepares the data directory and runs the example until it ends or
// is interrupted.
func start(dir string, keep bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if dir == "" {
		d, err := os.MkdirTemp("", "copycat-cluster-")
		if err != nil {
			return fmt.Errorf("create a data directory: %w", err)
		}
		dir = d
		if !keep {
			defer os.RemoveAll(d)
		}
	}
	return run(ctx, os.Stdout, dir)
}

// example is the members of one run.
type example struct {
	out     io.Writer
	servers map[uint64]*server.Server
}

func (e *example) say(format string, args ...any) { fmt.Fprintf(e.out, format+"\n", args...) }

// run starts the cluster in dir, uses it and shuts it down.
func run(ctx context.Context, out io.Writer, dir string) (err error) {
	// The members listen on new ports on every run, while a data directory
	// remembers the addresses of its cluster: start from nothing.
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("data directory %s is not empty: give a new one (each run picks new ports, which a previous run's members would not know)", dir)
	}
	e := &example{out: out, servers: map[uint64]*server.Server{}}
	defer func() {
		if serr := e.shutdownAll(); err == nil {
			err = serr
		}
	}()

	// 1. Three members. Listening on port 0 lets the system pick free
	// ports; a real deployment gives each member its fixed address.
	members, lns, err := listen(3)
	if err != nil {
		return err
	}
	for i, m := range members {
		srv, err := server.New(server.Config{
			ID:        m.ID,
			ClusterID: clusterID,
			Addr:      m.Addr,
			Listener:  lns[i],
			DataDir:   filepath.Join(dir, fmt.Sprint("member-", m.ID)),
		}, lock.LockType, dmap.MapType) // the resource types this member hosts
		if err != nil {
			for _, ln := range lns[i:] {
				ln.Close()
			}
			return fmt.Errorf("create member %d: %w", m.ID, err)
		}
		// Bootstrap writes the founding configuration on the first start
		// (every founder is given the same list); on a data directory that
		// has state it just starts, like Start.
		if err := srv.Bootstrap(members); err != nil {
			srv.Stop()
			for _, ln := range lns[i+1:] {
				ln.Close()
			}
			return fmt.Errorf("start member %d: %w", m.ID, err)
		}
		e.servers[m.ID] = srv
	}
	lead, err := e.waitLeader(ctx)
	if err != nil {
		return err
	}
	addrs := make([]string, len(members))
	for i, m := range members {
		addrs[i] = m.Addr
	}
	e.say("members %v are up; member %d leads", addrs, lead)

	// 2. A client: one session shared by everything it opens. Any member's
	// address will do; it finds the leader and follows it.
	cli, err := client.Connect(ctx, addrs, client.WithClusterID(clusterID), client.WithClientID("example"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer cli.Close()
	e.say("client connected with session %d", cli.SessionID())

	// 3. A lock guarding writes to a map. The fencing token goes with the
	// data, so a reader (or the storage itself) can refuse a write made by
	// a holder that had already lost the lock.
	mu, err := lock.NewMutex(ctx, cli, "config-writer")
	if err != nil {
		return err
	}
	defer mu.Close()
	cfg, err := dmap.OpenMap(ctx, cli, "config")
	if err != nil {
		return fmt.Errorf("open map: %w", err)
	}
	defer cfg.Close()
	token, err := mu.Lock(ctx)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	for k, v := range map[string]string{"feature": "on", "written-by-token": strconv.FormatUint(uint64(token), 10)} {
		if _, err := cfg.Put(ctx, k, []byte(v), 0); err != nil {
			return fmt.Errorf("put %s: %w", k, err)
		}
	}
	if err := mu.Unlock(ctx); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	e.say("took lock %q with fencing token %d, wrote the config, released the lock", mu.Name(), token)

	// 4. A graceful stop of the leader: Shutdown hands leadership to
	// another voter first, so the client carries on without waiting for an
	// election timeout.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = e.servers[lead].Shutdown(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("shut member %d down: %w", lead, err)
	}
	delete(e.servers, lead)
	next, err := e.waitLeader(ctx)
	if err != nil {
		return err
	}
	e.say("member %d shut down gracefully; member %d leads now", lead, next)

	v, err := cfg.Get(ctx, "feature")
	if err != nil {
		return fmt.Errorf("get after the leader change: %w", err)
	}
	if string(v) != "on" {
		return fmt.Errorf("the config lost a write: feature=%q", v)
	}
	n, err := cfg.Size(ctx)
	if err != nil {
		return fmt.Errorf("size after the leader change: %w", err)
	}
	e.say("the config survived with %d keys (feature=%s), and the client kept session %d", n, v, cli.SessionID())

	// 5. The client closes its session (its lock, had it held one, is
	// released at once), then the members stop (deferred).
	if err := cli.Close(); err != nil {
		return fmt.Errorf("close client: %w", err)
	}
	return nil
}

// listen opens n loopback listeners and returns the founding members at
// their addresses.
func listen(n int) ([]raft.Member, []net.Listener, error) {
	var (
		members []raft.Member
		lns     []net.Listener
	)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, nil, fmt.Errorf("listen on loopback: %w", err)
		}
		lns = append(lns, ln)
		members = append(members, raft.Member{ID: uint64(i + 1), Type: raft.Active, Addr: ln.Addr().String()})
	}
	return members, lns, nil
}

// waitLeader waits until one of the running members leads.
func (e *example) waitLeader(ctx context.Context) (uint64, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for id, s := range e.servers {
			if s.IsLeader() {
				return id, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no member became leader: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// shutdownAll stops the running members gracefully, each bounded.
func (e *example) shutdownAll() error {
	var errs []error
	for id, s := range e.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut member %d down: %w", id, err))
		}
		cancel()
		delete(e.servers, id)
	}
	if len(errs) == 0 {
		e.say("all members stopped")
	}
	return errors.Join(errs...)
}
