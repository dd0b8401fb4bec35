package shapes

import (
	"encoding/json"
	"io"

	"github.com/copycat-go/copycat/runtime"
)

// Log has its own Snapshot and Restore, and lives in a second file.
//
//copycat:resource
type Log struct {
	lines []string
}

// Append adds a line.
//
//copycat:command
func (l *Log) Append(line string) int {
	l.lines = append(l.lines, line)
	return len(l.lines)
}

// Lines returns every line, read from any member.
//
//copycat:query consistency=sequential
func (l *Log) Lines() []string { return l.lines }

// Snapshot writes the lines as JSON.
func (l *Log) Snapshot(w io.Writer) error { return json.NewEncoder(w).Encode(l.lines) }

// Restore reads them back.
func (l *Log) Restore(r io.Reader) error { return json.NewDecoder(r).Decode(&l.lines) }

// Init is the Init hook.
func (l *Log) Init(runtime.Context) {}

// Grouped declarations carry markers on their specs.
type (
	// Appended is published on every append.
	//
	//copycat:event code=9
	Appended struct {
		Line string
	}

	// NotAnEvent is a plain type.
	NotAnEvent struct{}
)
