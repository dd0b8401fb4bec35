package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/server"
)

// serverOptions are the flags of `copycat server`.
type serverOptions struct {
	id            uint64
	listen        string
	advertise     string
	dataDir       string
	bootstrap     string
	clusterID     string
	httpAddr      string
	tick          time.Duration
	electionTicks int
	commitDelay   time.Duration
	tlsCert       string
	tlsKey        string
	tlsCA         string
	// join lists members of a running cluster to join through (--join);
	// passive keeps the joined member PASSIVE; joinTimeout bounds the add
	// and, separately, the wait to be promoted.
	join        string
	passive     bool
	joinTimeout time.Duration
	// shutdownTimeout bounds the graceful stop (leadership transfer first).
	shutdownTimeout time.Duration
}

const (
	defaultClusterID       = "copycat"
	defaultShutdownTimeout = 10 * time.Second
	defaultJoinTimeout     = 5 * time.Minute
	heartbeatTicks         = 2
)

func newServer() *cobra.Command {
	o := serverOptions{shutdownTimeout: defaultShutdownTimeout, joinTimeout: defaultJoinTimeout}
	cmd := &cobra.Command{
		Use:   "server --id ID --listen ADDR --data DIR",
		Short: "Run a cluster member hosting the built-in resources",
		Long: `Run one member of a Copycat cluster, hosting every built-in resource
(lock, map, election, value, long, set, queue, group).

Starting a new cluster: start every founding member once with the same
--bootstrap list (id=addr,...), which must include the member itself. On a
data directory that already has state, --bootstrap is ignored and the
member just starts.

Restarting: start the member with the same --id, --cluster-id and --data,
without --bootstrap; it resumes from its data directory.

Adding a member: start it with an empty data directory and --join with the
address of one or more members of the running cluster. It asks the leader to
add it as PASSIVE, catches up, and promotes itself to ACTIVE (a voter) once
it has (--passive keeps it PASSIVE). On a data directory that already has
the member's identity, --join is ignored and the member just restarts.
Without --join, a new member waits until "copycat cluster add" adds it.

SIGTERM or SIGINT stops the member gracefully: a leader hands leadership to
another voter first, bounded by a timeout; the exit status is then 0.

With --http, the member serves /health (200 when it runs and knows a
leader, 503 otherwise), /status (JSON) and /metrics (Prometheus).`,
		Example: `  copycat server --id 1 --listen 127.0.0.1:7001 --data /var/lib/copycat/1 \
      --bootstrap 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --http 127.0.0.1:8001
  copycat server --id 4 --listen 127.0.0.1:7004 --data /var/lib/copycat/4 --join 127.0.0.1:7001,127.0.0.1:7002`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runServer(ctx, cmd.ErrOrStderr(), o)
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&o.id, "id", 0, "member ID, unique in the cluster and not 0 (required)")
	f.StringVar(&o.listen, "listen", "", "host:port to accept peers and clients on (required)")
	f.StringVar(&o.advertise, "advertise", "", "host:port other members and clients reach this member at (default: --listen)")
	f.StringVar(&o.dataDir, "data", "", "data directory holding the member's log (required)")
	f.StringVar(&o.bootstrap, "bootstrap", "", "founding members of a new cluster, as id=addr,id=addr,... (first start only)")
	f.StringVar(&o.join, "join", "", "join a running cluster through these members, as host:port,... (first start only)")
	f.BoolVar(&o.passive, "passive", false, "with --join: stay PASSIVE (no vote) instead of being promoted to ACTIVE once caught up")
	f.DurationVar(&o.joinTimeout, "join-timeout", defaultJoinTimeout, "with --join: how long to try to be added, and then to be promoted")
	f.StringVar(&o.clusterID, "cluster-id", defaultClusterID, "cluster name; members and clients of another cluster are refused")
	f.StringVar(&o.httpAddr, "http", "", "host:port to serve /health, /status and /metrics on (default: off)")
	f.DurationVar(&o.tick, "tick", 10*time.Millisecond, "Raft tick interval")
	f.IntVar(&o.electionTicks, "election-ticks", 20, "election timeout in ticks (randomized between N and 2N ticks)")
	f.DurationVar(&o.commitDelay, "commit-delay", time.Millisecond, "longest a follower waits to learn of a commit when the leader sends nothing else (0: 1 ms; negative: at once)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate of this member, for mutual TLS (with --tls-key and --tls-ca)")
	f.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&o.tlsCA, "tls-ca", "", "PEM CA bundle that peers' and clients' certificates must chain to")
	return cmd
}

