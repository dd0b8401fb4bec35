package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/copycat-go/copycat/runtime/protocol"
	"github.com/copycat-go/copycat/runtime/transport"
)

// conn is one connection to a member.
type conn struct {
	c    *Client
	addr string
	nc   net.Conn
	tc   *transport.Conn

	mu     sync.Mutex
	queue  []*protocol.Message
	wake   chan struct{}
	closed chan struct{}
	once   sync.Once
}

func (c *Client) dial(ctx context.Context, addr string) (*conn, error) {
	nc, tc, err := dialMember(ctx, &c.opts, addr)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, addr: addr, nc: nc, tc: tc, wake: make(chan struct{}, 1), closed: make(chan struct{})}, nil
}

// dialMember connects to a member's client port: TCP (or the configured
// dialer), TLS if configured, and the handshake, all within ctx (cancelling
// it closes the connection).
func dialMember(ctx context.Context, o *options, addr string) (net.Conn, *transport.Conn, error) {
	nc, err := o.dial(ctx, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	if o.tls != nil {
		cfg := o.tls.Clone()
		if cfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("client: TLS with %s: %w", addr, err)
		}
		nc = tc
	}
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	tc := transport.NewConn(nc, transport.DefaultMaxFrameSize)
	if err := transport.Handshake(tc, transport.Hello{ClusterID: o.clusterID, Kind: transport.KindClient}); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("client: %s: %w", addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, tc, nil
}

// roundTrip sends one request and reads until its response, before the
// connection's reader starts. Event pushes that arrive first are accepted.
func (cn *conn) roundTrip(ctx context.Context, m *protocol.Message) (*protocol.Message, error) {
	return exchange(ctx, cn.nc, cn.tc, cn.addr, m, func(other *protocol.Message) {
		if other.Type == protocol.Events {
			cn.c.events.receive(other)
		}
	})
}

// exchange writes one request on a connection no reader goroutine serves
// and reads until its response, under ctx's deadline; other frames go to
// other.
func exchange(ctx context.Context, nc net.Conn, tc *transport.Conn, addr string, m *protocol.Message, other func(*protocol.Message)) (*protocol.Message, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
		defer nc.SetDeadline(time.Time{})
	}
	b, err := protocol.Encode(m)
	if err != nil {
		return nil, fmt.Errorf("client: encode %s: %w", m.Type, err)
	}
	if err := tc.WriteFrame(b); err != nil {
		return nil, fmt.Errorf("client: send to %s: %w", addr, err)
	}
	if err := tc.Flush(); err != nil {
		return nil, fmt.Errorf("client: send to %s: %w", addr, err)
	}
	for {
		body, err := tc.ReadFrame()
		if err != nil {
			return nil, fmt.Errorf("client: read from %s: %w", addr, err)
		}
		resp, err := protocol.Decode(body)
		if err != nil {
			return nil, fmt.Errorf("client: from %s: %w", addr, err)
		}
		// An answer to an earlier request given up on is skipped by its ID.
		if resp.Type == protocol.Response && resp.ID == m.ID {
			return resp, nil
		}
		other(resp)
	}
}

// start launches the reader and writer.
func (cn *conn) start() {
	go cn.readLoop()
	go cn.writeLoop()
}

func (cn *conn) send(m *protocol.Message) {
	cn.mu.Lock()
	cn.queue = append(cn.queue, m)
	cn.mu.Unlock()
	select {
	case cn.wake <- struct{}{}:
	default:
	}
}

func (cn *conn) close() {
	cn.once.Do(func() {
		close(cn.closed)
		cn.nc.Close()
	})
}

func (cn *conn) writeLoop() {
	for {
		select {
		case <-cn.wake:
		case <-cn.closed:
			return
		}
		cn.mu.Lock()
		batch := cn.queue
		cn.queue = nil
		cn.mu.Unlock()
		for _, m := range batch {
			b, err := protocol.Encode(m)
			if err == nil {
				err = cn.tc.WriteFrame(b)
			}
			if err != nil {
				cn.fail(err)
				return
			}
		}
		if err := cn.tc.Flush(); err != nil {
			cn.fail(err)
			return
		}
	}
}

func (cn *conn) readLoop() {
	for {
		body, err := cn.tc.ReadFrame()
		if err != nil {
			cn.fail(err)
			return
		}
		m, err := protocol.Decode(body)
		if err != nil {
			cn.fail(err)
			return
		}
		switch m.Type {
		case protocol.Events:
			cn.c.events.receive(m)
		case protocol.Response:
			cn.c.handleResponse(cn, m)
		}
	}
}

// fail drops the connection; pending operations are resent on the next one.
func (cn *conn) fail(err error) {
	c := cn.c
	c.opts.logger.Debug("connection lost", "addr", cn.addr, "err", err)
	c.mu.Lock()
	c.dropConnLocked(cn)
	c.mu.Unlock()
}
