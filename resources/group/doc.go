// Package group is Copycat's group membership: members join a named group
// with an ID and metadata, live as long as the session that joined them,
// and every listening client hears each join and leave.
//
// # Using it
//
// Register GroupType with the servers (server.New(config, group.GroupType))
// or the test cluster, then:
//
//	g, err := group.OpenGroup(ctx, cli, "workers")
//	me, err := g.Join(ctx, "worker-1", []byte("10.0.0.7:9000")) // leaves with the session
//	members, err := g.Members(ctx)                              // in join order
//	stop, err := g.Watch(ctx, func(c group.Changed) {
//		fmt.Println(c.Kind, c.Member.ID) // joined, updated, left
//	})
//	err = g.Leave(ctx, "worker-1")
//	err = stop(ctx)
//
// TestPackageDoc runs this code against an in-memory cluster.
//
// # Semantics
//
//   - Members are ephemeral: bound to the session that joined them, they
//     leave when it closes (Changed.Closed) or expires (Changed.Expired),
//     on every member of the cluster at the same point of the log.
//   - A member ID is unique in the group. Another session's Join of a held ID
//     fails with ErrMemberExists; the same session joining again replaces
//     the metadata (an Updated event). Only the member's session may Leave
//     it (ErrNotMember otherwise). A session may hold several members.
//   - Members lists the members in the order of their Index: the log index
//     of the Join that set their current metadata.
//   - Listening sessions (Watch, or Listen) get a Changed event for every
//     join, update and leave after Listen, in log order, exactly once (the
//     session guarantees of the runtime). Query Members for the state when
//     the watch starts: a Members call after Watch returns sees every
//     change before the first event it will get.
//
// # The state machine
//
// Group is an annotated resource in release mode: its state is the Join
// commits of the current members and the Listen commits of listening
// sessions. Leaves, refused Joins, Unlistens, superseded Joins and the
// Joins of members that left are released, so the log keeps about one entry
// per member, whatever the history.
package group