// validate checks the flags that need no file system, and returns the
// founding members parsed from --bootstrap.
func (o *serverOptions) validate() ([]raft.Member, error) {
	if o.id == 0 {
		return nil, errors.New("--id is required and must be a positive member ID")
	}
	if o.listen == "" {
		return nil, errors.New("--listen is required (host:port to accept peers and clients on)")
	}
	if o.dataDir == "" {
		return nil, errors.New("--data is required (the member's data directory)")
	}
	if o.clusterID == "" {
		return nil, errors.New("--cluster-id must not be empty")
	}
	lhost, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q is not a host:port address", o.listen)
	}
	if o.advertise == "" {
		if ip := net.ParseIP(lhost); lhost == "" || (ip != nil && ip.IsUnspecified()) {
			return nil, fmt.Errorf("--listen %q has no specific host, so set --advertise to the address other members reach this one at", o.listen)
		}
		o.advertise = o.listen
	} else if err := checkHostPort(o.advertise); err != nil {
		return nil, fmt.Errorf("--advertise %q is not a host:port address with a host and a port", o.advertise)
	}
	if o.httpAddr != "" {
		if _, _, err := net.SplitHostPort(o.httpAddr); err != nil {
			return nil, fmt.Errorf("--http %q is not a host:port address", o.httpAddr)
		}
	}
	if o.tick <= 0 {
		return nil, fmt.Errorf("--tick must be positive, not %v", o.tick)
	}
	if o.electionTicks <= heartbeatTicks {
		return nil, fmt.Errorf("--election-ticks must be more than %d (the heartbeat interval in ticks), not %d", heartbeatTicks, o.electionTicks)
	}
	if n := countSet(o.tlsCert, o.tlsKey, o.tlsCA); n != 0 && n != 3 {
		return nil, errors.New("--tls-cert, --tls-key and --tls-ca go together: set all three or none")
	}
	if o.join != "" {
		if o.bootstrap != "" {
			return nil, errors.New("--join and --bootstrap cannot be used together: --bootstrap founds a new cluster, --join adds this member to a running one")
		}
		if _, err := parseJoin(o.join); err != nil {
			return nil, err
		}
		if o.joinTimeout <= 0 {
			return nil, fmt.Errorf("--join-timeout must be positive, not %v", o.joinTimeout)
		}
	} else if o.passive {
		return nil, errors.New("--passive only applies with --join")
	}
	if o.bootstrap == "" {
		return nil, nil
	}
	members, err := parseBootstrap(o.bootstrap)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		if m.ID == o.id {
			if m.Addr != o.advertise {
				return nil, fmt.Errorf("--bootstrap gives member %d the address %s, but it advertises %s", o.id, m.Addr, o.advertise)
			}
			return members, nil
		}
	}
	return nil, fmt.Errorf("--bootstrap does not include this member (%d); list every founding member, this one too", o.id)
}

func countSet(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || port == "" {
		return errors.New("missing host or port")
	}
	return nil
}

// parseBootstrap parses id=addr,id=addr,... into ACTIVE founding members.
func parseBootstrap(s string) ([]raft.Member, error) {
	var members []raft.Member
	seen := map[uint64]bool{}
	addrs := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		idStr, addr, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("--bootstrap entry %q is not id=host:port", item)
		}
		id, err := strconv.ParseUint(strings.TrimSpace(idStr), 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("--bootstrap entry %q has no positive member ID before '='", item)
		}
		addr = strings.TrimSpace(addr)
		if err := checkHostPort(addr); err != nil {
			return nil, fmt.Errorf("--bootstrap entry %q has no host:port address after '='", item)
		}
		if seen[id] {
			return nil, fmt.Errorf("--bootstrap lists member %d twice", id)
		}
		if addrs[addr] {
			return nil, fmt.Errorf("--bootstrap lists address %s twice", addr)
		}
		seen[id], addrs[addr] = true, true
		members = append(members, raft.Member{ID: id, Type: raft.Active, Addr: addr})
	}
	return members, nil
}

