package gen

import (
	"go/ast"
	"go/token"
	"go/types"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// builder turns sources into the model, checking everything.
type builder struct {
	d     *diags
	srcs  map[string]*source // by import path
	decls map[string]*decls  // by import path
	// foreign loads the syntax of a package a resource embeds from.
	foreign  func(path string) (*source, error)
	res      map[*types.TypeName]*Resource
	building map[*types.TypeName]bool
	quiet    *diags                   // problems of foreign packages: theirs to fix, not reported here
	states   map[string]*stateChecker // by import path
}

func newBuilder(fset *token.FileSet, foreign func(string) (*source, error)) *builder {
	return &builder{
		d:        &diags{fset: fset},
		srcs:     map[string]*source{},
		decls:    map[string]*decls{},
		foreign:  foreign,
		res:      map[*types.TypeName]*Resource{},
		building: map[*types.TypeName]bool{},
		quiet:    &diags{fset: fset},
		states:   map[string]*stateChecker{},
	}
}

// stateChecker returns the state checker of a package: one per package, so
// every resource of it shares its state types.
func (b *builder) stateChecker(pkg *types.Package) *stateChecker {
	sc := b.states[pkg.Path()]
	if sc == nil {
		sc = &stateChecker{pkg: pkg, types: map[*types.TypeName]*StateType{}}
		b.states[pkg.Path()] = sc
	}
	return sc
}

// addRoot scans a package the generator writes for.
func (b *builder) addRoot(src *source) {
	b.srcs[src.Path] = src
	b.decls[src.Path] = scan(src, b.d)
}

// declsOf returns the marked declarations of a package, loading its
// syntax if it is not a root.
func (b *builder) declsOf(pkg *types.Package) *decls {
	if ds, ok := b.decls[pkg.Path()]; ok {
		return ds
	}
	var ds *decls
	if b.foreign != nil {
		if src, err := b.foreign(pkg.Path()); err == nil && src != nil {
			src.Types = pkg
			b.srcs[pkg.Path()] = src
			ds = scan(src, b.quiet)
		}
	}
	if ds == nil {
		ds = &decls{resources: map[string]*typeDecl{}, events: map[string]*typeDecl{}, errors: map[string]*varDecl{}, methods: map[string]map[string]*methodDecl{}}
	}
	b.decls[pkg.Path()] = ds
	return ds
}

// buildPackage returns the model of a root package.
func (b *builder) buildPackage(src *source) *Package {
	p := &Package{Path: src.Path, Name: src.Name, Dir: src.Dir}
	ds := b.decls[src.Path]
	b.checkEvents(src, ds)
	b.checkErrors(src, ds)
	for _, name := range sortedKeys(ds.resources) {
		obj, _ := src.Types.Scope().Lookup(name).(*types.TypeName)
		if obj == nil {
			continue
		}
		if r := b.resource(obj); r != nil {
			b.checkNames(src, r)
			p.Resources = append(p.Resources, r)
		}
	}
	if sc := b.states[src.Path]; sc != nil {
		for _, s := range sc.types {
			if s.done {
				p.StateTypes = append(p.StateTypes, s)
			}
		}
		sort.Slice(p.StateTypes, func(i, j int) bool { return p.StateTypes[i].Obj.Name() < p.StateTypes[j].Obj.Name() })
		b.checkStateNames(src, p)
	}
	// Methods marked on types that are not resources.
	for _, recv := range sortedKeys(ds.methods) {
		if _, ok := ds.resources[recv]; ok {
			continue
		}
		for _, name := range sortedKeys(ds.methods[recv]) {
			md := ds.methods[recv][name]
			b.d.errorf(md.m.Pos, "%s.%s is marked %s, and %s is not a resource: mark type %s with //copycat:resource", recv, name, md.m, recv, recv)
		}
	}
	return p
}

// resource builds (once) the model of a resource type, own or embedded.
func (b *builder) resource(obj *types.TypeName) *Resource {
	if r, ok := b.res[obj]; ok {
		return r
	}
	if b.building[obj] {
		return nil
	}
	b.building[obj] = true
	defer delete(b.building, obj)

	pkg := obj.Pkg()
	ds := b.declsOf(pkg)
	td := ds.resources[obj.Name()]
	if td == nil {
		return nil
	}
	d := b.d
	if src := b.srcs[pkg.Path()]; src == nil || src.Info == nil {
		d = b.quiet // an embedded package's problems are reported when it is generated
	}
	named, _ := obj.Type().(*types.Named)
	st, _ := obj.Type().Underlying().(*types.Struct)
	if named == nil || st == nil {
		return nil
	}
	if named.TypeParams().Len() > 0 {
		d.errorf(td.spec.Name.Pos(), "resource %s has type parameters, which the generator cannot instantiate: declare a concrete struct type", obj.Name())
		return nil
	}
	r := &Resource{
		Name:     obj.Name(),
		PkgPath:  pkg.Path(),
		TypeName: pkg.Path() + "." + obj.Name(),
		File:     td.file,
		Doc:      docText(td.doc),
		Hooks:    map[string][]string{},
		Pos:      td.spec.Name.Pos(),
	}
	if n, ok := td.m.Args["name"]; ok {
		r.TypeName = n
	}
	explicit := false
	r.Compaction = CompactionSnapshot
	if c, ok := td.m.Args["compaction"]; ok {
		r.Compaction, explicit = Compaction(c), true
	}

	// Own methods, marked or not (unmarked ones shadow promoted operations).
	own := map[string]*types.Func{}
	for i := 0; i < named.NumMethods(); i++ {
		own[named.Method(i).Name()] = named.Method(i)
	}
	ops := map[string]*Op{}
	for _, name := range sortedKeys(ds.methods[obj.Name()]) {
		md := ds.methods[obj.Name()][name]
		fn := own[name]
		if fn == nil {
			continue
		}
		if op := b.op(d, pkg, obj.Name(), fn, md); op != nil {
			ops[name] = op
		}
	}

	// Embedded fields.
	type sub struct {
		field string
		r     *Resource
	}
	var subs []sub
	for i := 0; i < st.NumFields(); i++ {
		f := st.Field(i)
		if !f.Embedded() {
			continue
		}
		ft := types.Unalias(f.Type())
		if p, ok := ft.(*types.Pointer); ok {
			if n, ok := types.Unalias(p.Elem()).(*types.Named); ok && n.Obj().Pkg() != nil && b.declsOf(n.Obj().Pkg()).resources[n.Obj().Name()] != nil {
				d.errorf(f.Pos(), "resource %s embeds *%s: embed %s by value, so a new %s holds it whole", obj.Name(), qualName(n.Obj(), pkg), qualName(n.Obj(), pkg), obj.Name())
			}
			continue
		}
		n, ok := ft.(*types.Named)
		if !ok || n.Obj().Pkg() == nil {
			continue
		}
		if b.declsOf(n.Obj().Pkg()).resources[n.Obj().Name()] == nil {
			continue
		}
		sr := b.resource(n.Obj())
		if sr == nil {
			d.errorf(f.Pos(), "embedded resource %s could not be read: fix it first", qualName(n.Obj(), pkg))
			continue
		}
		subs = append(subs, sub{field: f.Name(), r: sr})
	}

	// Promoted operations: the outer type's own methods win; two embedded
	// resources offering one name is an ambiguity the user resolves.
	promoted := map[string][]string{}
	for _, s := range subs {
		for _, op := range s.r.Ops {
			if _, shadowed := own[op.Name]; shadowed {
				continue
			}
			promoted[op.Name] = append(promoted[op.Name], s.r.Name)
			if len(promoted[op.Name]) > 1 {
				d.errorf(r.Pos, "two operations named %s: %s embeds both %s, which have one: declare %s on %s to choose", op.Name, obj.Name(), strings.Join(promoted[op.Name], " and "), op.Name, obj.Name())
				continue
			}
			cp := *op
			cp.Path = joinPath(s.field, op.Path)
			ops[op.Name] = &cp
		}
		if s.r.Compaction == CompactionRelease && !explicit {
			r.Compaction = CompactionRelease
		}
	}
	for _, s := range subs {
		if s.r.Compaction == CompactionRelease && r.Compaction == CompactionSnapshot {
			d.errorf(td.m.Pos, "%s uses compaction=snapshot and embeds %s, which uses compaction=release and may hold commits no snapshot can restore: mark %s //copycat:resource compaction=release", obj.Name(), s.r.Name, obj.Name())
		}
	}
	for _, name := range sortedKeys(ops) {
		r.Ops = append(r.Ops, ops[name])
	}
	checkCodes(d, r.Pos, "operation", r.Ops, func(o *Op) (string, uint16, token.Pos) { return o.Name, o.Code, o.Pos })

	// Events and errors: the package's and the embedded resources'.
	events := map[string]*Event{}
	for _, name := range sortedKeys(ds.events) {
		e := b.event(pkg, name, ds.events[name])
		events[pkg.Path()+"."+name] = e
	}
	errs := map[string]*ErrorVar{}
	for _, name := range sortedKeys(ds.errors) {
		errs[pkg.Path()+"."+name] = b.errorVar(pkg, name, ds.errors[name])
	}
	for _, s := range subs {
		for _, e := range s.r.Events {
			events[e.PkgPath+"."+e.Name] = e
		}
		for _, e := range s.r.Errors {
			errs[e.PkgPath+"."+e.Name] = e
		}
	}
	for _, k := range sortedKeys(events) {
		r.Events = append(r.Events, events[k])
	}
	sort.SliceStable(r.Events, func(i, j int) bool { return r.Events[i].Name < r.Events[j].Name })
	for i := 1; i < len(r.Events); i++ {
		if r.Events[i].Name == r.Events[i-1].Name {
			d.errorf(r.Pos, "two events named %s reach %s (from %s and %s): its client would have two On%s methods; rename one", r.Events[i].Name, obj.Name(), r.Events[i-1].PkgPath, r.Events[i].PkgPath, r.Events[i].Name)
		}
	}
	checkCodes(d, r.Pos, "event", r.Events, func(e *Event) (string, uint16, token.Pos) { return e.Name, e.Code, e.Pos })
	for _, k := range sortedKeys(errs) {
		r.Errors = append(r.Errors, errs[k])
	}
	checkCodes(d, r.Pos, "error", r.Errors, func(e *ErrorVar) (string, uint16, token.Pos) { return e.Name, e.Code, e.Pos })

	// Hooks: the struct's own, else each embedded field's in order.
	for _, h := range hookNames {
		if fn, ok := own[h]; ok {
			if hookOK(h, fn) {
				r.Hooks[h] = []string{""}
			} else {
				d.errorf(fn.Pos(), "%s.%s is not the %s hook, whose signature is %s: change its signature, or rename it", obj.Name(), h, h, hookSigs[h])
			}
			continue
		}
		for i := 0; i < st.NumFields(); i++ {
			f := st.Field(i)
			if !f.Embedded() {
				continue
			}
			var sr *Resource
			for _, s := range subs {
				if s.field == f.Name() {
					sr = s.r
				}
			}
			if sr != nil {
				for _, p := range sr.Hooks[h] {
					r.Hooks[h] = append(r.Hooks[h], joinPath(f.Name(), p))
				}
				continue
			}
			if _, isPtr := types.Unalias(f.Type()).(*types.Pointer); isPtr {
				continue // may be nil: the user forwards it by hand
			}
			if fn := methodOf(types.NewPointer(f.Type()), pkg, h); fn != nil && hookOK(h, fn) {
				r.Hooks[h] = append(r.Hooks[h], f.Name())
			}
		}
	}

	// Snapshots.
	snap, restore := own["Snapshot"], own["Restore"]
	_, snapIsOp := ops["Snapshot"]
	_, restoreIsOp := ops["Restore"]
	if snap != nil && !snapIsOp && restore != nil && !restoreIsOp && sigIs(snap, "io", "Writer") && sigIs(restore, "io", "Reader") {
		r.SnapshotOverride = true
	} else if (snap != nil && !snapIsOp && sigIs(snap, "io", "Writer")) != (restore != nil && !restoreIsOp && sigIs(restore, "io", "Reader")) {
		fn := snap
		if fn == nil || !sigIs(snap, "io", "Writer") {
			fn = restore
		}
		d.errorf(fn.Pos(), "%s declares only one of Snapshot(io.Writer) error and Restore(io.Reader) error: declare both to replace the generated snapshot, or neither", obj.Name())
	}
	_, userEnc := own["EncodeMsgpack"]
	_, userDec := own["DecodeMsgpack"]
	if userEnc != userDec {
		d.errorf(r.Pos, "%s declares only one of EncodeMsgpack and DecodeMsgpack: declare both to write its state yourself, or neither", obj.Name())
	}
	if r.Compaction == CompactionSnapshot && !r.SnapshotOverride && !userEnc && !userDec {
		r.StateCodec = true
		sc := b.stateChecker(pkg)
		for i := 0; i < st.NumFields(); i++ {
			f := st.Field(i)
			if f.Name() == "_" {
				continue
			}
			if handleOnly(f.Type()) {
				r.Skipped = append(r.Skipped, f.Name())
				continue
			}
			if p, isPtr := types.Unalias(f.Type()).(*types.Pointer); isPtr && f.Embedded() {
				if n, ok := types.Unalias(p.Elem()).(*types.Named); ok && n.Obj().Pkg() != nil && b.declsOf(n.Obj().Pkg()).resources[n.Obj().Name()] != nil {
					continue // reported above
				}
			}
			var sub *Resource
			for _, s := range subs {
				if f.Embedded() && s.field == f.Name() {
					sub = s.r
				}
			}
			if sub == nil {
				if p := sc.check(f.Type()); p != "" {
					d.errorf(f.Pos(), "field %s of %s cannot be snapshotted: %s (or give %s Snapshot/Restore methods, or use compaction=release)", f.Name(), obj.Name(), p, obj.Name())
					continue
				}
			} else if sub.Sessions {
				r.Sessions = true
				r.SessionSubs = append(r.SessionSubs, f.Name())
			}
			r.State = append(r.State, &Field{Name: f.Name(), Var: f.Name(), Type: f.Type(), Codec: codecOf(f.Type()), Snapshotter: sub != nil && sub.SnapshotOverride})
		}
		markSessions(sc.types)
		for _, fl := range r.State {
			r.Sessions = r.Sessions || hasSessions(fl.Type, sc.types)
		}
		r.StateTypes = stateTypesOf(r.State, sc.types)
		if r.Sessions {
			if _, clash := own[resolveMethod]; clash {
				d.errorf(own[resolveMethod].Pos(), "%s.%s clashes with the method the generator writes to resolve the sessions a snapshot holds: rename it", obj.Name(), resolveMethod)
			}
		}
	}
	b.res[obj] = r
	return r
}

// op builds one operation from a marked method.
func (b *builder) op(d *diags, pkg *types.Package, recv string, fn *types.Func, md *methodDecl) *Op {
	sig := fn.Type().(*types.Signature)
	pos := md.fn.Name.Pos()
	op := &Op{
		Name: fn.Name(),
		Kind: OpKind(md.m.Kind),
		Doc:  docText(md.fn.Doc),
		From: recv,
		Pos:  pos,
	}
	op.Code = Code(op.Name)
	if c, ok := md.m.code(); ok {
		op.Code = c
	}
	if op.Kind == KindQuery {
		op.Consistency = "linearizable"
		if c, ok := md.m.Args["consistency"]; ok {
			op.Consistency = c
		}
	}
	ok := true
	bad := func(p token.Pos, format string, args ...any) {
		d.errorf(p, format, args...)
		ok = false
	}
	if !fn.Exported() {
		bad(pos, "operation %s is unexported, so its client method could not be called from other packages: export it", fn.Name())
	}
	if _, ptr := types.Unalias(sig.Recv().Type()).(*types.Pointer); !ptr {
		bad(pos, "operation %s has a value receiver, so a command's changes would be lost: write func (x *%s) %s(...)", fn.Name(), recv, fn.Name())
	}
	params := md.fn.Type.Params
	paramPos := func(i int) token.Pos {
		// the i-th parameter's position in the source
		n := 0
		for _, f := range params.List {
			names := len(f.Names)
			if names == 0 {
				names = 1
			}
			if i < n+names {
				if len(f.Names) > 0 {
					return f.Names[i-n].Pos()
				}
				return f.Type.Pos()
			}
			n += names
		}
		return pos
	}
	seen := map[string]bool{}
	for i := 0; i < sig.Params().Len(); i++ {
		v := sig.Params().At(i)
		p := paramPos(i)
		if isNamed(v.Type(), runtimePath, "Commit") {
			if i != 0 {
				bad(p, "runtime.Commit must be the first parameter of %s: move it first", fn.Name())
				continue
			}
			op.Commit = true
			if op.Kind == KindQuery {
				if call := releaseCall(b.srcs[pkg.Path()], md.fn, v); call.IsValid() {
					bad(call, "query %s releases its Commit, and queries never enter the log, so there is nothing to release: remove the Release call, or make %s a //copycat:command", fn.Name(), fn.Name())
				}
			}
			continue
		}
		if v.Name() == "" || v.Name() == "_" {
			bad(p, "parameter %d of %s has no name, and the name becomes a field of %s%s: name it", i+1, fn.Name(), recv, fn.Name())
			continue
		}
		t := v.Type()
		if sig.Variadic() && i == sig.Params().Len()-1 {
			op.Variadic = true
		}
		if prob := encodable(t, wire); prob != "" {
			bad(p, "parameter %s of %s: %s", v.Name(), fn.Name(), prob)
			continue
		}
		name := exportName(v.Name())
		if seen[name] {
			bad(p, "parameters of %s give two fields named %s: rename one", fn.Name(), name)
			continue
		}
		seen[name] = true
		op.Params = append(op.Params, &Field{Name: name, Var: v.Name(), Type: t, Codec: codecOf(t)})
	}
	res := sig.Results()
	shape := func() string {
		var parts []string
		for i := 0; i < res.Len(); i++ {
			parts = append(parts, types.TypeString(res.At(i).Type(), types.RelativeTo(pkg)))
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	resPos := pos
	if md.fn.Type.Results != nil {
		resPos = md.fn.Type.Results.Pos()
	}
	var result *types.Var
	switch res.Len() {
	case 0:
	case 1:
		if isError(res.At(0).Type()) {
			op.Error = true
		} else {
			result = res.At(0)
		}
	case 2:
		if !isError(res.At(1).Type()) || isError(res.At(0).Type()) {
			bad(resPos, "%s returns %s: an operation returns (), (T), (error) or (T, error)", fn.Name(), shape())
		}
		result, op.Error = res.At(0), true
	default:
		bad(resPos, "%s returns %s: an operation returns (), (T), (error) or (T, error); put several results in a struct", fn.Name(), shape())
	}
	if result != nil && ok {
		if prob := encodable(result.Type(), wire); prob != "" {
			bad(resPos, "result of %s: %s", fn.Name(), prob)
		} else {
			name := "Value"
			if result.Name() != "" && result.Name() != "_" {
				name = exportName(result.Name())
			}
			op.Result = &Field{Name: name, Var: result.Name(), Type: result.Type(), Codec: codecOf(result.Type())}
		}
	}
	if !ok {
		return nil
	}
	return op
}

// releaseCall finds a call of the Commit parameter's Release method in a
// method body (root packages only, where type information is at hand).
func releaseCall(src *source, fn *ast.FuncDecl, param *types.Var) token.Pos {
	if src == nil || src.Info == nil || fn.Body == nil {
		return token.NoPos
	}
	var obj types.Object
	for _, f := range fn.Type.Params.List {
		for _, n := range f.Names {
			if o := src.Info.Defs[n]; o != nil && o.Name() == param.Name() && o.Pos() == param.Pos() {
				obj = o
			}
		}
	}
	if obj == nil {
		return token.NoPos
	}
	var found token.Pos
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || found.IsValid() {
			return !found.IsValid()
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Release" {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && src.Info.Uses[id] == obj {
			found = call.Pos()
		}
		return true
	})
	return found
}

func (b *builder) event(pkg *types.Package, name string, td *typeDecl) *Event {
	e := &Event{Name: name, PkgPath: pkg.Path(), Code: Code(name), Doc: docText(td.doc), Pos: td.spec.Name.Pos()}
	if c, ok := td.m.code(); ok {
		e.Code = c
	}
	return e
}

func (b *builder) errorVar(pkg *types.Package, name string, vd *varDecl) *ErrorVar {
	e := &ErrorVar{Name: name, PkgPath: pkg.Path(), Code: Code(name), Pos: vd.name.Pos()}
	if c, ok := vd.m.code(); ok {
		e.Code = c
	}
	return e
}

// checkEvents checks the event types of a root package.
func (b *builder) checkEvents(src *source, ds *decls) {
	for _, name := range sortedKeys(ds.events) {
		td := ds.events[name]
		obj, _ := src.Types.Scope().Lookup(name).(*types.TypeName)
		if obj == nil {
			continue
		}
		if !obj.Exported() {
			b.d.errorf(td.spec.Name.Pos(), "event %s is unexported, and clients take it in On%s: export it", name, exportName(name))
			continue
		}
		if n, ok := obj.Type().(*types.Named); ok && n.TypeParams().Len() > 0 {
			b.d.errorf(td.spec.Name.Pos(), "event %s has type parameters: declare a concrete struct type", name)
			continue
		}
		if p := encodable(obj.Type(), wire); p != "" {
			b.d.errorf(td.spec.Name.Pos(), "event %s cannot be encoded: %s", name, p)
		}
	}
}

// checkErrors checks the declared errors of a root package.
func (b *builder) checkErrors(src *source, ds *decls) {
	errType := types.Universe.Lookup("error").Type().Underlying().(*types.Interface)
	for _, name := range sortedKeys(ds.errors) {
		vd := ds.errors[name]
		obj, _ := src.Types.Scope().Lookup(name).(*types.Var)
		if obj == nil {
			continue
		}
		if !types.Implements(obj.Type(), errType) {
			b.d.errorf(vd.name.Pos(), "%s is marked //copycat:error, and its type %s is not an error: declare it with errors.New", name, obj.Type())
			delete(ds.errors, name)
		}
	}
}

// checkNames reports generated names that clash with the package's own.
func (b *builder) checkNames(src *source, r *Resource) {
	names := []string{r.Name + "Type", r.Name + "Client", "Open" + r.Name, lowerFirst(r.Name) + "Server"}
	for _, op := range r.Ops {
		names = append(names, r.Name+op.Name, r.Name+op.Name+"Op")
		if op.Result != nil {
			names = append(names, r.Name+op.Name+"Result")
		}
	}
	for _, e := range r.Events {
		names = append(names, r.Name+e.Name+"Event")
	}
	for _, n := range names {
		if obj := src.Types.Scope().Lookup(n); obj != nil {
			b.d.errorf(obj.Pos(), "%s clashes with the name the generator writes for resource %s: rename it", n, r.Name)
		}
	}
	ops := map[string]*Op{}
	for _, op := range r.Ops {
		ops[op.Name] = op
	}
	for _, op := range r.Ops {
		switch op.Name {
		case "Resource", "Close", "Delete", "DroppedEvents":
			b.d.errorf(op.Pos, "operation %s clashes with the method %sClient has for itself: rename it", op.Name, r.Name)
		}
		if other := ops["Start"+op.Name]; other != nil && op.Kind == KindCommand {
			b.d.errorf(other.Pos, "operation %s clashes with the method %sClient has to start command %s: rename one of them", other.Name, r.Name, op.Name)
		}
	}
}

// checkStateNames reports the package's names that clash with the helpers
// the generator writes for snapshot state.
func (b *builder) checkStateNames(src *source, p *Package) {
	byName := map[string]string{}
	sessions := false
	for _, r := range p.Resources {
		sessions = sessions || r.Sessions
	}
	var names []string
	for _, s := range p.StateTypes {
		enc := stateHelper("encode", s.Obj)
		if other, dup := byName[enc]; dup {
			b.d.errorf(s.Obj.Pos(), "types %s and %s would both get snapshot helpers named %s and %s: rename one", other, s.Obj.Name(), enc, stateHelper("decode", s.Obj))
		}
		byName[enc] = s.Obj.Name()
		names = append(names, enc, stateHelper("decode", s.Obj))
		if s.Sessions {
			names = append(names, stateHelper("resolve", s.Obj))
		}
	}
	if sessions {
		names = append(names, sessionHelpers...)
	}
	for _, n := range names {
		if obj := src.Types.Scope().Lookup(n); obj != nil {
			b.d.errorf(obj.Pos(), "%s clashes with a snapshot helper the generator writes: rename it", n)
		}
	}
}

// checkCodes reports two items of one resource sharing a code.
func checkCodes[T any](d *diags, at token.Pos, what string, items []T, get func(T) (string, uint16, token.Pos)) {
	byCode := map[uint16]string{}
	for _, it := range items {
		name, code, pos := get(it)
		if !pos.IsValid() {
			pos = at
		}
		marker := markCommand
		switch what {
		case "event":
			marker = markEvent
		case "error":
			marker = markError
		}
		if code == 0 {
			d.errorf(pos, "%s %s hashes to code 0, which is reserved: give it a code with //copycat:%s code=N", what, name, marker)
			continue
		}
		if other, dup := byCode[code]; dup {
			d.errorf(pos, "%s %s has code %d, like %s %s: give one of them another code with //copycat:%s code=N", what, name, code, what, other, marker)
			continue
		}
		byCode[code] = name
	}
}

func hookOK(name string, fn *types.Func) bool {
	sig := fn.Type().(*types.Signature)
	if sig.Results().Len() != 0 {
		return false
	}
	p := sig.Params()
	switch name {
	case "Init":
		return p.Len() == 1 && isNamed(p.At(0).Type(), runtimePath, "Context")
	case "SessionOpened":
		return p.Len() == 1 && isNamed(p.At(0).Type(), runtimePath, "Session")
	case "SessionClosed":
		return p.Len() == 2 && isNamed(p.At(0).Type(), runtimePath, "Session") && types.Identical(p.At(1).Type(), types.Typ[types.Bool])
	case "Delete":
		return p.Len() == 0
	}
	return false
}

// sigIs reports whether fn is func(pkg.name) error.
func sigIs(fn *types.Func, pkg, name string) bool {
	sig := fn.Type().(*types.Signature)
	return sig.Params().Len() == 1 && isNamed(sig.Params().At(0).Type(), pkg, name) &&
		sig.Results().Len() == 1 && isError(sig.Results().At(0).Type())
}

func methodOf(t types.Type, pkg *types.Package, name string) *types.Func {
	obj, _, _ := types.LookupFieldOrMethod(t, true, pkg, name)
	fn, _ := obj.(*types.Func)
	return fn
}

func qualName(obj types.Object, from *types.Package) string {
	if obj.Pkg() == nil || obj.Pkg() == from {
		return obj.Name()
	}
	return obj.Pkg().Name() + "." + obj.Name()
}

func joinPath(a, b string) string {
	if b == "" {
		return a
	}
	if a == "" {
		return b
	}
	return a + "." + b
}

func exportName(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
