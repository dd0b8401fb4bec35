// Package templates holds the text/template files that `copycatgen new`
// scaffolds a resource from: the resource (resource.go.tmpl), its test on
// an in-memory copycattest cluster (resource_test.go.tmpl) and a server
// main hosting it (server_main.go.tmpl).
//
// Each template is executed with a Data value.
package templates

import "embed"

// FS holds the *.tmpl files.
//
//go:embed *.tmpl
var FS embed.FS

// Data is what the templates see.
type Data struct {
	Package    string // package name, e.g. counter
	Type       string // resource type name, e.g. Counter
	ImportPath string // import path of the resource's package
}

// Files maps each template to the path it is written to, relative to the
// new package's directory; "{{.Package}}" in a path is the package name.
var Files = map[string]string{
	"resource.go.tmpl":      "{{.Package}}.go",
	"resource_test.go.tmpl": "{{.Package}}_test.go",
	"server_main.go.tmpl":   "cmd/{{.Package}}-server/main.go",
}
