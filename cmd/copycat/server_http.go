package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/copycat-go/copycat/runtime/raft"
	"github.com/copycat-go/copycat/runtime/server"
)

// memberStatus is the JSON body of /status.
type memberStatus struct {
	ID           uint64         `json:"id"`
	ClusterID    string         `json:"cluster_id"`
	Addr         string         `json:"addr"`
	Role         string         `json:"role"`
	Term         uint64         `json:"term"`
	Leader       *leaderStatus  `json:"leader"`
	CommitIndex  uint64         `json:"commit_index"`
	AppliedIndex uint64         `json:"applied_index"`
	Members      []memberDetail `json:"members"`
	Sessions     int            `json:"sessions"`
	Resources    int            `json:"resources"`
	Log          *logStatus     `json:"log,omitempty"`
}

type leaderStatus struct {
	ID   uint64 `json:"id"`
	Addr string `json:"addr,omitempty"`
}

type memberDetail struct {
	ID   uint64 `json:"id"`
	Type string `json:"type"`
	Addr string `json:"addr"`
	// MatchIndex is known on the leader only.
	MatchIndex *uint64 `json:"match_index,omitempty"`
}

// logStatus is the log part of /status: the compaction point, cleaning,
// snapshot streams and the segments on disk.
type logStatus struct {
	CompactionIndex uint64          `json:"compaction_index"`
	LiveAtPoint     int             `json:"live_at_compaction_point"`
	ImageBytes      int             `json:"image_bytes"`
	Compactions     int             `json:"compactions"`
	Cleanings       int             `json:"cleanings"`
	LongestPauseUs  int64           `json:"longest_cleaning_pause_us"`
	SnapshotsSent   int             `json:"snapshots_sent"`
	SnapshotsRecv   int             `json:"snapshots_installed"`
	Entries         int64           `json:"entries"`
	Live            int64           `json:"live_entries"`
	Bytes           int64           `json:"bytes"`
	Segments        []segmentStatus `json:"segments"`
}

type segmentStatus struct {
	File    string `json:"file"`
	First   uint64 `json:"first"`
	Last    uint64 `json:"last"`
	Cleaned bool   `json:"cleaned"`
	Entries int64  `json:"entries"`
	Live    int64  `json:"live"`
	Bytes   int64  `json:"bytes"`
}

func logStatusOf(srv *server.Server) *logStatus {
	cs, ss := srv.CompactionStats(), srv.SnapshotStats()
	out := &logStatus{
		CompactionIndex: cs.Point, LiveAtPoint: cs.Live, ImageBytes: cs.ImageBytes,
		Compactions: cs.Compactions, Cleanings: cs.Cleanings, LongestPauseUs: cs.LongestPause.Microseconds(),
		SnapshotsSent: ss.Sent, SnapshotsRecv: ss.Received, Segments: []segmentStatus{},
	}
	u, err := srv.LogUsage()
	if err != nil {
		return out
	}
	out.Entries, out.Live, out.Bytes = u.Entries, u.Live, u.Bytes
	for _, sg := range u.Segments {
		out.Segments = append(out.Segments, segmentStatus{File: filepath.Base(sg.File), First: sg.First, Last: sg.Last,
			Cleaned: sg.Cleaned, Entries: sg.Entries, Live: sg.Live, Bytes: sg.Bytes})
	}
	return out
}

func statusOf(srv *server.Server, clusterID string) memberStatus {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := srv.FullStatus(ctx)
	if err != nil {
		st = srv.Status() // the member is busy or stopping: no progress
	}
	out := memberStatus{
		ID: srv.ID(), ClusterID: clusterID, Addr: srv.Addr(),
		Role: st.SoftState.State.String(), Term: st.HardState.Term,
		CommitIndex: st.HardState.Commit, AppliedIndex: st.Applied,
		Members:  []memberDetail{},
		Sessions: srv.Sessions(), Resources: srv.Resources(),
		Log: logStatusOf(srv),
	}
	if lead := st.SoftState.Lead; lead != 0 {
		out.Leader = &leaderStatus{ID: lead}
		if m, ok := st.Config.Member(lead); ok {
			out.Leader.Addr = m.Addr
		}
	}
	for _, m := range st.Config.Members {
		d := memberDetail{ID: m.ID, Type: m.Type.String(), Addr: m.Addr}
		if p, ok := st.Progress[m.ID]; ok && st.SoftState.State == raft.StateLeader {
			match := p.Match
			d.MatchIndex = &match
		}
		out.Members = append(out.Members, d)
	}
	return out
}

