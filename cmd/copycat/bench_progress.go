package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progress owns bench's stderr: diagnostics, and a status line rewritten in
// place (with \r) while a phase runs, shown only when asked for (stderr is
// a terminal, or --progress). Every write to stdout and stderr goes through
// it, so that a measurement or a warning never lands in the middle of the
// status line.
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	live bool
	// shown is the length of the status line on screen, 0 if none.
	shown int
}

func newProgress(w io.Writer, live bool) *progress { return &progress{w: w, live: live} }

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// clearLocked erases the status line, if one is shown.
func (p *progress) clearLocked() {
	if p.shown > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.shown))
		p.shown = 0
	}
}

// show replaces the status line with s.
func (p *progress) show(s string) {
	if !p.live {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pad := max(0, p.shown-len(s))
	fmt.Fprintf(p.w, "\r%s%s", s, strings.Repeat(" ", pad))
	p.shown = len(s)
}

// clear erases the status line.
func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
}

// printf writes a diagnostic line to stderr, prefixed "copycat bench: ".
func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	fmt.Fprintf(p.w, "copycat bench: "+format+"\n", args...)
}

// printOut writes a line to out (stdout) without breaking the status line
// (on a terminal, stdout and stderr share the screen).
func (p *progress) printOut(out io.Writer, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	fmt.Fprintln(out, line)
}

// every shows status() as the status line now and every d until the
// returned stop is called, which erases it.
func (p *progress) every(d time.Duration, status func() string) (stop func()) {
	if !p.live {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			p.show("copycat bench: " + status())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		p.clear()
	}
}
