package protocol

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/session"
)

func sampleStatus() *ClusterStatus {
	return &ClusterStatus{
		ID: 2, Addr: "10.0.0.2:7000", Role: raft.StateLeader, Term: 7, Leader: 2, LeaderAddr: "10.0.0.2:7000",
		Commit: 120, Applied: 119, LastIndex: 121, ConfigIndex: 40, Transferee: 3, Sessions: 5, Resources: 9,
		Members: []MemberStatus{
			{ID: 1, Addr: "10.0.0.1:7000", Type: raft.Active, Progress: &MemberProgress{Match: 118, Next: 122, State: raft.StateReplicate, RecentActive: true}},
			{ID: 2, Addr: "10.0.0.2:7000", Type: raft.Active, Progress: &MemberProgress{Match: 121, Next: 122, State: raft.StateReplicate}},
			{ID: 4, Addr: "10.0.0.4:7000", Type: raft.Passive, Progress: &MemberProgress{Match: 3, Next: 4, State: raft.StateProbe}},
			{ID: 5, Addr: "10.0.0.5:7000", Type: raft.Reserve},
		},
	}
}

func TestAdminRequest_RoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 1 << 16, 1<<64 - 1} {
		for _, typ := range []raft.MemberType{0, raft.Active, raft.Passive, raft.Reserve} {
			in := AdminRequest{Member: v, Addr: string(make([]byte, v%300)), Type: typ}
			out, err := DecodeAdminRequest(EncodeAdminRequest(in))
			require.NoError(t, err, "v=%d type=%d", v, typ)
			assert.Equal(t, in, out)
		}
	}
}

func TestClusterStatus_RoundTrip(t *testing.T) {
	cases := map[string]*ClusterStatus{
		"leader":        sampleStatus(),
		"empty":         {},
		"no members":    {ID: 1, Members: []MemberStatus{}},
		"follower view": {ID: 3, Role: raft.StatePreCandidate, Members: []MemberStatus{{ID: 3, Addr: "a", Type: raft.Active}}},
	}
	for _, v := range []uint64{128, 255, 256, 65536, 1<<32 - 1, 1 << 32, 1<<64 - 1} {
		s := sampleStatus()
		s.Term, s.Commit, s.Members[0].Progress.Match, s.Sessions = v, v, v, v
		cases[fmt.Sprint("width ", v)] = s
	}
	for name, in := range cases {
		out, err := DecodeClusterStatus(EncodeClusterStatus(in))
		require.NoError(t, err, name)
		assert.Equal(t, in, out, name)
	}
}

func TestAdminPayloads_RefuseGarbage(t *testing.T) {
	good := EncodeClusterStatus(sampleStatus())
	badType := EncodeClusterStatus(&ClusterStatus{Members: []MemberStatus{{ID: 1, Type: raft.Active}}})
	badType[len(badType)-3] = 9 // the member's type
	noType := EncodeClusterStatus(&ClusterStatus{Members: []MemberStatus{{ID: 1, Type: raft.Active}}})
	noType[len(noType)-3] = 0
	badRole := EncodeClusterStatus(&ClusterStatus{Role: raft.StateLeader})
	badRole[3] = 4
	statuses := map[string][]byte{
		"empty":         nil,
		"not an array":  {0xc0},
		"wrong count":   {0x91, 0x00},
		"truncated":     good[:len(good)-1],
		"trailing":      append(append([]byte{}, good...), 0),
		"member type 9": badType,
		"member type 0": noType,
		"role 4":        badRole,
		"huge members":  {0x9f, 0, 0xa0, 0, 0, 0, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0xdd, 0xff, 0xff, 0xff, 0xff},
	}
	for name, b := range statuses {
		_, err := DecodeClusterStatus(b)
		assert.ErrorIs(t, err, ErrMalformed, name)
	}
	badReqType := EncodeAdminRequest(AdminRequest{Member: 1, Type: raft.Reserve})
	badReqType[len(badReqType)-1] = 4
	requests := map[string][]byte{
		"empty":       nil,
		"wrong count": {0x92, 0x01, 0xa0},
		"type 4":      badReqType,
		"addr is int": {0x93, 0x01, 0x01, 0x01},
		"trailing":    append(EncodeAdminRequest(AdminRequest{Member: 1}), 0xc0),
	}
	for name, b := range requests {
		_, err := DecodeAdminRequest(b)
		assert.ErrorIs(t, err, ErrMalformed, name)
	}
}

func TestAdminErrors_KeepIdentityAndMessage(t *testing.T) {
	for _, sentinel := range []error{ErrNotCaughtUp, ErrUnknownMember, ErrMemberExists, ErrInvalidChange,
		ErrInvalidTransfer, ErrTransferInProgress, ErrTimeout} {
		err := fmt.Errorf("%w: member 4 (match 3, commit 9)", sentinel)
		w := AdminWireError(err)
		require.Equal(t, session.ErrorDeclared, w.Kind, sentinel.Error())
		back := AdminErrorOf(w)
		assert.ErrorIs(t, back, sentinel)
		assert.Equal(t, err.Error(), back.Error(), "the member's explanation is kept")
		for _, other := range []error{ErrNotCaughtUp, ErrUnknownMember, ErrTimeout} {
			if other != sentinel {
				assert.NotErrorIs(t, back, other)
			}
		}
	}
	// Codes are distinct: one per sentinel.
	seen := map[runtime.ErrorCode]bool{}
	for _, e := range adminErrors.Errors {
		assert.False(t, seen[e.Code], "code %d used twice", e.Code)
		seen[e.Code] = true
	}

	assert.ErrorIs(t, AdminErrorOf(AdminWireError(runtime.ErrNoLeader)), runtime.ErrNoLeader)
	var app *runtime.ApplicationError
	require.ErrorAs(t, AdminErrorOf(AdminWireError(errors.New("disk on fire"))), &app)
	assert.Equal(t, "disk on fire", app.Message)
	assert.ErrorAs(t, AdminErrorOf(&session.WireError{Kind: session.ErrorDeclared, Code: 999, Message: "x"}), &app)
	assert.NoError(t, AdminErrorOf(nil))
}

func TestAdminTypes_Named(t *testing.T) {
	for typ := AdminStatus; typ <= AdminTransfer; typ++ {
		assert.Regexp(t, "^Admin[A-Z][a-z]+$", typ.String())
	}
	assert.Equal(t, "Type(99)", Type(99).String())
	b, err := Encode(&Message{Type: AdminTransfer, ID: 1})
	require.NoError(t, err)
	m, err := Decode(b)
	require.NoError(t, err)
	assert.Equal(t, AdminTransfer, m.Type)
	b[3] = byte(typeMax) // after the 3-byte array header
	_, err = Decode(b)
	assert.ErrorIs(t, err, ErrMalformed)
}

func FuzzDecodeAdminRequest(f *testing.F) {
	f.Add(EncodeAdminRequest(AdminRequest{Member: 4, Addr: "127.0.0.1:7004", Type: raft.Passive}))
	f.Add(EncodeAdminRequest(AdminRequest{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeAdminRequest(b)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		again, err := DecodeAdminRequest(EncodeAdminRequest(r))
		require.NoError(t, err)
		require.Equal(t, r, again)
	})
}

func FuzzDecodeClusterStatus(f *testing.F) {
	f.Add(EncodeClusterStatus(sampleStatus()))
	f.Add(EncodeClusterStatus(&ClusterStatus{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeClusterStatus(b)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			return
		}
		again, err := DecodeClusterStatus(EncodeClusterStatus(s))
		require.NoError(t, err)
		require.Equal(t, s, again)
	})
}