// newStatusHandler serves /health, /status and /metrics for a member.
func newStatusHandler(srv *server.Server, clusterID string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		st := srv.Status()
		if lead := st.SoftState.Lead; lead != 0 {
			fmt.Fprintf(w, "ok: member %d is %s, leader is %d\n", st.ID, st.SoftState.State, lead)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "unavailable: member %d knows no leader\n", st.ID)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(statusOf(srv, clusterID))
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(&memberCollector{srv: srv})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// memberCollector reads the member's state at each scrape.
type memberCollector struct{ srv *server.Server }

var (
	roles    = []raft.StateType{raft.StateFollower, raft.StatePreCandidate, raft.StateCandidate, raft.StateLeader}
	descRole = prometheus.NewDesc("copycat_role",
		"1 for the member's current Raft role, 0 for the others.", []string{"role"}, nil)
	descTerm = prometheus.NewDesc("copycat_term",
		"The member's current Raft term.", nil, nil)
	descLeader = prometheus.NewDesc("copycat_leader_id",
		"ID of the member this one believes leads, 0 if none.", nil, nil)
	descCommit = prometheus.NewDesc("copycat_commit_index",
		"Highest log index known committed.", nil, nil)
	descApplied = prometheus.NewDesc("copycat_applied_index",
		"Highest log index applied to the state machine.", nil, nil)
	descMembers = prometheus.NewDesc("copycat_members",
		"Members in the configuration, by type.", []string{"type"}, nil)
	descSessions = prometheus.NewDesc("copycat_sessions",
		"Open client sessions held by this member.", nil, nil)
	descResources = prometheus.NewDesc("copycat_resources",
		"Resource instances held by this member.", nil, nil)
	descCompaction = prometheus.NewDesc("copycat_log_compaction_index",
		"The log's compaction point: entries at or below it are kept only if live.", nil, nil)
	descLiveAtPoint = prometheus.NewDesc("copycat_log_live_at_compaction_point",
		"Entries at or below the compaction point that still hold state.", nil, nil)
	descLogBytes = prometheus.NewDesc("copycat_log_bytes",
		"Disk space of the log: segments, image and stable store.", nil, nil)
	descCompactions = prometheus.NewDesc("copycat_log_compactions_total",
		"Compaction points made durable by this member.", nil, nil)
	descCleanPause = prometheus.NewDesc("copycat_log_cleaning_longest_pause_seconds",
		"Longest time a cleaning pass held the log's lock (stalling appends and reads).", nil, nil)
	descSnapshots = prometheus.NewDesc("copycat_snapshots_total",
		"Snapshot streams completed, by direction.", []string{"direction"}, nil)
)

func (c *memberCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRole, descTerm, descLeader, descCommit, descApplied, descMembers, descSessions, descResources,
		descCompaction, descLiveAtPoint, descLogBytes, descCompactions, descCleanPause, descSnapshots} {
		ch <- d
	}
}

func (c *memberCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Status()
	for _, r := range roles {
		v := 0.0
		if st.SoftState.State == r {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descRole, prometheus.GaugeValue, v, r.String())
	}
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(st.HardState.Term))
	ch <- prometheus.MustNewConstMetric(descLeader, prometheus.GaugeValue, float64(st.SoftState.Lead))
	ch <- prometheus.MustNewConstMetric(descCommit, prometheus.GaugeValue, float64(st.HardState.Commit))
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(st.Applied))
	counts := map[raft.MemberType]int{}
	for _, m := range st.Config.Members {
		counts[m.Type]++
	}
	for _, t := range []raft.MemberType{raft.Active, raft.Passive, raft.Reserve} {
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(counts[t]), t.String())
	}
	ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(c.srv.Sessions()))
	ch <- prometheus.MustNewConstMetric(descResources, prometheus.GaugeValue, float64(c.srv.Resources()))
	cs, ss := c.srv.CompactionStats(), c.srv.SnapshotStats()
	ch <- prometheus.MustNewConstMetric(descCompaction, prometheus.GaugeValue, float64(cs.Point))
	ch <- prometheus.MustNewConstMetric(descLiveAtPoint, prometheus.GaugeValue, float64(cs.Live))
	ch <- prometheus.MustNewConstMetric(descCompactions, prometheus.CounterValue, float64(cs.Compactions))
	ch <- prometheus.MustNewConstMetric(descCleanPause, prometheus.GaugeValue, cs.LongestPause.Seconds())
	ch <- prometheus.MustNewConstMetric(descSnapshots, prometheus.CounterValue, float64(ss.Sent), "sent")
	ch <- prometheus.MustNewConstMetric(descSnapshots, prometheus.CounterValue, float64(ss.Received), "installed")
	if u, err := c.srv.LogUsage(); err == nil {
		ch <- prometheus.MustNewConstMetric(descLogBytes, prometheus.GaugeValue, float64(u.Bytes))
	}
}
