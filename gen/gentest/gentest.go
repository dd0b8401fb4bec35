// Package gentest makes temporary modules that use this repository through
// a replace directive, for tests of the generator and its command.
package gentest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Root returns the repository root: the directory holding the go.mod of
// github.com/copycat-go/copycat, found upward from the working directory.
func Root(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/copycat-go/copycat\n") {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatal("repository root not found")
		}
	}
}

// Module makes a temporary module example.com/tmp requiring this
// repository (replaced by its directory), with the repository's go.sum,
// and sets GOFLAGS=-mod=mod so the go command fills in requirements. files
// maps slash paths to contents.
func Module(t testing.TB, files map[string]string) string {
	t.Helper()
	root := Root(t)
	dir := t.TempDir()
	gomod := fmt.Sprintf("module example.com/tmp\n\ngo 1.26\n\nrequire github.com/copycat-go/copycat v0.0.0-00010101000000-000000000000\n\nreplace github.com/copycat-go/copycat => %s\n", root)
	write(t, filepath.Join(dir, "go.mod"), gomod)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "go.sum"), string(sum))
	for p, c := range files {
		write(t, filepath.Join(dir, filepath.FromSlash(p)), c)
	}
	t.Setenv("GOFLAGS", "-mod=mod -buildvcs=false")
	return dir
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Go runs the go command in dir and returns its combined output.
func Go(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// HasPackages reports whether the repository has the given package
// directories (relative slash paths), for tests that need packages being
// written by others.
func HasPackages(t testing.TB, dirs ...string) (missing string, ok bool) {
	root := Root(t)
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(d))); err != nil {
			return d, false
		}
	}
	return "", true
}
