package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// ConfChangeType is the kind of a single-member configuration change.
type ConfChangeType uint8

const (
	// AddMember adds a member as Passive or Reserve. New voters must catch up
	// as Passive first and then be promoted (a lesson from Copycat, which made
	// them voters at once and could lose availability while they caught up).
	AddMember ConfChangeType = iota + 1
	// RemoveMember removes a member, the leader included: a leader that
	// removes itself keeps leading until the change commits, then steps down.
	RemoveMember
	// PromoteMember moves Reserve to Passive, or Passive to Active once the
	// member has caught up with the leader's commit index.
	PromoteMember
	// DemoteMember moves Active to Passive, or Passive to Reserve.
	DemoteMember
	// UpdateAddress changes a member's address.
	UpdateAddress
)

func (t ConfChangeType) String() string {
	switch t {
	case AddMember:
		return "add"
	case RemoveMember:
		return "remove"
	case PromoteMember:
		return "promote"
	case DemoteMember:
		return "demote"
	case UpdateAddress:
		return "update-address"
	}
	return fmt.Sprintf("ConfChangeType(%d)", uint8(t))
}

// ConfChange is one membership change, guarded by a compare-and-set: it
// applies only if the current configuration is the one at ConfigIndex (read
// it from Status().Config.Index), so two operators cannot race blindly.
type ConfChange struct {
	Type        ConfChangeType
	ID          uint64
	Addr        string     // AddMember, UpdateAddress
	MemberType  MemberType // AddMember: Passive (default) or Reserve
	ConfigIndex uint64
}

// apply returns the configuration that results from applying cc to c.
func (c Configuration) apply(cc ConfChange, caughtUp func(id uint64) bool) (Configuration, error) {
	if cc.ConfigIndex != c.Index {
		return Configuration{}, fmt.Errorf("%w: change expects %d, current is %d", ErrConfigIndexMismatch, cc.ConfigIndex, c.Index)
	}
	if cc.ID == 0 {
		return Configuration{}, fmt.Errorf("%w: member ID 0", ErrInvalidConfChange)
	}
	next := c.Clone()
	i := slices.IndexFunc(next.Members, func(m Member) bool { return m.ID == cc.ID })
	switch cc.Type {
	case AddMember:
		if i >= 0 {
			return Configuration{}, fmt.Errorf("%w: member %d already exists", ErrInvalidConfChange, cc.ID)
		}
		t := cc.MemberType
		if t == 0 {
			t = Passive
		}
		if t == Active {
			return Configuration{}, fmt.Errorf("%w: add member %d as PASSIVE and promote it once it has caught up", ErrInvalidConfChange, cc.ID)
		}
		next.Members = append(next.Members, Member{ID: cc.ID, Type: t, Addr: cc.Addr})
	case RemoveMember:
		if i < 0 {
			return Configuration{}, fmt.Errorf("%w: member %d does not exist", ErrInvalidConfChange, cc.ID)
		}
		next.Members = slices.Delete(next.Members, i, i+1)
	case PromoteMember:
		if i < 0 {
			return Configuration{}, fmt.Errorf("%w: member %d does not exist", ErrInvalidConfChange, cc.ID)
		}
		switch next.Members[i].Type {
		case Reserve:
			next.Members[i].Type = Passive
		case Passive:
			if !caughtUp(cc.ID) {
				return Configuration{}, fmt.Errorf("%w: %w: member %d", ErrInvalidConfChange, ErrNotCaughtUp, cc.ID)
			}
			next.Members[i].Type = Active
		default:
			return Configuration{}, fmt.Errorf("%w: member %d is already ACTIVE", ErrInvalidConfChange, cc.ID)
		}
	case DemoteMember:
		if i < 0 {
			return Configuration{}, fmt.Errorf("%w: member %d does not exist", ErrInvalidConfChange, cc.ID)
		}
		switch next.Members[i].Type {
		case Active:
			next.Members[i].Type = Passive
		case Passive:
			next.Members[i].Type = Reserve
		default:
			return Configuration{}, fmt.Errorf("%w: member %d is already RESERVE", ErrInvalidConfChange, cc.ID)
		}
	case UpdateAddress:
		if i < 0 {
			return Configuration{}, fmt.Errorf("%w: member %d does not exist", ErrInvalidConfChange, cc.ID)
		}
		next.Members[i].Addr = cc.Addr
	default:
		return Configuration{}, fmt.Errorf("%w: unknown change type %d", ErrInvalidConfChange, cc.Type)
	}
	if len(next.Voters()) == 0 {
		return Configuration{}, fmt.Errorf("%w: the change would leave no ACTIVE member", ErrInvalidConfChange)
	}
	return next, nil
}

const configFormat = 1

// EncodeConfiguration encodes the members of c for an EntryConfig entry.
// The entry's own index and term make up the rest of the configuration.
func EncodeConfiguration(c Configuration) []byte {
	b := []byte{configFormat}
	b = binary.AppendUvarint(b, uint64(len(c.Members)))
	for _, m := range c.Members {
		b = binary.AppendUvarint(b, m.ID)
		b = append(b, byte(m.Type))
		b = binary.AppendUvarint(b, uint64(len(m.Addr)))
		b = append(b, m.Addr...)
	}
	return b
}

var errBadConfig = errors.New("raft: malformed configuration")

// DecodeConfiguration decodes the data of an EntryConfig entry.
func DecodeConfiguration(data []byte) (Configuration, error) {
	if len(data) == 0 || data[0] != configFormat {
		return Configuration{}, fmt.Errorf("%w: unknown format", errBadConfig)
	}
	b := data[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	n, ok := next()
	if !ok || n > uint64(len(b)) {
		return Configuration{}, fmt.Errorf("%w: member count", errBadConfig)
	}
	c := Configuration{Members: make([]Member, 0, n)}
	for range n {
		id, ok := next()
		if !ok || len(b) < 1 {
			return Configuration{}, fmt.Errorf("%w: member id", errBadConfig)
		}
		t := MemberType(b[0])
		b = b[1:]
		if t < Active || t > Reserve {
			return Configuration{}, fmt.Errorf("%w: member type %d", errBadConfig, t)
		}
		l, ok := next()
		if !ok || l > uint64(len(b)) {
			return Configuration{}, fmt.Errorf("%w: member address", errBadConfig)
		}
		c.Members = append(c.Members, Member{ID: id, Type: t, Addr: string(b[:l])})
		b = b[l:]
	}
	if len(b) != 0 {
		return Configuration{}, fmt.Errorf("%w: %d trailing bytes", errBadConfig, len(b))
	}
	return c, nil
}

// BootstrapEntry returns the entry every founding member writes at index 1
// (term 1) with hard state {Term: 1}, so that all start from one configuration.
// Founding members are Active.
func BootstrapEntry(members []Member) Entry {
	ms := slices.Clone(members)
	for i := range ms {
		ms[i].Type = Active
	}
	return Entry{Term: 1, Index: 1, Type: EntryConfig, Data: EncodeConfiguration(Configuration{Members: ms})}
}
