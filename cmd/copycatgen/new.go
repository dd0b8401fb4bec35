package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/token"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/template"
	"unicode"

	"github.com/copycat-go/copycat/templates"
)

// runNew scaffolds a resource package NAME in dir from the templates.
func runNew(args []string, dir string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("copycatgen new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: copycatgen new NAME\n\nwrites NAME/NAME.go, NAME/NAME_test.go and NAME/cmd/NAME-server/main.go, then generates NAME's code")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	name := fs.Arg(0)
	if !validName(name) {
		fmt.Fprintf(stderr, "copycatgen new: %q is not a package name: use lower-case letters and digits, starting with a letter\n", name)
		return 2
	}
	modDir, modPath, err := findModule(dir)
	if err != nil {
		fmt.Fprintln(stderr, "copycatgen new:", err)
		return 2
	}
	pkgDir := filepath.Join(dir, name)
	relDir, err := filepath.Rel(modDir, pkgDir)
	if err != nil {
		fmt.Fprintln(stderr, "copycatgen new:", err)
		return 2
	}
	data := templates.Data{
		Package:    name,
		Type:       string(unicode.ToUpper(rune(name[0]))) + name[1:],
		ImportPath: path.Join(modPath, filepath.ToSlash(relDir)),
	}
	out := map[string][]byte{}
	for tmpl, dst := range templates.Files {
		t, err := template.ParseFS(templates.FS, tmpl)
		if err != nil {
			fmt.Fprintln(stderr, "copycatgen new:", err)
			return 2
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			fmt.Fprintln(stderr, "copycatgen new:", err)
			return 2
		}
		out[filepath.Join(pkgDir, filepath.FromSlash(strings.ReplaceAll(dst, "{{.Package}}", name)))] = buf.Bytes()
	}
	for p := range out {
		if _, err := os.Stat(p); err == nil {
			fmt.Fprintf(stderr, "copycatgen new: %s exists: not overwriting\n", rel(dir, p))
			return 1
		}
	}
	for p, b := range out {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fmt.Fprintln(stderr, "copycatgen new:", err)
			return 2
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			fmt.Fprintln(stderr, "copycatgen new:", err)
			return 2
		}
		fmt.Fprintln(stdout, rel(dir, p))
	}
	return run([]string{"-v", "./" + name}, dir, stdout, stderr)
}

func validName(s string) bool {
	if s == "" || !token.IsIdentifier(s) || token.IsKeyword(s) || s == "main" {
		return false
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z') && !(i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// findModule returns the directory and path of the module holding dir.
func findModule(dir string) (string, string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		f, err := os.Open(filepath.Join(d, "go.mod"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return d, strings.Trim(strings.TrimSpace(rest), `"`), nil
				}
			}
			return "", "", fmt.Errorf("%s has no module line", filepath.Join(d, "go.mod"))
		}
		if filepath.Dir(d) == d {
			return "", "", errors.New("not inside a Go module: run go mod init first")
		}
	}
}
