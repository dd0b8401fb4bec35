package protocol

import (
	"errors"
	"fmt"

	"github.com/copycat-go/copycat/runtime/raft"
)

// Wire format of the admin payloads, written by hand like Message:
//
//	AdminRequest:   [member, addr, type]
//	ClusterStatus:  [id, addr, role, term, leader, leaderAddr, commit, applied,
//	                 lastIndex, configIndex, transferee, sessions, resources,
//	                 members, reserved]
//	MemberStatus:   [id, addr, type, progress]   progress is nil or
//	MemberProgress: [match, next, state, recentActive]
//
// Field counts are exact. Decoders refuse member types, roles and progress
// states the raft package does not define.
const (
	adminRequestFields   = 3
	clusterStatusFields  = 15
	memberStatusFields   = 4
	memberProgressFields = 4
)

// EncodeAdminRequest returns the Args of an admin request.
func EncodeAdminRequest(r AdminRequest) []byte {
	b := appendArray(nil, adminRequestFields)
	b = appendUint(b, r.Member)
	b = appendString(b, r.Addr)
	return appendUint(b, uint64(r.Type))
}

// DecodeAdminRequest parses the Args of an admin request. It never panics
// on bad input; errors wrap ErrMalformed.
func DecodeAdminRequest(b []byte) (req AdminRequest, err error) {
	defer func() {
		if p := recover(); p != nil {
			req, err = AdminRequest{}, fmt.Errorf("%w: admin request: %v", ErrMalformed, p)
		}
	}()
	r := &reader{b: b}
	if n := r.array(); r.err == nil && n != adminRequestFields {
		r.fail(errors.New("wrong field count"))
	}
	req.Member = r.uint()
	req.Addr = r.str()
	req.Type = raft.MemberType(r.small(uint64(raft.Reserve)))
	if err := r.end(); err != nil {
		return AdminRequest{}, fmt.Errorf("%w: admin request: %v", ErrMalformed, err)
	}
	return req, nil
}

// EncodeClusterStatus returns the Result of an AdminStatus response.
func EncodeClusterStatus(s *ClusterStatus) []byte {
	b := appendArray(nil, clusterStatusFields)
	b = appendUint(b, s.ID)
	b = appendString(b, s.Addr)
	b = appendUint(b, uint64(s.Role))
	b = appendUint(b, s.Term)
	b = appendUint(b, s.Leader)
	b = appendString(b, s.LeaderAddr)
	b = appendUint(b, s.Commit)
	b = appendUint(b, s.Applied)
	b = appendUint(b, s.LastIndex)
	b = appendUint(b, s.ConfigIndex)
	b = appendUint(b, s.Transferee)
	b = appendUint(b, s.Sessions)
	b = appendUint(b, s.Resources)
	if s.Members == nil {
		b = append(b, 0xc0)
	} else {
		b = appendArray(b, len(s.Members))
		for _, m := range s.Members {
			b = appendArray(b, memberStatusFields)
			b = appendUint(b, m.ID)
			b = appendString(b, m.Addr)
			b = appendUint(b, uint64(m.Type))
			if p := m.Progress; p == nil {
				b = append(b, 0xc0)
			} else {
				b = appendArray(b, memberProgressFields)
				b = appendUint(b, p.Match)
				b = appendUint(b, p.Next)
				b = appendUint(b, uint64(p.State))
				b = appendBool(b, p.RecentActive)
			}
		}
	}
	// Reserved for a group ID (many Raft groups per member).
	return appendUint(b, 0)
}

// DecodeClusterStatus parses the Result of an AdminStatus response. It
// never panics on bad input; errors wrap ErrMalformed.
func DecodeClusterStatus(b []byte) (s *ClusterStatus, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("%w: cluster status: %v", ErrMalformed, p)
		}
	}()
	r := &reader{b: b}
	if n := r.array(); r.err == nil && n != clusterStatusFields {
		r.fail(errors.New("wrong field count"))
	}
	s = &ClusterStatus{}
	s.ID = r.uint()
	s.Addr = r.str()
	s.Role = raft.StateType(r.small(uint64(raft.StateLeader)))
	s.Term = r.uint()
	s.Leader = r.uint()
	s.LeaderAddr = r.str()
	s.Commit = r.uint()
	s.Applied = r.uint()
	s.LastIndex = r.uint()
	s.ConfigIndex = r.uint()
	s.Transferee = r.uint()
	s.Sessions = r.uint()
	s.Resources = r.uint()
	if !r.isNil() {
		n := r.array()
		if n > len(r.b) {
			r.fail(errShort)
		}
		s.Members = make([]MemberStatus, 0, min(n, 1024))
		for i := 0; i < n && r.err == nil; i++ {
			s.Members = append(s.Members, r.memberStatus())
		}
	}
	r.uint()
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("%w: cluster status: %v", ErrMalformed, err)
	}
	return s, nil
}

func (r *reader) memberStatus() MemberStatus {
	if n := r.array(); r.err == nil && n != memberStatusFields {
		r.fail(errors.New("member: wrong field count"))
	}
	m := MemberStatus{ID: r.uint(), Addr: r.str()}
	m.Type = raft.MemberType(r.small(uint64(raft.Reserve)))
	if r.err == nil && m.Type == 0 {
		r.fail(errors.New("member: no type"))
	}
	if !r.isNil() {
		if n := r.array(); r.err == nil && n != memberProgressFields {
			r.fail(errors.New("progress: wrong field count"))
		}
		m.Progress = &MemberProgress{Match: r.uint(), Next: r.uint()}
		m.Progress.State = raft.ProgressState(r.small(uint64(raft.StateSnapshot)))
		m.Progress.RecentActive = r.bool()
	}
	return m
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

func (r *reader) bool() bool {
	switch r.byte1() {
	case 0xc2:
		return false
	case 0xc3:
		return true
	}
	r.fail(errors.New("expected a boolean"))
	return false
}

// end reports the first decoding error, or trailing bytes.
func (r *reader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(errors.New("trailing bytes"))
	}
	return r.err
}
