package session

import (
	"maps"
	"slices"
	"time"

	"github.com/copycat-go/copycat/runtime"
)

// Image is a session's whole replicated state, as a state image at a
// compaction point keeps it. Everything exactly-once and event delivery rely
// on is here — last sequence, cached responses, unacknowledged
// events — so a client that retries after its command's entry was cleaned
// gets the original response, never a second application (copycat#330), and
// events survive compaction.
type Image struct {
	ID             uint64               `msgpack:"id"`
	ClientID       string               `msgpack:"client"`
	Timeout        time.Duration        `msgpack:"timeout"`
	State          runtime.SessionState `msgpack:"state"`
	LastKeepAlive  int64                `msgpack:"last_keep_alive"` // UnixNano
	KeepAliveIndex uint64               `msgpack:"keep_alive_index"`
	CommandSeq     uint64               `msgpack:"command_seq"`
	CommandAck     uint64               `msgpack:"command_ack"`
	Responses      []SequencedResponse  `msgpack:"responses"`
	EventIndex     uint64               `msgpack:"event_index"`
	EventAck       uint64               `msgpack:"event_ack"`
	Events         []EventBatch         `msgpack:"events"`
}

// SequencedResponse is a cached response with its command's sequence.
type SequencedResponse struct {
	Sequence uint64   `msgpack:"seq"`
	Response Response `msgpack:"response"`
}

// Image returns the session's state. Maps are written in sequence order so
// that every member produces the same bytes for the same state.
func (s *Session) Image() Image {
	img := Image{
		ID: s.ID, ClientID: s.ClientID, Timeout: s.Timeout, State: s.State,
		LastKeepAlive: s.LastKeepAlive.UnixNano(), KeepAliveIndex: s.KeepAliveIndex,
		CommandSeq: s.CommandSeq, CommandAck: s.CommandAck,
		EventIndex: s.EventIndex, EventAck: s.EventAck,
		Events: slices.Clone(s.events),
	}
	for _, seq := range slices.Sorted(maps.Keys(s.responses)) {
		img.Responses = append(img.Responses, SequencedResponse{Sequence: seq, Response: s.responses[seq]})
	}
	return img
}

// FromImage rebuilds a session from its image.
func FromImage(img Image) *Session {
	s := &Session{
		ID: img.ID, ClientID: img.ClientID, Timeout: img.Timeout, State: img.State,
		LastKeepAlive: time.Unix(0, img.LastKeepAlive), KeepAliveIndex: img.KeepAliveIndex,
		CommandSeq: img.CommandSeq, CommandAck: img.CommandAck,
		EventIndex: img.EventIndex, EventAck: img.EventAck,
		responses: make(map[uint64]Response, len(img.Responses)),
		events:    slices.Clone(img.Events),
	}
	for _, r := range img.Responses {
		s.responses[r.Sequence] = r.Response
	}
	return s
}
