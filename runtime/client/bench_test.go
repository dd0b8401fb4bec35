package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/internal/register"
)

// BenchmarkCommand measures one command's round trip through the client
// and a one-member cluster with an in-memory log (a register: no events): the client's and the
// server's own costs, without a disk.
func BenchmarkCommand(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr := tcpCluster(b, 1)[0].Addr()
	cli, err := client.Connect(ctx, []string{addr}, client.WithClusterID(clusterID))
	require.NoError(b, err)
	defer cli.Close()
	reg, err := register.Open(ctx, cli, "bench")
	require.NoError(b, err)
	for b.Loop() {
		if err := reg.Put(ctx, "k", 1); err != nil {
			b.Fatal(err)
		}
	}
}
