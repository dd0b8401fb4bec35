// Package transport moves Raft messages between the members of a copycat
// cluster: over TCP between processes, and over an in-memory network with
// fault injection in tests.
//
// # Transport
//
// Both implementations satisfy Transport. Send never blocks: each peer has a
// bounded queue, and a message that does not fit, or whose peer is unknown,
// is dropped and counted. Raft tolerates loss; it does not tolerate a member
// stalled behind a slow peer. Received batches go to a Handler.
//
// # Frames
//
// On the wire everything is a frame: a 4-byte big-endian length followed by
// that many bytes of body, at most a maximum frame size (16 MiB by default).
// Conn reads and writes frames; errors are classified by ErrFrameTooLarge,
// ErrTruncated and ErrMalformed, and a bad frame closes its connection and
// nothing else. The client protocol shares the format and the port.
//
// # Handshake
//
// A dialer's first frame is a Hello: the magic "copycat", the protocol
// version, the cluster ID, the connection's Kind, and the dialer's and the
// intended acceptor's member IDs. The acceptor answers with ok or a reason,
// and refuses another cluster, another member ID, or another protocol.
// Peer connections (KindPeer) carry message batches; every other kind is
// handed to TCPConfig.AcceptConn, which is how a server serves clients on
// its peer port.
//
// # Messages
//
// A peer frame's body is a batch of raft.Message encoded in msgpack by hand
// (EncodeBatch, DecodeBatch): no reflection, pooled encoders and decoders,
// every count checked against the bytes that remain before anything is
// allocated, and every message type checked with raft.ValidMessageType.
// Every field travels, including Group, so that one connection can later
// carry many Raft groups.
//
// # TCP
//
// NewTCP listens, accepts peers, and keeps one outbound connection per peer,
// owned by a writer goroutine that drains the peer's queue into frames (as
// many messages per frame as fit, one flush per batch) and reconnects with
// jittered exponential backoff. TCPConfig.Unreachable reports peers that
// cannot be reached; optional mutual TLS secures every connection.
//
// # Network
//
// NewNetwork builds an in-memory network whose endpoints are Transports.
// Partition, Isolate, Drop, Delay, Duplicate and Reorder inject faults at run
// time, with randomness from a seed; closing an endpoint is a crash that
// loses whatever was in flight to it.
package transport
