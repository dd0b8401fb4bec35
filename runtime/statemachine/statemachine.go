package statemachine

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/copycat-go/copycat/runtime"
	"github.com/copycat-go/copycat/runtime/session"
)

// Output is what applying an entry produced for one waiting client request.
type Output struct {
	Kind  Kind
	Index uint64
	// Session is the session concerned; for OpenSession, the new session's ID.
	Session uint64
	// Sequence identifies a command within its session.
	Sequence uint64
	// Resource is the instance opened (OpenResource).
	Resource uint64
	// Response carries a command's outcome, or an error for the other kinds.
	Response session.Response
}

// StateMachine applies entries to sessions and resources.
type StateMachine struct {
	types     map[string]*runtime.ResourceType
	sessions  *session.Table
	resources map[uint64]*instance
	names     map[[2]string]uint64
	now       time.Time
	timers    timers
	index     uint64 // last applied
	// replaying is set while Restore rebuilds state: nothing reaches clients.
	replaying bool

	// while applying one entry
	outputs   []Output
	cur       *execution
	published map[uint64]bool // sessions that received events since TakePublished
}

type instance struct {
	id   uint64
	name string
	typ  *runtime.ResourceType
	res  runtime.Resource
	// commands of this instance still live, with the state machine time
	// (UnixNano) each ran at: a replay must run it at that time, not at its
	// entry's timestamp, which may lag the running maximum.
	commands map[uint64]int64
}

// execution is the command being executed, for Commit and Publish.
type execution struct {
	index    uint64
	session  uint64
	resource *instance
	query    bool
	released bool
	err      error // an event that failed to encode fails the command
}

// New returns an empty state machine hosting the given resource types.
func New(types ...*runtime.ResourceType) (*StateMachine, error) {
	sm := &StateMachine{
		types:     map[string]*runtime.ResourceType{},
		sessions:  session.NewTable(),
		resources: map[uint64]*instance{},
		names:     map[[2]string]uint64{},
		published: map[uint64]bool{},
	}
	for _, t := range types {
		if t == nil || t.Name == "" || t.New == nil {
			return nil, errors.New("statemachine: a resource type needs a Name and New")
		}
		if _, dup := sm.types[t.Name]; dup {
			return nil, fmt.Errorf("statemachine: resource type %q registered twice", t.Name)
		}
		sm.types[t.Name] = t
	}
	return sm, nil
}

// Now returns the state machine's time.
func (sm *StateMachine) Now() time.Time { return sm.now }

// Index returns the last applied index.
func (sm *StateMachine) Index() uint64 { return sm.index }

// Live returns the commands resources hold: the entries that would stay in
// the log (Release mode) or be covered by the next snapshot (Snapshot mode).
func (sm *StateMachine) Live() int {
	n := 0
	for _, inst := range sm.resources {
		n += len(inst.commands)
	}
	return n
}

// Session returns a session's state (for the server's read paths).
func (sm *StateMachine) Session(id uint64) (*session.Session, bool) { return sm.sessions.Get(id) }

// SessionIDs returns the IDs of the sessions the machine holds.
func (sm *StateMachine) SessionIDs() []uint64 { return sm.sessions.IDs() }

// Resources returns the number of resource instances.
func (sm *StateMachine) Resources() int { return len(sm.resources) }

// TakePublished returns the sessions that received events since the last call.
func (sm *StateMachine) TakePublished() []uint64 {
	if len(sm.published) == 0 {
		return nil
	}
	ids := make([]uint64, 0, len(sm.published))
	for id := range sm.published {
		ids = append(ids, id)
	}
	clear(sm.published)
	slices.Sort(ids)
	return ids
}

// Advance moves time forward for an entry that carries no state machine
// payload (a NoOp or a configuration), firing due timers.
func (sm *StateMachine) Advance(index uint64, timestamp int64) {
	sm.tick(index, timestamp)
}

func (sm *StateMachine) tick(index uint64, timestamp int64) {
	if index <= sm.index {
		panic(fmt.Sprintf("statemachine: apply index %d after %d", index, sm.index))
	}
	sm.index = index
	sm.fireDue(index, time.Unix(0, timestamp))
}

// fireDue moves time to t unless it is behind, then runs the timers due.
func (sm *StateMachine) fireDue(index uint64, t time.Time) {
	if t.After(sm.now) {
		sm.now = t
	}
	for t := sm.timers.due(sm.now); t != nil; t = sm.timers.due(sm.now) {
		prev := sm.cur
		sm.cur = &execution{index: index, resource: sm.resources[t.resource]}
		t.f()
		sm.cur = prev
	}
}

