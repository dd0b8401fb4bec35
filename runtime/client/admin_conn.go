package client

import (
	"context"
	"net"

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
// deadline is still honoured: cancelling it closes the connection. Nothing
// but responses is expected without a session.
func (cn *adminConn) roundTrip(ctx context.Context, m *protocol.Message) (*protocol.Message, error) {
	stop := context.AfterFunc(ctx, func() { cn.nc.Close() })
	defer stop()
	return exchange(ctx, cn.nc, cn.tc, cn.addr, m, func(*protocol.Message) {})
}

func (cn *adminConn) close() { cn.nc.Close() }
