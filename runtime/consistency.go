package runtime

import "fmt"

// Consistency is the consistency level of a query.
type Consistency uint8

const (
	// Default means the query's declared default (Linearizable if none).
	Default Consistency = iota
	// Linearizable queries reflect every command completed before they were
	// issued, by any client. The leader confirms its leadership with a
	// quorum round (ReadIndex) first.
	Linearizable
	// LinearizableLease queries are answered by the leader while it holds a
	// lease confirmed by a quorum, saving the round trip. They rely on bounded
	// clock drift between members.
	LinearizableLease
	// Sequential queries may be answered by any member, PASSIVE ones too,
	// once it has applied everything the client has seen: a client never
	// sees state go backwards, but may not see other clients' latest writes.
	Sequential
)

func (c Consistency) String() string {
	switch c {
	case Default:
		return "default"
	case Linearizable:
		return "linearizable"
	case LinearizableLease:
		return "lease"
	case Sequential:
		return "sequential"
	}
	return fmt.Sprintf("Consistency(%d)", uint8(c))
}

// ParseConsistency parses the names used in //copycat:query markers and flags.
func ParseConsistency(s string) (Consistency, error) {
	switch s {
	case "linearizable":
		return Linearizable, nil
	case "lease":
		return LinearizableLease, nil
	case "sequential":
		return Sequential, nil
	}
	return Default, fmt.Errorf("unknown consistency %q: use linearizable, lease or sequential", s)
}
