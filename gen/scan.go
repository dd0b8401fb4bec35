package gen

import (
	"go/ast"
	"go/token"
	"go/types"
	"strings"
)

// source is one package as the model builder reads it: its syntax (for
// markers and docs) and its types. info is nil for packages loaded only
// because a resource embeds one of theirs.
type source struct {
	Path  string
	Name  string
	Dir   string
	Types *types.Package
	Files []*ast.File
	Info  *types.Info
}

// decls are the marked declarations of one package.
type decls struct {
	resources map[string]*typeDecl
	events    map[string]*typeDecl
	errors    map[string]*varDecl
	methods   map[string]map[string]*methodDecl // receiver type -> method -> decl
}

type typeDecl struct {
	m    marker
	spec *ast.TypeSpec
	doc  *ast.CommentGroup
	file string
}

type varDecl struct {
	m    marker
	name *ast.Ident
}

type methodDecl struct {
	m  marker
	fn *ast.FuncDecl
}

// scan finds the markers of a package's declarations and reports those
// on the wrong kind of declaration, malformed, or attached to nothing.
func scan(src *source, d *diags) *decls {
	ds := &decls{
		resources: map[string]*typeDecl{},
		events:    map[string]*typeDecl{},
		errors:    map[string]*varDecl{},
		methods:   map[string]map[string]*methodDecl{},
	}
	for _, f := range src.Files {
		s := &markerScan{d: d, seen: map[*ast.Comment]bool{}}
		file := d.fset.Position(f.Package).Filename
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				ms := one(s.markersOf(decl.Doc), decl.Name.Name, d)
				if ms == nil {
					continue
				}
				m := *ms
				if m.Kind != markCommand && m.Kind != markQuery {
					wrongPlace(d, m, decl.Name.Name+" is a func")
					continue
				}
				if decl.Recv == nil || len(decl.Recv.List) == 0 {
					d.errorf(m.Pos, "%s goes on a method of a resource, and %s is a function without a receiver: make it a method, or remove the marker", m, decl.Name.Name)
					continue
				}
				recv := recvName(decl.Recv.List[0].Type)
				if ds.methods[recv] == nil {
					ds.methods[recv] = map[string]*methodDecl{}
				}
				ds.methods[recv][decl.Name.Name] = &methodDecl{m: m, fn: decl}
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					doc := specDoc(decl, spec)
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						ms := one(s.markersOf(doc), spec.Name.Name, d)
						if ms == nil {
							continue
						}
						m := *ms
						if m.Kind != markResource && m.Kind != markEvent {
							wrongPlace(d, m, spec.Name.Name+" is a type")
							continue
						}
						if _, ok := spec.Type.(*ast.StructType); !ok || spec.Assign.IsValid() {
							d.errorf(m.Pos, "%s goes on %s, and %s is not a struct type: declare type %s struct{...}", m, markerDefs[m.Kind].on, spec.Name.Name, spec.Name.Name)
							continue
						}
						td := &typeDecl{m: m, spec: spec, doc: doc, file: file}
						if m.Kind == markResource {
							ds.resources[spec.Name.Name] = td
						} else {
							ds.events[spec.Name.Name] = td
						}
					case *ast.ValueSpec:
						ms := one(s.markersOf(doc), spec.Names[0].Name, d)
						if ms == nil {
							continue
						}
						m := *ms
						if m.Kind != markError || decl.Tok != token.VAR {
							what := "a variable"
							if decl.Tok == token.CONST {
								what = "a constant"
							}
							wrongPlace(d, m, spec.Names[0].Name+" is "+what)
							continue
						}
						if _, ok := m.code(); ok && len(spec.Names) > 1 {
							d.errorf(m.Pos, "%s code=N names one error, and this declaration has %d: declare them one per line", m, len(spec.Names))
							continue
						}
						for _, n := range spec.Names {
							if n.Name == "_" {
								continue
							}
							ds.errors[n.Name] = &varDecl{m: m, name: n}
						}
					case *ast.ImportSpec:
						if ms := s.markersOf(doc); len(ms) > 0 {
							wrongPlace(d, ms[0], "this is an import")
						}
					}
				}
			}
		}
		s.strays(f)
	}
	return ds
}

// one returns the single marker of a declaration, reporting several.
func one(ms []marker, name string, d *diags) *marker {
	if len(ms) == 0 {
		return nil
	}
	if len(ms) > 1 {
		d.errorf(ms[1].Pos, "%s has both %s and %s: keep one marker", name, ms[0], ms[1])
	}
	return &ms[0]
}

func wrongPlace(d *diags, m marker, what string) {
	d.errorf(m.Pos, "%s goes on %s, and %s: move it, or remove it", m, markerDefs[m.Kind].on, what)
}

// specDoc returns the doc comment of a spec: its own, or the declaration's
// when the declaration has a single unparenthesized spec.
func specDoc(decl *ast.GenDecl, spec ast.Spec) *ast.CommentGroup {
	var doc *ast.CommentGroup
	switch spec := spec.(type) {
	case *ast.TypeSpec:
		doc = spec.Doc
	case *ast.ValueSpec:
		doc = spec.Doc
	case *ast.ImportSpec:
		doc = spec.Doc
	}
	if doc == nil && !decl.Lparen.IsValid() {
		doc = decl.Doc
	}
	return doc
}

// recvName returns the type name of a receiver expression: T, *T, T[P], *T[P].
func recvName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// docText returns a doc comment without its directives, trimmed.
func docText(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	return strings.TrimSpace(cg.Text())
}
