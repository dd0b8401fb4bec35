package transport

import (
	"bytes"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/copycat-go/copycat/runtime/raft"
)

// The module's go.sum cannot build testify's yaml dependency, so these tests
// use the standard library with a few helpers in testify's spirit.

const waitTimeout = 10 * time.Second

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkNoLeaks fails the test if goroutines started during it are still
// running once every later cleanup (closing transports) has run.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(waitTimeout)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Fatalf("goroutine leak: %d running, %d before the test\n%s", runtime.NumGoroutine(), base, buf[:n])
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// collector is a Handler that records what it receives.
type collector struct {
	mu      sync.Mutex
	msgs    []raft.Message
	batches int
}

func (c *collector) handle(msgs []raft.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, msgs...)
	c.batches++
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

func (c *collector) all() []raft.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]raft.Message(nil), c.msgs...)
}

// countFrom counts the messages received from one member.
func (c *collector) countFrom(from uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.msgs {
		if m.From == from {
			n++
		}
	}
	return n
}

// syncBuffer is a goroutine-safe log sink tests can search.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(b.buf.String(), s)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// bufferLogger logs to t and to a buffer the test can search.
func bufferLogger(t *testing.T) (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	h := slog.NewTextHandler(teeWriter{t.Output(), buf}, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(h), buf
}

type teeWriter struct {
	a, b interface{ Write([]byte) (int, error) }
}

func (w teeWriter) Write(p []byte) (int, error) {
	w.a.Write(p)
	return w.b.Write(p)
}

// newTestTCP starts member id of cluster on loopback, closed at cleanup.
func newTestTCP(t *testing.T, cluster string, id uint64, h Handler, mod func(*TCPConfig)) *TCP {
	t.Helper()
	cfg := TCPConfig{
		ClusterID:  cluster,
		MemberID:   id,
		ListenAddr: "127.0.0.1:0",
		Handler:    h,
		BackoffMin: 5 * time.Millisecond,
		BackoffMax: 50 * time.Millisecond,
		Logger:     testLogger(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := NewTCP(cfg)
	if err != nil {
		t.Fatalf("NewTCP(member %d): %v", id, err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("close member %d: %v", id, err)
		}
	})
	return tr
}

// app builds a small append message.
func app(from, to, index uint64) raft.Message {
	return raft.Message{
		Type: raft.MsgApp, From: from, To: to, Term: 1, Index: index,
		Entries: []raft.Entry{{Term: 1, Index: index + 1, Data: []byte(fmt.Sprintf("entry %d", index+1))}},
	}
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
