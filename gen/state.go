package gen

import (
	"fmt"
	"go/types"
	"reflect"
	"sort"
	"strings"
)

// Snapshot state: which types a resource's snapshot reaches, which of them
// get generated helpers, and whether it holds sessions.

// StateType is a struct type declared in a resource's package and reached
// from its snapshot state. msgpack cannot write it as it is (its fields may
// be unexported, it may hold sessions), so the generator writes unexported
// helpers for it: encodeT and decodeT, and resolveT when it holds sessions.
// No method is added to the user's type.
type StateType struct {
	Obj      *types.TypeName
	Fields   []*Field // written to snapshots, by name, in declaration order
	Skipped  []string // runtime handles, funcs, chans: Init rebuilds them
	Sessions bool     // reaches a runtime.Session (resolveT exists)
	done     bool     // fields checked (cycle detection)
}

// stateChecker checks the types a snapshot reaches, collecting the
// package's state types.
type stateChecker struct {
	pkg   *types.Package
	types map[*types.TypeName]*StateType
	// subs are embedded resources (fields by name) whose own generated
	// code writes them; sessions tells whether a sub holds sessions.
	stack []*types.TypeName
}

// check returns what makes t impossible to snapshot, or "".
func (c *stateChecker) check(t types.Type) string {
	t = types.Unalias(t)
	switch t := t.(type) {
	case *types.Named:
		obj := t.Obj()
		if isNamed(t, runtimePath, "Session") {
			return ""
		}
		if obj.Pkg() == nil || obj.Pkg() != c.pkg || isNamed(t, "time", "Time") || hasCustomCodec(t) {
			return encodable(t, state)
		}
		if t.TypeArgs().Len() > 0 {
			return fmt.Sprintf("type %s has type arguments, and the generator writes helpers only for plain struct types: use a concrete type", obj.Name())
		}
		for _, o := range c.stack {
			if o == obj {
				return fmt.Sprintf("type %s refers to itself (%s): a snapshot writes values, not pointer graphs, so a cycle would never end; keep the items in a slice or a map keyed by ID", obj.Name(), c.path(obj))
			}
		}
		st, ok := t.Underlying().(*types.Struct)
		if !ok {
			c.stack = append(c.stack, obj)
			defer func() { c.stack = c.stack[:len(c.stack)-1] }()
			return c.check(t.Underlying())
		}
		if s := c.types[obj]; s != nil && s.done {
			return ""
		}
		s := &StateType{Obj: obj}
		c.types[obj] = s
		c.stack = append(c.stack, obj)
		defer func() { c.stack = c.stack[:len(c.stack)-1] }()
		for i := 0; i < st.NumFields(); i++ {
			f := st.Field(i)
			if f.Name() == "_" || reflect.StructTag(st.Tag(i)).Get("msgpack") == "-" {
				continue
			}
			if handleOnly(f.Type()) {
				s.Skipped = append(s.Skipped, f.Name())
				continue
			}
			if p := c.check(f.Type()); p != "" {
				delete(c.types, obj)
				if strings.HasPrefix(p, "type ") && strings.Contains(p, "refers to itself") {
					return p
				}
				return fmt.Sprintf("field %s of %s: %s", f.Name(), obj.Name(), p)
			}
			s.Fields = append(s.Fields, &Field{Name: f.Name(), Var: f.Name(), Type: f.Type(), Codec: codecOf(f.Type())})
		}
		s.done = true
		return ""
	case *types.Pointer:
		return c.check(t.Elem())
	case *types.Slice:
		return c.check(t.Elem())
	case *types.Array:
		return c.check(t.Elem())
	case *types.Map:
		if isNamed(t.Key(), runtimePath, "Session") {
			return "a runtime.Session cannot be a map key in a snapshot: key the map by the session's ID (uint64)"
		}
		if p := encodable(t.Key(), state); p != "" || !isBasicKey(t.Key()) {
			return fmt.Sprintf("map key type %s cannot be decoded reliably: use a string, integer or bool key", t.Key())
		}
		return c.check(t.Elem())
	case *types.Interface:
		return fmt.Sprintf("interface type %s cannot be decoded: the receiver cannot know the concrete type; use a concrete type, or runtime.Session, the one interface a snapshot holds (as the session's ID)", t)
	case *types.Struct:
		if p := encodable(t, state); p != "" {
			return fmt.Sprintf("msgpack cannot write the anonymous %s as it is: declare a named struct type for it in package %s, and the generator writes its snapshot code", types.TypeString(t, func(p *types.Package) string {
				if p == c.pkg {
					return ""
				}
				return p.Name()
			}), c.pkg.Name())
		}
		return ""
	}
	return encodable(t, state)
}

