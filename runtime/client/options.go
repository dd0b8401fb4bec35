package client

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/copycat-go/copycat/runtime"
)

// Option configures Connect.
type Option func(*options)

type options struct {
	clusterID      string
	clientID       string
	sessionTimeout time.Duration
	tls            *tls.Config
	dial           func(ctx context.Context, addr string) (net.Conn, error)
	backoffMin     time.Duration
	backoffMax     time.Duration
	onState        func(State)
	logger         *slog.Logger
}

func defaultOptions() options {
	return options{
		clusterID:      "copycat",
		sessionTimeout: 5 * time.Second,
		backoffMin:     10 * time.Millisecond,
		backoffMax:     500 * time.Millisecond,
		dial: func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
		logger: slog.New(slog.DiscardHandler),
	}
}

// WithClusterID sets the cluster ID the members must have (default "copycat").
func WithClusterID(id string) Option { return func(o *options) { o.clusterID = id } }

// WithClientID names the client in the session (for operators' eyes).
func WithClientID(id string) Option { return func(o *options) { o.clientID = id } }

// WithSessionTimeout sets how long the cluster keeps the session without
// keep-alives (default 5 s; members clamp it to their bounds).
func WithSessionTimeout(d time.Duration) Option { return func(o *options) { o.sessionTimeout = d } }

// WithTLS secures connections with mutual TLS.
func WithTLS(c *tls.Config) Option { return func(o *options) { o.tls = c } }

// WithDialer replaces the TCP dialer (tests dial in-memory members).
func WithDialer(dial func(ctx context.Context, addr string) (net.Conn, error)) Option {
	return func(o *options) { o.dial = dial }
}

// WithBackoff bounds the delay between attempts to reach a member.
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) { o.backoffMin, o.backoffMax = min, max }
}

// WithStateListener is called on every change of the client's state.
func WithStateListener(f func(State)) Option { return func(o *options) { o.onState = f } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// QueryOption configures one query.
type QueryOption func(*QueryOptions)

// QueryOptions are the settings of one query.
type QueryOptions struct {
	Consistency runtime.Consistency
}

// WithConsistency sets the query's consistency level.
func WithConsistency(c runtime.Consistency) QueryOption {
	return func(o *QueryOptions) {
		if c != runtime.Default {
			o.Consistency = c
		}
	}
}

// State is the client's connection state.
type State uint8

const (
	// StateConnected: the session is confirmed alive.
	StateConnected State = iota + 1
	// StateSuspended: the client cannot reach the cluster; the session may
	// still be alive and calls wait.
	StateSuspended
	// StateExpired: the cluster expired the session; it cannot be used again.
	StateExpired
	// StateClosed: Close was called.
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateConnected:
		return "connected"
	case StateSuspended:
		return "suspended"
	case StateExpired:
		return "expired"
	case StateClosed:
		return "closed"
	}
	return "unknown"
}