// loadTLS builds the mutual-TLS configuration from the three PEM files.
func (o *serverOptions) loadTLS() (*tls.Config, error) {
	if o.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("cannot load the TLS certificate %s and key %s: %w", o.tlsCert, o.tlsKey, err)
	}
	pem, err := os.ReadFile(o.tlsCA)
	if err != nil {
		return nil, fmt.Errorf("cannot read the TLS CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the TLS CA bundle %s holds no PEM certificate", o.tlsCA)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// lockedWriter serializes writes from the logger's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// runServer runs a member until ctx ends, then stops it gracefully.
func runServer(ctx context.Context, stderr io.Writer, o serverOptions) error {
	founders, err := o.validate()
	if err != nil {
		return err
	}
	tlsCfg, err := o.loadTLS()
	if err != nil {
		return err
	}
	fresh, record, err := prepareDataDir(o.dataDir, o.clusterID, o.id)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: stderr}, nil)).With("cluster", o.clusterID)

	var join *joiner
	switch {
	case o.join != "" && !record:
		logger.Info("the data directory already belongs to this member: ignoring --join and restarting from it", "member", o.id, "data", o.dataDir)
	case o.join != "":
		if join, err = startJoin(ctx, o, tlsCfg, logger); err != nil {
			return err
		}
		defer join.close()
	}

	var httpLn net.Listener
	if o.httpAddr != "" {
		if httpLn, err = net.Listen("tcp", o.httpAddr); err != nil {
			return fmt.Errorf("cannot listen for HTTP on %s: %w", o.httpAddr, err)
		}
		defer httpLn.Close()
	}
	var ln net.Listener
	if o.listen != o.advertise {
		if ln, err = net.Listen("tcp", o.listen); err != nil {
			return fmt.Errorf("cannot listen on %s: %w", o.listen, err)
		}
	}
	election := time.Duration(o.electionTicks) * o.tick
	// Dial peers from the IP the member listens on, when it listens on one
	// (not a wildcard): firewalls then see which member a connection is from.
	var source net.IP
	if host, _, err := net.SplitHostPort(o.listen); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			source = ip
		}
	}
	srv, err := server.New(server.Config{
		ID: o.id, ClusterID: o.clusterID, Addr: o.advertise, Listener: ln, SourceIP: source,
		DataDir: o.dataDir, TLS: tlsCfg, Peers: join.peerAddrs(),
		TickInterval: o.tick, ElectionTicks: o.electionTicks, HeartbeatTicks: heartbeatTicks, CommitDelay: o.commitDelay,
		MinSessionTimeout: max(time.Second, 2*election),
		MaxSessionTimeout: max(5*time.Minute, 2*election),
		Logger:            logger,
	}, builtins...)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return fmt.Errorf("member %d cannot start: %w", o.id, err)
	}
	switch {
	case founders != nil:
		err = srv.Bootstrap(founders)
	default:
		err = srv.Start()
	}
	if err != nil {
		srv.Stop()
		return fmt.Errorf("member %d cannot start: %w", o.id, err)
	}
	if join != nil {
		// The identity is recorded only once the cluster has the member, so
		// that a failed join can simply be run again.
		if err := join.add(ctx); err != nil {
			srv.Stop()
			return err
		}
	}
	if record {
		if err := recordIdentity(o.dataDir, o.clusterID, o.id); err != nil {
			srv.Stop()
			return err
		}
	}
	switch {
	case join != nil && !o.passive:
		join.promoteInBackground(ctx)
	case fresh && founders == nil && join == nil:
		logger.Info("new member with an empty data directory: waiting for the leader to add it (`copycat cluster add`, or start it with --join)",
			"member", o.id, "addr", o.advertise)
	}

	var hs *http.Server
	httpDone := make(chan struct{})
	if httpLn != nil {
		hs = &http.Server{Handler: newStatusHandler(srv, o.clusterID), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			defer close(httpDone)
			if err := hs.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("HTTP server stopped", "err", err)
			}
		}()
		logger.Info("serving /health, /status and /metrics", "http", httpLn.Addr().String())
	} else {
		close(httpDone)
	}

	<-ctx.Done()
	logger.Info("stopping: transferring leadership if leader, then shutting down", "timeout", o.shutdownTimeout)
	if hs != nil {
		hctx, cancel := context.WithTimeout(context.Background(), time.Second)
		hs.Shutdown(hctx)
		cancel()
		<-httpDone
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(sctx) }()
	select {
	case err := <-done:
		if err != nil {
			logger.Warn("member stopped with an error", "err", err)
		}
	case <-time.After(o.shutdownTimeout + 5*time.Second):
		return fmt.Errorf("member %d did not stop within %v", o.id, o.shutdownTimeout+5*time.Second)
	}
	return nil
}