// path describes how a recursive type reaches itself, for messages.
func (c *stateChecker) path(obj *types.TypeName) string {
	var names []string
	for i := len(c.stack) - 1; i >= 0; i-- {
		names = append([]string{c.stack[i].Name()}, names...)
		if c.stack[i] == obj {
			break
		}
	}
	return strings.Join(append(names, obj.Name()), " -> ")
}

func isBasicKey(t types.Type) bool {
	b, ok := types.Unalias(t).Underlying().(*types.Basic)
	return ok && b.Info()&(types.IsString|types.IsInteger|types.IsBoolean) != 0
}

// hasSessions reports whether values of t hold a runtime.Session,
// directly or through the package's state types and containers.
func hasSessions(t types.Type, sts map[*types.TypeName]*StateType) bool {
	return reachesSession(t, sts, map[types.Type]bool{})
}

func reachesSession(t types.Type, sts map[*types.TypeName]*StateType, seen map[types.Type]bool) bool {
	t = types.Unalias(t)
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t := t.(type) {
	case *types.Named:
		if isNamed(t, runtimePath, "Session") {
			return true
		}
		if s := sts[t.Obj()]; s != nil {
			for _, f := range s.Fields {
				if reachesSession(f.Type, sts, seen) {
					return true
				}
			}
			return false
		}
		if t.Obj().Pkg() != nil && t.Obj().Pkg().Path() == runtimePath {
			return false
		}
		if _, ok := t.Underlying().(*types.Struct); ok {
			return false // other packages' structs are encoded by msgpack
		}
		return reachesSession(t.Underlying(), sts, seen)
	case *types.Pointer:
		return reachesSession(t.Elem(), sts, seen)
	case *types.Slice:
		return reachesSession(t.Elem(), sts, seen)
	case *types.Array:
		return reachesSession(t.Elem(), sts, seen)
	case *types.Map:
		return reachesSession(t.Elem(), sts, seen)
	}
	return false
}

// markSessions sets StateType.Sessions on the state types that hold sessions.
func markSessions(sts map[*types.TypeName]*StateType) {
	for obj, s := range sts {
		s.Sessions = hasSessions(obj.Type(), sts)
	}
}

// stateTypesOf lists, sorted by name, the state types a set of field
// types reaches.
func stateTypesOf(fields []*Field, sts map[*types.TypeName]*StateType) []*StateType {
	seen := map[*types.TypeName]bool{}
	var walk func(t types.Type, visited map[types.Type]bool)
	walk = func(t types.Type, visited map[types.Type]bool) {
		t = types.Unalias(t)
		if visited[t] {
			return
		}
		visited[t] = true
		switch t := t.(type) {
		case *types.Named:
			if s := sts[t.Obj()]; s != nil {
				seen[t.Obj()] = true
				for _, f := range s.Fields {
					walk(f.Type, visited)
				}
				return
			}
			if t.Obj().Pkg() != nil && t.Obj().Pkg().Path() != runtimePath {
				walk(t.Underlying(), visited)
			}
		case *types.Pointer:
			walk(t.Elem(), visited)
		case *types.Slice:
			walk(t.Elem(), visited)
		case *types.Array:
			walk(t.Elem(), visited)
		case *types.Map:
			walk(t.Elem(), visited)
		}
	}
	for _, f := range fields {
		walk(f.Type, map[types.Type]bool{})
	}
	var out []*StateType
	for obj := range seen {
		out = append(out, sts[obj])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Obj.Name() < out[j].Obj.Name() })
	return out
}
