package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/raft"
)

// The cluster `copycat bench` starts when it is given no --members: this
// binary run as `copycat server` three times, as separate processes on
// loopback with bolt logs and fsync on, the way an operator runs members
// (and the way the peers' harness runs etcd).

const (
	// benchLeaderTimeout bounds the wait for the new cluster's first leader.
	benchLeaderTimeout = 30 * time.Second
	// benchStopTimeout is how long a member may take to stop after SIGTERM
	// (a leader first hands leadership over) before it is killed.
	benchStopTimeout = 15 * time.Second
)

// benchCluster is the running own cluster.
type benchCluster struct {
	dir     string
	keep    bool
	addrs   []string
	members []*benchMember
	leader  uint64
	prog    *progress
}

// benchMember is one member process.
type benchMember struct {
	id   uint64
	cmd  *exec.Cmd
	log  *os.File // its stdout and stderr
	done chan struct{}
	err  error // how it exited; set before done closes
}

func (m *benchMember) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// startBenchCluster starts three members in a new temporary directory and
// waits until one leads. On failure it stops what it started.
func startBenchCluster(ctx context.Context, prog *progress, clusterID string, keep bool) (_ *benchCluster, err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find this program's binary to run the members: %w", err)
	}
	dir, err := os.MkdirTemp("", "copycat-bench-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a data directory for the members: %w", err)
	}
	c := &benchCluster{dir: dir, keep: keep, prog: prog}
	defer func() {
		if err != nil {
			if serr := c.stop(); serr != nil {
				prog.printf("%v", serr)
			}
		}
	}()
	if c.addrs, err = freeAddrs(3); err != nil {
		return nil, err
	}
	var boot []string
	for i, a := range c.addrs {
		boot = append(boot, fmt.Sprintf("%d=%s", i+1, a))
	}
	var pids []string
	for i, addr := range c.addrs {
		id := uint64(i + 1)
		m, err := startBenchMember(exe, dir, id, addr, strings.Join(boot, ","), clusterID)
		if err != nil {
			return nil, err
		}
		c.members = append(c.members, m)
		pids = append(pids, fmt.Sprint(m.cmd.Process.Pid))
	}
	prog.printf("started 3 members (pids %s) on %s with data in %s (fsync on)", strings.Join(pids, ","), strings.Join(c.addrs, ","), dir)
	if c.leader, err = c.waitLeader(ctx, clusterID); err != nil {
		return nil, err
	}
	return c, nil
}

// startBenchMember starts `copycat server` as member id, its output to a
// log file in dir.
func startBenchMember(exe, dir string, id uint64, addr, boot, clusterID string) (*benchMember, error) {
	logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("member-%d.log", id)))
	if err != nil {
		return nil, fmt.Errorf("cannot create member %d's log file: %w", id, err)
	}
	cmd := exec.Command(exe, "server", "--id", fmt.Sprint(id), "--listen", addr,
		"--data", filepath.Join(dir, fmt.Sprintf("member-%d", id)), "--bootstrap", boot, "--cluster-id", clusterID)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("cannot start member %d (%s server): %w", id, exe, err)
	}
	m := &benchMember{id: id, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		m.err = cmd.Wait()
		close(m.done)
	}()
	return m, nil
}

// waitLeader asks the members for their status until one leads; it fails
// at once if a member exits meanwhile.
func (c *benchCluster) waitLeader(ctx context.Context, clusterID string) (uint64, error) {
	c.prog.show("copycat bench: waiting for the members to elect a leader")
	defer c.prog.clear()
	ctx, cancel := context.WithTimeout(ctx, benchLeaderTimeout)
	defer cancel()
	ctx, exited := context.WithCancelCause(ctx)
	defer exited(nil)
	for _, m := range c.members {
		go func() {
			select {
			case <-m.done:
				exited(fmt.Errorf("member %d exited (%v) before the cluster elected a leader; its log ends with: %s", m.id, m.err, c.lastLogLine(m)))
			case <-ctx.Done():
			}
		}()
	}
	a, err := client.DialAdmin(ctx, c.addrs, client.WithClusterID(clusterID),
		client.WithLogger(slog.New(slog.DiscardHandler)), client.WithBackoff(20*time.Millisecond, 200*time.Millisecond))
	if err == nil {
		defer a.Close()
		for ctx.Err() == nil {
			if st, err := a.Status(ctx); err == nil && st.Role == raft.StateLeader {
				return st.ID, nil
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	} else if ctx.Err() == nil {
		return 0, fmt.Errorf("cannot reach the members: %w", err)
	}
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, context.DeadlineExceeded):
		return 0, fmt.Errorf("the members elected no leader within %v (--keep keeps their logs)", benchLeaderTimeout)
	case errors.Is(cause, context.Canceled):
		return 0, errors.New("interrupted while the members were starting")
	default:
		return 0, cause
	}
}

func (c *benchCluster) exitedMember() *benchMember {
	for _, m := range c.members {
		if m.exited() {
			return m
		}
	}
	return nil
}

// lastLogLine returns the last line member m logged, for an error message.
func (c *benchCluster) lastLogLine(m *benchMember) string {
	b, err := os.ReadFile(m.log.Name())
	if err != nil {
		return "(no log)"
	}
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	if len(b) == 0 {
		return "(nothing)"
	}
	return string(b)
}

// stop sends SIGTERM to every member still running, kills those that have
// not exited benchStopTimeout later, and removes the directory unless
// keep. It reports members that had to be killed or exited with an error.
func (c *benchCluster) stop() error {
	var (
		mu       sync.Mutex
		problems []string
		wg       sync.WaitGroup
	)
	for _, m := range c.members {
		wg.Go(func() {
			problem := ""
			if !m.exited() {
				_ = m.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-m.done:
				case <-time.After(benchStopTimeout):
					_ = m.cmd.Process.Kill()
					<-m.done
					problem = fmt.Sprintf("member %d did not stop within %v of SIGTERM and was killed", m.id, benchStopTimeout)
				}
			}
			if problem == "" && m.err != nil {
				problem = fmt.Sprintf("member %d exited with %v (%s)", m.id, m.err, c.lastLogLine(m))
			}
			m.log.Close()
			if problem != "" {
				mu.Lock()
				problems = append(problems, problem)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if c.keep {
		c.prog.printf("data and member logs kept in %s", c.dir)
	} else if err := os.RemoveAll(c.dir); err != nil {
		problems = append(problems, fmt.Sprintf("cannot remove %s: %v", c.dir, err))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
