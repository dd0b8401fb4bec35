package transport

import "github.com/copycat-go/copycat/runtime/raft"

// Transport moves Raft messages between the members of a cluster. It is
// implemented by TCP and by the endpoints of an in-memory Network.
//
// Delivery is best effort: Raft tolerates lost, duplicated and reordered
// messages, so a Transport never blocks its caller to guarantee delivery.
// Messages sent to one peer over one healthy connection arrive in order.
type Transport interface {
	// Send queues msgs for delivery to their To members and returns at once.
	// Each peer has a bounded queue; a message is dropped (and counted) when
	// its peer's queue is full or its peer is unknown.
	//
	// Send may keep references to the messages' Entries, Data and Snapshot
	// until they are written; callers must not modify them afterwards (the
	// Raft core never does: entries are immutable once created).
	Send(msgs []raft.Message)
	// SetPeer adds a peer or changes its address. Changing the address drops
	// the current connection to the peer and connects to the new address.
	SetPeer(id uint64, addr string)
	// RemovePeer forgets a peer, dropping its queue and connection.
	RemovePeer(id uint64)
	// Close stops the transport and waits for its goroutines to exit.
	// Messages still queued are lost.
	Close() error
}

// Handler receives each batch of messages that arrives from a peer. It is
// called from the goroutine that reads the connection (or, in a Network, the
// destination's delivery goroutine), so a slow Handler applies back-pressure
// to that connection only. The slice and everything it references belong to
// the Handler.
type Handler func(msgs []raft.Message)

// Stats are a transport's cumulative counters.
type Stats struct {
	// Sent counts messages written to a connection and flushed.
	Sent uint64
	// Dropped counts messages discarded before being written: unknown peer,
	// full queue, failed connection or write, or a message larger than the
	// maximum frame size.
	Dropped uint64
	// Frames counts frames written.
	Frames uint64
	// Reconnects counts outbound connections established to a peer after its
	// first one.
	Reconnects uint64
	// Received counts messages handed to the Handler.
	Received uint64
	// FramesReceived counts frames read from peers.
	FramesReceived uint64
	// BadFrames counts inbound connections closed because of an oversized,
	// truncated or malformed frame.
	BadFrames uint64
	// Refused counts handshakes refused, by either side.
	Refused uint64
}
