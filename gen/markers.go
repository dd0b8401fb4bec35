package gen

import (
	"fmt"
	"go/ast"
	"go/token"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Markers are Go directives ("//copycat:KIND key=value ...", no space after
// the slashes) in the doc comment of the declaration they mark. This file is
// the one place that defines them.

const markerPrefix = "//copycat:"

// Marker kinds.
const (
	markResource = "resource"
	markCommand  = "command"
	markQuery    = "query"
	markEvent    = "event"
	markError    = "error"
)

// markerDef says what a marker goes on and which arguments it takes.
type markerDef struct {
	on   string            // what the marker must be attached to, for messages
	args map[string]string // argument -> the values it takes, for messages
}

var markerDefs = map[string]markerDef{
	markResource: {on: "a struct type declaration", args: map[string]string{
		"name":       "a type name such as example.com/app.Counter",
		"compaction": "snapshot|release",
	}},
	markCommand: {on: "a method with a pointer receiver", args: map[string]string{
		"code": "1..65535",
	}},
	markQuery: {on: "a method with a pointer receiver", args: map[string]string{
		"code":        "1..65535",
		"consistency": "linearizable|lease|sequential",
	}},
	markEvent: {on: "a struct type declaration", args: map[string]string{
		"code": "1..65535",
	}},
	markError: {on: "a package-level error variable", args: map[string]string{
		"code": "1..65535",
	}},
}

// A marker is one parsed directive.
type marker struct {
	Kind string
	Args map[string]string
	Pos  token.Pos
}

func (m marker) String() string { return markerPrefix + m.Kind }

// code returns the code=N argument, if any.
func (m marker) code() (uint16, bool) {
	s, ok := m.Args["code"]
	if !ok {
		return 0, false
	}
	n, _ := strconv.ParseUint(s, 10, 16) // validated by parseMarker
	return uint16(n), true
}

var typeNameRE = regexp.MustCompile(`^[A-Za-z0-9_.\-/~]+$`)

// parseMarker parses a comment's text. It reports whether the comment is
// meant as a marker at all, and every problem with it.
func parseMarker(text string) (m marker, ok bool, problems []string) {
	if !strings.HasPrefix(text, markerPrefix) {
		rest := strings.TrimLeft(strings.TrimPrefix(text, "//"), " \t")
		if strings.HasPrefix(text, "//") && rest != strings.TrimPrefix(text, "//") && strings.HasPrefix(rest, "copycat:") {
			kind, _, _ := strings.Cut(strings.TrimPrefix(rest, "copycat:"), " ")
			return m, true, []string{fmt.Sprintf("a marker is a directive without a space after the slashes: write //copycat:%s", kind)}
		}
		return m, false, nil
	}
	fields := strings.Fields(strings.TrimPrefix(text, markerPrefix))
	if len(fields) == 0 {
		return m, true, []string{"empty marker: write " + markerList()}
	}
	m.Kind = fields[0]
	def, known := markerDefs[m.Kind]
	if !known {
		return m, true, []string{fmt.Sprintf("unknown marker //copycat:%s: use %s", m.Kind, markerList())}
	}
	m.Args = map[string]string{}
	for _, f := range fields[1:] {
		key, value, hasEq := strings.Cut(f, "=")
		if _, ok := def.args[key]; !ok {
			problems = append(problems, fmt.Sprintf("unknown argument %q in %s: %s", key, m, argList(m.Kind)))
			continue
		}
		if !hasEq || value == "" {
			problems = append(problems, fmt.Sprintf("argument %s of %s needs a value: write %s=%s", key, m, key, def.args[key]))
			continue
		}
		if _, dup := m.Args[key]; dup {
			problems = append(problems, fmt.Sprintf("argument %s given twice in %s: keep one", key, m))
			continue
		}
		if p := checkArg(key, value); p != "" {
			problems = append(problems, fmt.Sprintf("%s in %s: %s", p, m, "write "+key+"="+def.args[key]))
			continue
		}
		m.Args[key] = value
	}
	return m, true, problems
}

func checkArg(key, value string) string {
	switch key {
	case "code":
		n, err := strconv.ParseUint(value, 10, 16)
		if err != nil || n == 0 {
			return fmt.Sprintf("code=%s is not a number from 1 to 65535", value)
		}
	case "compaction":
		if value != "snapshot" && value != "release" {
			return fmt.Sprintf("unknown compaction %q", value)
		}
	case "consistency":
		if value != "linearizable" && value != "lease" && value != "sequential" {
			return fmt.Sprintf("unknown consistency %q", value)
		}
	case "name":
		if !typeNameRE.MatchString(value) {
			return fmt.Sprintf("name=%s is not a valid type name (letters, digits and . _ - / ~)", value)
		}
	}
	return ""
}

func markerList() string {
	kinds := make([]string, 0, len(markerDefs))
	for k := range markerDefs {
		kinds = append(kinds, markerPrefix+k)
	}
	sort.Strings(kinds)
	return strings.Join(kinds[:len(kinds)-1], ", ") + " or " + kinds[len(kinds)-1]
}

func argList(kind string) string {
	def := markerDefs[kind]
	keys := make([]string, 0, len(def.args))
	for k := range def.args {
		keys = append(keys, k+"="+def.args[k])
	}
	sort.Strings(keys)
	return markerPrefix + kind + " takes " + strings.Join(keys, " and ")
}

// markerScan reads the markers of one file's declarations and reports the
// markers that are malformed or attached to nothing.
type markerScan struct {
	d    *diags
	seen map[*ast.Comment]bool // comments read as markers of a declaration
}

// markersOf returns the markers in a doc comment, reporting malformed ones.
func (s *markerScan) markersOf(doc *ast.CommentGroup) []marker {
	if doc == nil {
		return nil
	}
	var out []marker
	for _, c := range doc.List {
		m, ok, problems := parseMarker(c.Text)
		if !ok {
			continue
		}
		s.seen[c] = true
		for _, p := range problems {
			s.d.errorf(c.Slash, "%s", p)
		}
		if m.Args != nil { // a known kind: the declaration is marked even if an argument is wrong
			m.Pos = c.Slash
			out = append(out, m)
		}
	}
	return out
}

// strays reports marker-like comments that no declaration's doc holds.
func (s *markerScan) strays(f *ast.File) {
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			if s.seen[c] {
				continue
			}
			m, ok, problems := parseMarker(c.Text)
			if !ok {
				continue
			}
			if len(problems) > 0 {
				for _, p := range problems {
					s.d.errorf(c.Slash, "%s", p)
				}
				continue
			}
			s.d.errorf(c.Slash, "%s is not in the doc comment of a declaration: put it directly above %s", m, markerDefs[m.Kind].on)
		}
	}
}