// Apply applies one entry and returns what it produced for waiting requests.
// A malformed entry is skipped (its index still advances): every member
// skips it alike.
func (sm *StateMachine) Apply(index uint64, timestamp int64, data []byte) ([]Output, error) {
	sm.tick(index, timestamp)
	e, err := DecodeEntry(data)
	if err != nil {
		return nil, fmt.Errorf("statemachine: entry %d: %w", index, err)
	}
	sm.outputs = sm.outputs[:0]
	switch e.Kind {
	case KindOpenSession:
		sm.openSession(index, e)
	case KindKeepAlive:
		sm.keepAlive(index, e)
	case KindCloseSession:
		sm.closeSession(index, e.Session, e.Expired)
	case KindOpenResource:
		sm.openResource(index, e)
	case KindDeleteResource:
		sm.deleteResource(index, e)
	case KindCommand:
		sm.command(index, e)
	}
	out := slices.Clone(sm.outputs)
	return out, nil
}

func (sm *StateMachine) openSession(index uint64, e Entry) {
	s := session.New(index, e.ClientID, e.Timeout, sm.now)
	sm.sessions.Add(s)
	for _, id := range sm.instanceIDs() {
		inst := sm.resources[id]
		if l, ok := inst.res.(runtime.SessionListener); ok {
			sm.cur = &execution{index: index, resource: inst}
			l.SessionOpened(sm.handle(index, inst))
			sm.cur = nil
		}
	}
	sm.outputs = append(sm.outputs, Output{Kind: KindOpenSession, Index: index, Session: index})
}

func (sm *StateMachine) keepAlive(index uint64, e Entry) {
	for _, k := range e.KeepAlives {
		s, ok := sm.sessions.Get(k.Session)
		out := Output{Kind: KindKeepAlive, Index: index, Session: k.Session}
		if !ok || s.State != runtime.SessionOpen {
			out.Response.Err = session.ErrorFor(runtime.ErrSessionExpired, nil)
			sm.outputs = append(sm.outputs, out)
			continue
		}
		s.LastKeepAlive = sm.now
		s.Acknowledge(k.CommandAck, k.EventAck)
		s.KeepAliveIndex = index
		out.Response.EventIndex = s.EventIndex
		sm.outputs = append(sm.outputs, out)
	}
}

func (sm *StateMachine) closeSession(index uint64, id uint64, expired bool) {
	s, ok := sm.sessions.Get(id)
	out := Output{Kind: KindCloseSession, Index: index, Session: id}
	if !ok || s.State != runtime.SessionOpen {
		out.Response.Err = session.ErrorFor(runtime.ErrSessionClosed, nil)
		sm.outputs = append(sm.outputs, out)
		return
	}
	s.Close(expired)
	for _, rid := range sm.instanceIDs() {
		inst := sm.resources[rid]
		if l, ok := inst.res.(runtime.SessionListener); ok {
			sm.cur = &execution{index: index, resource: inst}
			l.SessionClosed(sm.handle(id, inst), expired)
			sm.cur = nil
		}
	}
	sm.sessions.Remove(id)
	// Opening and closing cancel out: neither entry holds state any more.
	sm.outputs = append(sm.outputs, out)
}

func (sm *StateMachine) openResource(index uint64, e Entry) {
	out := Output{Kind: KindOpenResource, Index: index, Session: e.Session}
	typ, ok := sm.types[e.Type]
	if !ok {
		out.Response.Err = session.ErrorFor(fmt.Errorf("%w: %q", runtime.ErrUnknownResourceType, e.Type), nil)
		sm.outputs = append(sm.outputs, out)
		return
	}
	key := [2]string{e.Type, e.Name}
	if id, ok := sm.names[key]; ok {
		out.Resource = id
		sm.outputs = append(sm.outputs, out)
		return
	}
	inst := &instance{id: index, name: e.Name, typ: typ, res: typ.New(), commands: map[uint64]int64{}}
	sm.resources[index] = inst
	sm.names[key] = index
	if in, ok := inst.res.(runtime.Initializer); ok {
		sm.cur = &execution{index: index, resource: inst}
		in.Init(&resourceContext{sm: sm, inst: inst})
		sm.cur = nil
	}
	out.Resource = index
	sm.outputs = append(sm.outputs, out)
}

func (sm *StateMachine) deleteResource(index uint64, e Entry) {
	out := Output{Kind: KindDeleteResource, Index: index, Session: e.Session, Resource: e.Resource}
	inst, ok := sm.resources[e.Resource]
	if !ok {
		out.Response.Err = session.ErrorFor(runtime.ErrUnknownResource, nil)
		sm.outputs = append(sm.outputs, out)
		return
	}
	if d, ok := inst.res.(runtime.Deleter); ok {
		sm.cur = &execution{index: index, resource: inst}
		d.Delete()
		sm.cur = nil
	}
	sm.timers.cancelResource(inst.id)
	delete(sm.resources, inst.id)
	delete(sm.names, [2]string{inst.typ.Name, inst.name})
	sm.outputs = append(sm.outputs, out)
}

