package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/runtime/client"
)

// membersEnv names the environment variable that gives --members its default.
const membersEnv = "COPYCAT_MEMBERS"

// defaultMembers is the --members default without COPYCAT_MEMBERS: the first
// member of the README's three-member cluster (`copycat server` has no
// default listen address; any one member leads the client to the others).
const defaultMembers = "127.0.0.1:7001"

// clientFlags are the flags every command that connects to a cluster as a
// client shares (registered as persistent flags on its command group).
type clientFlags struct {
	members        string
	clusterID      string
	tlsCert        string
	tlsKey         string
	tlsCA          string
	timeout        time.Duration
	sessionTimeout time.Duration
	json           bool
}

// register adds the client flags to cmd and its subcommands.
func (f *clientFlags) register(cmd *cobra.Command) {
	members := os.Getenv(membersEnv)
	if members == "" {
		members = defaultMembers
	}
	p := cmd.PersistentFlags()
	p.StringVar(&f.members, "members", members, "comma-separated host:port addresses of cluster members ($"+membersEnv+" sets the default)")
	p.StringVar(&f.clusterID, "cluster-id", defaultClusterID, "cluster name the members must have")
	p.StringVar(&f.tlsCert, "tls-cert", "", "PEM client certificate, for mutual TLS (with --tls-key and --tls-ca)")
	p.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	p.StringVar(&f.tlsCA, "tls-ca", "", "PEM CA bundle the members' certificates must chain to")
	p.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long connecting and each call may take")
	p.DurationVar(&f.sessionTimeout, "session-timeout", 5*time.Second, "how long the cluster keeps this client's session (and its locks) without hearing from it")
	p.BoolVar(&f.json, "json", false, "print results as JSON, one document per line")
}

// addrs validates the flags and returns the member addresses.
func (f *clientFlags) addrs() ([]string, error) {
	var out []string
	for a := range strings.SplitSeq(f.members, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if err := checkHostPort(a); err != nil {
			return nil, fmt.Errorf("--members entry %q is not a host:port address", a)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--members is empty: give the address of at least one member (or set $%s)", membersEnv)
	}
	if f.clusterID == "" {
		return nil, errors.New("--cluster-id must not be empty")
	}
	if f.timeout <= 0 {
		return nil, fmt.Errorf("--timeout must be positive, not %v", f.timeout)
	}
	if f.sessionTimeout <= 0 {
		return nil, fmt.Errorf("--session-timeout must be positive, not %v", f.sessionTimeout)
	}
	if n := countSet(f.tlsCert, f.tlsKey, f.tlsCA); n != 0 && n != 3 {
		return nil, errors.New("--tls-cert, --tls-key and --tls-ca go together: set all three or none")
	}
	return out, nil
}

// connect opens a session with the cluster, within --timeout.
func (f *clientFlags) connect(ctx context.Context, name string) (*shellClient, error) {
	addrs, err := f.addrs()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := (&serverOptions{tlsCert: f.tlsCert, tlsKey: f.tlsKey, tlsCA: f.tlsCA}).loadTLS()
	if err != nil {
		return nil, err
	}
	sc := &shellClient{timeout: f.timeout, gone: make(chan struct{})}
	last := &lastConnectError{}
	opts := []client.Option{
		client.WithClusterID(f.clusterID),
		client.WithClientID(name),
		client.WithSessionTimeout(f.sessionTimeout),
		client.WithLogger(slog.New(last)),
		client.WithStateListener(sc.stateChanged),
	}
	if tlsCfg != nil {
		opts = append(opts, client.WithTLS(tlsCfg))
	}
	cctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cli, err := connectWithin(cctx, addrs, opts)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, errors.New("interrupted while connecting to the cluster")
		case cctx.Err() != nil:
			why := ""
			if e := last.get(); e != "" {
				why = " (last attempt: " + e + ")"
			}
			return nil, fmt.Errorf("cannot reach the cluster at %s within %v%s", strings.Join(addrs, ","), f.timeout, why)
		}
		return nil, fmt.Errorf("cannot connect to the cluster at %s: %w", strings.Join(addrs, ","), err)
	}
	sc.Client = cli
	return sc, nil
}

// connectWithin is client.Connect returning when ctx ends. Connect itself
// returns only once the connection attempt under way gives up (a member
// that accepts and never answers holds it for the client's dial timeout),
// which would stretch --timeout; that attempt is left to end in the
// background, and a session it opens after all is closed.
func connectWithin(ctx context.Context, addrs []string, opts []client.Option) (*client.Client, error) {
	type result struct {
		cli *client.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		cli, err := client.Connect(ctx, addrs, opts...)
		done <- result{cli, err}
	}()
	select {
	case r := <-done:
		return r.cli, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.cli != nil {
				r.cli.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// shellClient is a connected client with the call timeout and a signal of
// the session's end.
type shellClient struct {
	*client.Client
	timeout time.Duration

	goneOnce sync.Once
	gone     chan struct{} // closed when the session expires
}

func (s *shellClient) stateChanged(st client.State) {
	if st == client.StateExpired {
		s.goneOnce.Do(func() { close(s.gone) })
	}
}

// expired is closed once the cluster has expired the session: whatever the
// session held (a lock, a leadership, a group membership) is gone.
func (s *shellClient) expired() <-chan struct{} { return s.gone }

// call bounds one call by --timeout. It derives from ctx without its
// cancellation when ctx has ended, so that clean-up calls made after an
// interrupt (unlock, resign, leave) still run.
func (s *shellClient) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	return context.WithTimeout(ctx, s.timeout)
}

// lostCleanupTimeout bounds the release of something already lost: the
// cluster is likely unreachable, and the session's end frees it anyway.
const lostCleanupTimeout = time.Second

// cleanup bounds the call that gives back what a command held (unlock,
// resign): by --timeout, or by lostCleanupTimeout once it was lost, so that
// a command that lost its lock says so promptly.
func (s *shellClient) cleanup(ctx context.Context, lost bool) (context.Context, context.CancelFunc) {
	if !lost {
		return s.call(ctx)
	}
	return context.WithTimeout(context.WithoutCancel(ctx), min(s.timeout, lostCleanupTimeout))
}

// explain turns a failed call into one sentence saying what failed and why.
func (s *shellClient) explain(what string, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s got no answer within %v (is a majority of the members up?)", what, s.timeout)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s was interrupted", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// lastConnectError is a slog handler that keeps the reason of the client's
// last failed connection attempt, which the client logs at debug level and
// otherwise never returns: a connect that times out can then say why.
type lastConnectError struct {
	mu   sync.Mutex
	last string
}

func (l *lastConnectError) Enabled(context.Context, slog.Level) bool { return true }

func (l *lastConnectError) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "connect failed" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			l.mu.Lock()
			l.last = a.Value.String()
			l.mu.Unlock()
			return false
		}
		return true
	})
	return nil
}

func (l *lastConnectError) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *lastConnectError) WithGroup(string) slog.Handler      { return l }

func (l *lastConnectError) get() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}
