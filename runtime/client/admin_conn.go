package client

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/copycat-go/copycat/runtime/protocol"
	"github.com/copycat-go/copycat/runtime/transport"
)

// adminConn is an Admin's connection to one member. Unlike a Client's
// connections it carries one request at a time and no session, so it needs
// no reader and writer goroutines: a request is written and its response
// read in the caller's goroutine, under the caller's deadline.
type adminConn struct {
	addr string
	nc   net.Conn
	tc   *transport.Conn
}

func dialAdmin(ctx context.Context, o *options, addr string) (*adminConn, error) {
	nc, tc, err := dialMember(ctx, o, addr)
	if err != nil {
		return nil, err
	}
	return &adminConn{addr: addr, nc: nc, tc: tc}, nil
}

// roundTrip sends one request and reads its response. A context without a
// deadline is still honoured: cancelling it closes the connection.
func (cn *adminConn) roundTrip(ctx context.Context, m *protocol.Message) (*protocol.Message, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = cn.nc.SetDeadline(d)
		defer cn.nc.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { cn.nc.Close() })
	defer stop()
	b, err := protocol.Encode(m)
	if err != nil {
		return nil, fmt.Errorf("client: encode %s: %w", m.Type, err)
	}
	if err := cn.tc.WriteFrame(b); err != nil {
		return nil, fmt.Errorf("client: send to %s: %w", cn.addr, err)
	}
	if err := cn.tc.Flush(); err != nil {
		return nil, fmt.Errorf("client: send to %s: %w", cn.addr, err)
	}
	for {
		body, err := cn.tc.ReadFrame()
		if err != nil {
			return nil, fmt.Errorf("client: read from %s: %w", cn.addr, err)
		}
		resp, err := protocol.Decode(body)
		if err != nil {
			return nil, fmt.Errorf("client: from %s: %w", cn.addr, err)
		}
		// Nothing but responses is expected without a session; an answer
		// to an earlier request given up on is skipped by its ID.
		if resp.Type == protocol.Response && resp.ID == m.ID {
			return resp, nil
		}
	}
}

func (cn *adminConn) close() { cn.nc.Close() }