func (sm *StateMachine) command(index uint64, e Entry) {
	s, ok := sm.sessions.Get(e.Session)
	if !ok || s.State != runtime.SessionOpen {
		sm.outputs = append(sm.outputs, Output{Kind: KindCommand, Index: index, Session: e.Session, Sequence: e.Sequence,
			Response: session.Response{Index: index, Err: session.ErrorFor(runtime.ErrSessionExpired, nil)}})
		return
	}
	s.Acknowledge(e.CommandAck, 0)
	switch s.Classify(e.Sequence) {
	case session.Duplicate:
		// A retry of an applied command: answer from the cache, never apply
		// twice. If the client acknowledged it already, it does not wait.
		if r, ok := s.Cached(e.Sequence); ok {
			sm.outputs = append(sm.outputs, Output{Kind: KindCommand, Index: index, Session: s.ID, Sequence: e.Sequence, Response: r})
		}
		return
	case session.Early:
		sm.outputs = append(sm.outputs, Output{Kind: KindCommand, Index: index, Session: s.ID, Sequence: e.Sequence,
			Response: session.Response{Index: index, Err: session.ErrorFor(runtime.ErrCommandOutOfOrder, nil)}})
		return
	}
	r := sm.execute(s, index, e)
	s.Applied(e.Sequence, r)
	r.EventIndex = s.EventIndex
	sm.outputs = append(sm.outputs, Output{Kind: KindCommand, Index: index, Session: s.ID, Sequence: e.Sequence, Response: r})
}

// execute runs one command on its resource.
func (sm *StateMachine) execute(s *session.Session, index uint64, e Entry) session.Response {
	r := session.Response{Index: index}
	inst, ok := sm.resources[e.Resource]
	if !ok {
		r.Err = session.ErrorFor(runtime.ErrUnknownResource, nil)
		return r
	}
	if op, ok := inst.typ.Operation(e.Op); !ok || op.Kind != runtime.Command {
		r.Err = session.ErrorFor(fmt.Errorf("%w: %d on %s", runtime.ErrUnknownOperation, e.Op, inst.typ.Name), nil)
		return r
	}
	exec := &execution{index: index, session: s.ID, resource: inst}
	sm.cur = exec
	result, err := sm.safeExecute(inst, exec, e.Op, e.Args)
	sm.cur = nil
	if err == nil {
		err = exec.err
	}
	if !exec.released {
		// Live until the resource releases it, or (Snapshot mode) until a
		// snapshot covers it.
		inst.commands[index] = sm.now.UnixNano()
	}
	if err != nil {
		r.Err = session.ErrorFor(err, inst.typ)
		return r
	}
	r.Result = result
	return r
}

// safeExecute turns a panic in resource code into an error for the client:
// a bug in one resource must not take the member down. The panic happens at
// the same point on every member, so they stay identical.
func (sm *StateMachine) safeExecute(inst *instance, exec *execution, op runtime.OpCode, args []byte) (res []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &runtime.ApplicationError{Message: fmt.Sprintf("%s: operation %d panicked: %v", inst.typ.Name, op, p)}
		}
	}()
	return inst.res.Execute(&commit{sm: sm, exec: exec}, op, args)
}

// Query runs a read-only operation against the current state.
func (sm *StateMachine) Query(sessionID, resource uint64, op runtime.OpCode, args []byte) session.Response {
	r := session.Response{Index: sm.index}
	inst, ok := sm.resources[resource]
	if !ok {
		r.Err = session.ErrorFor(runtime.ErrUnknownResource, nil)
		return r
	}
	if o, ok := inst.typ.Operation(op); !ok || o.Kind != runtime.Query {
		r.Err = session.ErrorFor(fmt.Errorf("%w: %d on %s", runtime.ErrUnknownOperation, op, inst.typ.Name), nil)
		return r
	}
	exec := &execution{index: sm.index, session: sessionID, resource: inst, query: true}
	sm.cur = exec
	result, err := sm.safeExecute(inst, exec, op, args)
	sm.cur = nil
	if err != nil {
		r.Err = session.ErrorFor(err, inst.typ)
		return r
	}
	r.Result = result
	return r
}

func (sm *StateMachine) instanceIDs() []uint64 {
	ids := make([]uint64, 0, len(sm.resources))
	for id := range sm.resources {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
