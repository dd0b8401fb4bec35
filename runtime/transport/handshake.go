package transport

import (
	"fmt"
	"math"
)

// Magic opens every hello so that a stray connection (an HTTP probe, another
// protocol) is recognised and refused at once.
const Magic = "copycat"

// ProtocolVersion is the version of the frame and message formats this
// package speaks. Acceptors refuse any other.
const ProtocolVersion = 1

// maxHandshakeFrame bounds the frames exchanged before a connection is
// accepted, so an unauthenticated dialer cannot make a member allocate a
// maximum-sized frame.
const maxHandshakeFrame = 4 << 10

// Kind says what a connection carries.
type Kind uint8

const (
	// KindPeer connections carry batches of raft.Message from one member to
	// another.
	KindPeer Kind = 1
	// KindClient is reserved for the client protocol, served on the same
	// port by whoever installs TCPConfig.AcceptConn. Every kind other than
	// KindPeer is handed to that hook.
	KindClient Kind = 2
)

// String names the kind for logs.
func (k Kind) String() string {
	switch k {
	case KindPeer:
		return "peer"
	case KindClient:
		return "client"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Hello is the first frame a dialer sends. On the wire it is the msgpack
// array [Magic, Version, ClusterID, Kind, From, To].
type Hello struct {
	// Version is the dialer's protocol version; Handshake fills in
	// ProtocolVersion when it is zero.
	Version uint32
	// ClusterID must equal the acceptor's: members of different clusters
	// never talk, even when an address is reused.
	ClusterID string
	// Kind says what the connection carries.
	Kind Kind
	// From is the dialer's member ID (peers), or 0.
	From uint64
	// To is the member the dialer means to reach. A peer acceptor refuses
	// the connection if it is not that member; 0 means "any" and is
	// accepted only for kinds other than KindPeer.
	To uint64
}

// helloFields is the number of fields of an encoded hello, magic included.
const helloFields = 6

// replyFields is the number of fields of an encoded reply: [ok, reason].
const replyFields = 2

func encodeHello(h Hello) ([]byte, error) {
	e := getEncoder()
	defer putEncoder(e)
	e.buf.b = e.buf.b[:0]
	e.arrayLen(helloFields)
	e.string(Magic)
	e.uint(uint64(h.Version))
	e.string(h.ClusterID)
	e.uint(uint64(h.Kind))
	e.uint(h.From)
	e.uint(h.To)
	if e.err != nil {
		return nil, fmt.Errorf("transport: encode hello: %w", e.err)
	}
	return append([]byte(nil), e.buf.b...), nil
}

// decodeHello decodes a hello. A wrong magic or version is not a decoding
// error: it is returned in the Hello (Version) or as refusal reason by
// checkHello, so the acceptor can explain its refusal.
func decodeHello(body []byte) (h Hello, magic string, err error) {
	d := getDecoder(body)
	defer putDecoder(d)
	d.fields("hello", helloFields)
	magic = d.string("magic")
	v := d.uint("version")
	if d.err == nil && v > math.MaxUint32 {
		d.fail("version", fmt.Errorf("%d out of range", v))
	}
	h.Version = uint32(v)
	h.ClusterID = d.string("cluster id")
	h.Kind = Kind(d.uint8("kind"))
	h.From = d.uint("from")
	h.To = d.uint("to")
	if d.err == nil && d.r.Len() != 0 {
		d.fail("hello", fmt.Errorf("%d trailing bytes", d.r.Len()))
	}
	if d.err != nil {
		return Hello{}, "", fmt.Errorf("transport: decode hello: %w: %v", ErrMalformed, d.err)
	}
	return h, magic, nil
}

func encodeReply(ok bool, reason string) ([]byte, error) {
	e := getEncoder()
	defer putEncoder(e)
	e.buf.b = e.buf.b[:0]
	e.arrayLen(replyFields)
	e.bool(ok)
	e.string(reason)
	if e.err != nil {
		return nil, fmt.Errorf("transport: encode handshake reply: %w", e.err)
	}
	return append([]byte(nil), e.buf.b...), nil
}

func decodeReply(body []byte) (ok bool, reason string, err error) {
	d := getDecoder(body)
	defer putDecoder(d)
	d.fields("reply", replyFields)
	ok = d.bool("ok")
	reason = d.string("reason")
	if d.err == nil && d.r.Len() != 0 {
		d.fail("reply", fmt.Errorf("%d trailing bytes", d.r.Len()))
	}
	if d.err != nil {
		return false, "", fmt.Errorf("transport: decode handshake reply: %w: %v", ErrMalformed, d.err)
	}
	return ok, reason, nil
}

// Handshake performs the dialer's side of the handshake on a fresh
// connection: it sends h and waits for the acceptor's answer. It returns nil
// if the acceptor accepted, an error wrapping ErrRefused with the acceptor's
// reason if it refused, and another error if the exchange failed. The caller
// sets deadlines on c.NetConn() around the call.
func Handshake(c *Conn, h Hello) error {
	if h.Version == 0 {
		h.Version = ProtocolVersion
	}
	body, err := encodeHello(h)
	if err != nil {
		return err
	}
	if err := c.WriteFrame(body); err != nil {
		return fmt.Errorf("transport: send hello: %w", err)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("transport: send hello: %w", err)
	}
	limit := c.MaxFrameSize()
	c.SetMaxFrameSize(maxHandshakeFrame)
	body, err = c.ReadFrame()
	c.SetMaxFrameSize(limit)
	if err != nil {
		return fmt.Errorf("transport: read handshake reply: %w", err)
	}
	ok, reason, err := decodeReply(body)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("transport: %w: %s", ErrRefused, reason)
	}
	return nil
}

// Accept performs the acceptor's side of the handshake on a fresh
// connection of member memberID of clusterID: it reads the dialer's hello,
// refuses it with a reason (ErrRefused) if it is for another cluster or
// member, speaks another protocol, or is of a kind serves does not allow,
// and otherwise accepts it. The caller sets deadlines on c.NetConn().
func Accept(c *Conn, clusterID string, memberID uint64, serves func(Kind) bool) (Hello, error) {
	limit := c.MaxFrameSize()
	c.SetMaxFrameSize(maxHandshakeFrame)
	body, err := c.ReadFrame()
	c.SetMaxFrameSize(limit)
	if err != nil {
		return Hello{}, fmt.Errorf("transport: read hello: %w", err)
	}
	hello, magic, err := decodeHello(body)
	var reason string
	switch {
	case err != nil:
		reason = "malformed hello"
	default:
		reason = checkHello(hello, magic, clusterID, memberID)
		if reason == "" && serves != nil && !serves(hello.Kind) {
			reason = fmt.Sprintf("connections of kind %s are not served here", hello.Kind)
		}
	}
	if reason != "" {
		_ = replyHello(c, false, reason)
		if err != nil {
			return hello, fmt.Errorf("transport: %w: %s: %v", ErrRefused, reason, err)
		}
		return hello, fmt.Errorf("transport: %w: %s", ErrRefused, reason)
	}
	if err := replyHello(c, true, ""); err != nil {
		return hello, fmt.Errorf("transport: send handshake reply: %w", err)
	}
	return hello, nil
}

func replyHello(c *Conn, ok bool, reason string) error {
	body, err := encodeReply(ok, reason)
	if err != nil {
		return err
	}
	if err := c.WriteFrame(body); err != nil {
		return err
	}
	return c.Flush()
}

// checkHello returns why an acceptor that is member memberID of clusterID
// must refuse h, or "" to accept it.
func checkHello(h Hello, magic, clusterID string, memberID uint64) string {
	switch {
	case magic != Magic:
		return fmt.Sprintf("not a copycat connection (magic %q)", magic)
	case h.Version != ProtocolVersion:
		return fmt.Sprintf("protocol version %d is not supported (this member speaks %d)", h.Version, ProtocolVersion)
	case h.ClusterID != clusterID:
		return fmt.Sprintf("cluster ID %q does not match this member's cluster %q", h.ClusterID, clusterID)
	case h.Kind == KindPeer && h.From == 0:
		return "peer hello without a member ID"
	case h.Kind == KindPeer && h.To != memberID, h.Kind != KindPeer && h.To != 0 && h.To != memberID:
		return fmt.Sprintf("this is member %d, not member %d", memberID, h.To)
	}
	return ""
}
