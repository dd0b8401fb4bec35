package client_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/internal/counter"
	"github.com/copycat-go/copycat/runtime/internal/register"
	rlog "github.com/copycat-go/copycat/runtime/log"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/server"
	"github.com/copycat-go/copycat/runtime/transport"
)

const clusterID = "admin-test"

// startMember starts a member on a loopback port with an in-memory log:
// bootstrapped with founders if given, else an empty member that knows its
// peers' addresses and waits to be added.
func startMember(t testing.TB, id uint64, ln net.Listener, founders []raft.Member, peers map[uint64]string) *server.Server {
	t.Helper()
	srv, err := server.New(server.Config{
		ID: id, ClusterID: clusterID, Addr: ln.Addr().String(), Listener: ln, Storage: rlog.NewMemory(), Peers: peers,
		TickInterval: 10 * time.Millisecond, ElectionTicks: 20, HeartbeatTicks: 2,
	}, counter.Type, register.Type)
	require.NoError(t, err)
	if founders != nil {
		require.NoError(t, srv.Bootstrap(founders))
	} else {
		require.NoError(t, srv.Start())
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

// tcpCluster starts n founding members on loopback TCP and returns their
// servers.
func tcpCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	var lns []net.Listener
	var founders []raft.Member
	for i := 1; i <= n; i++ {
		ln := listen(t)
		lns = append(lns, ln)
		founders = append(founders, raft.Member{ID: uint64(i), Type: raft.Active, Addr: ln.Addr().String()})
	}
	var srvs []*server.Server
	for i, ln := range lns {
		srvs = append(srvs, startMember(t, uint64(i+1), ln, founders, nil))
	}
	return srvs
}

func dialAdmin(t *testing.T, ctx context.Context, addrs ...string) *client.Admin {
	t.Helper()
	a, err := client.DialAdmin(ctx, addrs, client.WithClusterID(clusterID), client.WithBackoff(5*time.Millisecond, 100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	return a
}

// waitStatus polls the cluster's status until cond holds.
func waitStatus(t *testing.T, ctx context.Context, a *client.Admin, what string, cond func(*client.ClusterStatus) bool) *client.ClusterStatus {
	t.Helper()
	var st *client.ClusterStatus
	require.Eventually(t, func() bool {
		var err error
		st, err = a.Status(ctx)
		return err == nil && cond(st)
	}, 10*time.Second, 10*time.Millisecond, what)
	return st
}

func memberType(st *client.ClusterStatus, id uint64) raft.MemberType {
	m, _ := st.Member(id)
	return m.Type
}

// Every operation end to end on real TCP members: a new member is added
// through a follower, catches up, is promoted, leads, is demoted step by
// step, promoted back and removed; refusals come back typed.
func TestAdmin_EveryOperation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srvs := tcpCluster(t, 3)
	a := dialAdmin(t, ctx, srvs[0].Addr(), srvs[1].Addr(), srvs[2].Addr())
	st := waitStatus(t, ctx, a, "a leader", func(st *client.ClusterStatus) bool { return st.Role == raft.StateLeader })
	lead := st.ID
	var followerAddr string
	for _, s := range srvs {
		if s.ID() != lead {
			followerAddr = s.Addr()
		}
	}

	ln := listen(t)
	peers := map[uint64]string{}
	for _, s := range srvs {
		peers[s.ID()] = s.Addr()
	}
	startMember(t, 4, ln, nil, peers)
	addr4 := ln.Addr().String()

	// Through a follower: the add is redirected to the leader.
	viaFollower := dialAdmin(t, ctx, followerAddr)
	require.NoError(t, viaFollower.AddMember(ctx, 4, addr4, raft.Passive))
	require.NoError(t, viaFollower.AddMember(ctx, 4, addr4, 0), "the same add again (a retry) succeeds")
	st, err := a.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, raft.Passive, memberType(st, 4))

	for name, tc := range map[string]struct {
		err  error
		call func() error
	}{
		"add an existing ID elsewhere":  {client.ErrMemberExists, func() error { return a.AddMember(ctx, 4, "127.0.0.1:1", raft.Passive) }},
		"add an existing address":       {client.ErrMemberExists, func() error { return a.AddMember(ctx, 5, addr4, raft.Passive) }},
		"add as ACTIVE":                 {client.ErrInvalidChange, func() error { return a.AddMember(ctx, 5, "127.0.0.1:1", raft.Active) }},
		"add without address":           {client.ErrInvalidChange, func() error { return a.AddMember(ctx, 5, "", raft.Passive) }},
		"remove an unknown member":      {client.ErrUnknownMember, func() error { return a.RemoveMember(ctx, 99) }},
		"promote an unknown member":     {client.ErrUnknownMember, func() error { return a.PromoteMember(ctx, 99) }},
		"transfer to a PASSIVE member":  {client.ErrInvalidTransfer, func() error { return a.TransferLeadership(ctx, 4) }},
		"transfer to an unknown member": {client.ErrUnknownMember, func() error { return a.TransferLeadership(ctx, 99) }},
	} {
		err := tc.call()
		assert.ErrorIs(t, err, tc.err, name)
		var ae *client.AdminError
		assert.ErrorAs(t, err, &ae, name)
	}

	// Catch up, then promote.
	require.NoError(t, a.PromoteWhenCaughtUp(ctx, 4))
	st = waitStatus(t, ctx, a, "member 4 ACTIVE in the leader's view", func(st *client.ClusterStatus) bool {
		return st.Role == raft.StateLeader && memberType(st, 4) == raft.Active
	})
	m, _ := st.Member(4)
	require.NotNil(t, m.Progress)
	assert.GreaterOrEqual(t, m.Progress.Match, st.ConfigIndex-1)
	assert.ErrorIs(t, a.PromoteMember(ctx, 4), client.ErrInvalidChange, "already ACTIVE")
	require.NoError(t, a.PromoteWhenCaughtUp(ctx, 4), "already ACTIVE counts as promoted")

	// Leadership to the new member, then to any other.
	require.NoError(t, a.TransferLeadership(ctx, 4))
	waitStatus(t, ctx, a, "member 4 to lead", func(st *client.ClusterStatus) bool { return st.Leader == 4 && st.ID == 4 })
	require.NoError(t, a.TransferLeadership(ctx, 0))
	waitStatus(t, ctx, a, "another member to lead", func(st *client.ClusterStatus) bool {
		return st.Role == raft.StateLeader && st.ID != 4
	})

	// Demote step by step, promote back from RESERVE, remove.
	require.NoError(t, a.DemoteMember(ctx, 4))
	st = waitStatus(t, ctx, a, "leader's view", func(st *client.ClusterStatus) bool { return st.Role == raft.StateLeader })
	assert.Equal(t, raft.Passive, memberType(st, 4))
	require.NoError(t, a.DemoteMember(ctx, 4))
	st, err = a.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, raft.Reserve, memberType(st, 4))
	assert.ErrorIs(t, a.DemoteMember(ctx, 4), client.ErrInvalidChange, "already RESERVE")
	require.NoError(t, a.PromoteMember(ctx, 4), "RESERVE to PASSIVE needs no catching up")
	st, err = a.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, raft.Passive, memberType(st, 4))
	require.NoError(t, a.RemoveMember(ctx, 4))
	st, err = a.Status(ctx)
	require.NoError(t, err)
	_, ok := st.Member(4)
	assert.False(t, ok)
	assert.Len(t, st.Members, 3)
	assert.ErrorIs(t, a.RemoveMember(ctx, 4), client.ErrUnknownMember)
}

