package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/copycat-go/copycat/runtime/client"
	"github.com/copycat-go/copycat/runtime/raft"
)

func newClusterStatus(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Print the members, the leader and each member's replication progress",
		Long: `Print the cluster's status: a header line (term, leader, commit and applied
indexes, open sessions and resources) and a table of the members with their
type, role and, from the leader, how far each member's log matches the
leader's (MATCH) and how many entries it is behind (LAG). The leader's row
is marked with *.

The leader's view is shown when a leader is known; otherwise the view of the
first member that answered, whose header then reads "leader none". --json
prints the same as one JSON document.`,
		Args: shellArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return clusterRun(cmd, f, func(ctx context.Context, a *client.Admin, out *printer) error {
				st, err := a.Status(ctx)
				if err != nil {
					return clusterExplain("get the cluster's status", f, err)
				}
				if f.json {
					b, err := json.Marshal(clusterStatusJSON(st, f.clusterID))
					if err != nil {
						return fmt.Errorf("cannot encode the status: %w", err)
					}
					fmt.Fprintf(out.w, "%s\n", b)
					return nil
				}
				return writeClusterStatus(out.w, st)
			})
		},
	}
}

// statusJSON is `copycat cluster status --json`: the fields of a member's
// /status (server_http.go), with each member's role and replication
// progress added.
type statusJSON struct {
	ID           uint64             `json:"id"`
	ClusterID    string             `json:"cluster_id"`
	Addr         string             `json:"addr"`
	Role         string             `json:"role"`
	Term         uint64             `json:"term"`
	Leader       *leaderStatus      `json:"leader"`
	CommitIndex  uint64             `json:"commit_index"`
	AppliedIndex uint64             `json:"applied_index"`
	LastIndex    uint64             `json:"last_index"`
	ConfigIndex  uint64             `json:"config_index"`
	Members      []statusMemberJSON `json:"members"`
	Sessions     uint64             `json:"sessions"`
	Resources    uint64             `json:"resources"`
}

type statusMemberJSON struct {
	ID   uint64 `json:"id"`
	Type string `json:"type"`
	Addr string `json:"addr"`
	Role string `json:"role"`
	// The leader's view only (Replication: of the other members).
	MatchIndex  *uint64 `json:"match_index,omitempty"`
	Lag         *uint64 `json:"lag,omitempty"`
	Replication string  `json:"replication,omitempty"`
}

func clusterStatusJSON(st *client.ClusterStatus, clusterID string) statusJSON {
	out := statusJSON{
		ID: st.ID, ClusterID: clusterID, Addr: st.Addr, Role: st.Role.String(), Term: st.Term,
		CommitIndex: st.Commit, AppliedIndex: st.Applied, LastIndex: st.LastIndex, ConfigIndex: st.ConfigIndex,
		Members: []statusMemberJSON{}, Sessions: st.Sessions, Resources: st.Resources,
	}
	if st.Leader != 0 {
		out.Leader = &leaderStatus{ID: st.Leader, Addr: st.LeaderAddr}
	}
	for _, m := range st.Members {
		mj := statusMemberJSON{ID: m.ID, Type: m.Type.String(), Addr: m.Addr, Role: memberRole(st, m)}
		if p := m.Progress; p != nil {
			match, lag := p.Match, lagOf(st, p)
			mj.MatchIndex, mj.Lag = &match, &lag
			if m.ID != st.ID {
				mj.Replication = p.State.String()
			}
		}
		out.Members = append(out.Members, mj)
	}
	return out
}

// writeClusterStatus prints the header line and the members' table.
func writeClusterStatus(w io.Writer, st *client.ClusterStatus) error {
	leader := "none"
	if st.Leader != 0 {
		leader = fmt.Sprintf("%d (%s)", st.Leader, st.LeaderAddr)
	}
	fmt.Fprintf(w, "term %d  leader %s  commit %d  applied %d  sessions %d  resources %d  (as seen by member %d, %s)\n",
		st.Term, leader, st.Commit, st.Applied, st.Sessions, st.Resources, st.ID, st.Role)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tTYPE\tROLE\tMATCH\tLAG\tREPLICATION")
	for _, m := range st.Members {
		id := strconv.FormatUint(m.ID, 10)
		if m.ID == st.Leader {
			id += " *"
		}
		match, lag, repl := "-", "-", "-"
		if p := m.Progress; p != nil {
			match, lag = strconv.FormatUint(p.Match, 10), strconv.FormatUint(lagOf(st, p), 10)
			if m.ID != st.ID { // the leader does not replicate to itself
				repl = p.State.String()
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, m.Addr, m.Type, memberRole(st, m), match, lag, repl)
	}
	return tw.Flush()
}

// memberRole is a member's role as far as the answering member knows it.
func memberRole(st *client.ClusterStatus, m client.MemberStatus) string {
	switch {
	case m.ID == st.Leader:
		return raft.StateLeader.String()
	case m.ID == st.ID:
		return st.Role.String()
	case m.Type == raft.Reserve:
		return "standby"
	case st.Leader != 0:
		return raft.StateFollower.String()
	}
	return "unknown"
}

// lagOf is how many entries of the leader's log a member lacks.
func lagOf(st *client.ClusterStatus, p *client.MemberProgress) uint64 {
	if p.Match >= st.LastIndex {
		return 0
	}
	return st.LastIndex - p.Match
}