// Connecting and calling honour ctx and fail fast when nothing can work.
func TestAdmin_DialErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err := client.DialAdmin(ctx, nil)
	assert.ErrorContains(t, err, "no member addresses")

	// Nobody listens there: the dial retries until ctx ends, not longer.
	dead := listen(t)
	deadAddr := dead.Addr().String()
	dead.Close()
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	began := time.Now()
	_, err = client.DialAdmin(short, []string{deadAddr}, client.WithClusterID(clusterID))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, deadAddr, "the last failure is named")
	assert.Less(t, time.Since(began), 3*time.Second)

	// Another cluster's member refuses the handshake: no point retrying.
	srvs := tcpCluster(t, 1)
	began = time.Now()
	_, err = client.DialAdmin(ctx, []string{srvs[0].Addr()}, client.WithClusterID("another-cluster"))
	assert.ErrorIs(t, err, transport.ErrRefused)
	assert.Less(t, time.Since(began), 5*time.Second)

	// A cancelled context without a deadline ends a call too.
	a := dialAdmin(t, ctx, srvs[0].Addr())
	cctx, cancelNow := context.WithCancel(ctx)
	cancelNow()
	_, err = a.Status(cctx)
	assert.ErrorIs(t, err, context.Canceled)
	_, err = a.Status(ctx)
	assert.NoError(t, err, "the Admin carries on after a cancelled call")

	require.NoError(t, a.Close())
	_, err = a.Status(ctx)
	assert.ErrorIs(t, err, client.ErrClosed)
}

// Close ends a call in flight: here a status that keeps redialling a
// member that has stopped.
func TestAdmin_CloseEndsCallInFlight(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := tcpCluster(t, 1)[0]
	dials := make(chan struct{}, 100)
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		select {
		case dials <- struct{}{}:
		default:
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	a, err := client.DialAdmin(ctx, []string{srv.Addr()}, client.WithClusterID(clusterID), client.WithDialer(dial),
		client.WithBackoff(5*time.Millisecond, 20*time.Millisecond))
	require.NoError(t, err)
	<-dials
	require.NoError(t, srv.Stop())

	errc := make(chan error, 1)
	go func() {
		_, err := a.Status(ctx)
		errc <- err
	}()
	select {
	case <-dials: // the call is redialling: it is in flight
	case err := <-errc:
		t.Fatalf("status of a stopped member returned early: %v", err)
	}
	require.NoError(t, a.Close())
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, client.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the call in flight")
	}
}
