package sgsync

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Handlers are the API cell's handlers of what the cells send up about
// security groups.
type Handlers struct {
	Sender Sender
	Logger *slog.Logger
}

func (h *Handlers) log() *slog.Logger {
	if h.Logger == nil {
		return slog.Default()
	}
	return h.Logger
}

// Sync is the cast handler of security_groups_sync. The groups the cell
// needs are the wanted ones and the remote groups their rules name (one
// level: a remote group's own rules are not enforced there); a sync that
// is not complete also keeps the groups the cell says it holds. The cell
// is recorded as a holder of each of them that exists and, when the sync
// is complete, stops being a holder of any other. The answer, in the same
// transaction, is one security_groups with each of those groups whose
// revision is newer than the cell's (the group's rules) or whose member
// sequence is (then the whole member set too; a cell that holds no member
// set, sequence 0, gets it), and Drop for the groups named that do not
// exist and, when complete, those held that the cell no longer needs.
// Nothing newer and nothing to drop: no answer. A repeat gets the same
// answer as the first (the cell has not applied it yet) or none (it has),
// and records no holder twice.
func (h *Handlers) Sync(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.SecurityGroupsSync
	if err := json.Unmarshal(env.Payload, &m); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "security_groups_sync: %v", err)
	}
	cell := env.Sender
	if cell == "" || cell == netdb.HolderAPI {
		return wire.Errorf(wire.CodeBadMessage, "security_groups_sync from no cell")
	}
	held := make(map[string]wire.HeldGroup, len(m.Held))
	named := slices.Clone(m.Want)
	for _, hg := range m.Held {
		if hg.ID == "" {
			continue
		}
		held[hg.ID] = hg
		named = append(named, hg.ID)
	}
	named = slices.DeleteFunc(named, func(id string) bool { return id == "" })
	slices.Sort(named)
	named = slices.Compact(named)
	states, err := netdb.GroupStates(ctx, tx, named)
	if err != nil {
		return err
	}
	need := map[string]bool{}
	var more []string
	for _, id := range m.Want {
		g := states[id]
		if g == nil {
			continue
		}
		need[id] = true
		for _, r := range remotes(g) {
			need[r] = true
			if states[r] == nil {
				more = append(more, r)
			}
		}
	}
	if !m.Complete {
		for id := range held {
			if states[id] != nil {
				need[id] = true
			}
		}
	}
	if len(more) > 0 {
		extra, err := netdb.GroupStates(ctx, tx, more)
		if err != nil {
			return err
		}
		for id, g := range extra {
			states[id] = g
		}
	}
	targets := make([]string, 0, len(need))
	for id := range need {
		if states[id] != nil {
			targets = append(targets, id)
		}
	}
	slices.Sort(targets)
	if err := netdb.AddHolders(ctx, tx, cell, targets); err != nil {
		return err
	}
	var answer wire.SecurityGroups
	for _, id := range named {
		if states[id] == nil {
			answer.Drop = append(answer.Drop, id)
		}
	}
	released := 0
	if m.Complete {
		holds, err := netdb.CellHolds(ctx, tx, cell)
		if err != nil {
			return err
		}
		gone := slices.DeleteFunc(holds, func(id string) bool { return need[id] })
		if err := netdb.RemoveHolder(ctx, tx, cell, gone); err != nil {
			return err
		}
		released = len(gone)
		for _, id := range named {
			if _, ok := held[id]; ok && states[id] != nil && !need[id] {
				answer.Drop = append(answer.Drop, id)
			}
		}
	}
	// A group the cell holds at the root's own member sequence, with a
	// member count it gave that is not the root's, has drifted: its whole
	// set goes again, marked Resync (the cell takes it at the same
	// sequence).
	var counted []string
	for _, id := range targets {
		if hg, ok := held[id]; ok && hg.Members != nil && hg.MemberSeq > 0 && hg.MemberSeq == states[id].MemberSeq {
			counted = append(counted, id)
		}
	}
	var counts map[string]int
	if len(counted) > 0 {
		// Not while changes of the group wait in the log: their deltas
		// are still to come, and the counts would differ for that alone.
		pending, err := netdb.GroupsWithPendingChanges(ctx, tx, counted)
		if err != nil {
			return err
		}
		counted = slices.DeleteFunc(counted, func(id string) bool { return pending[id] })
		if counts, err = netdb.GroupMemberCounts(ctx, tx, counted); err != nil {
			return err
		}
	}
	resyncs := 0
	for _, id := range targets {
		g := states[id]
		hg, ok := held[id]
		rules := !ok || g.RevisionNumber > hg.Revision
		members := !ok || hg.MemberSeq == 0 || g.MemberSeq > hg.MemberSeq
		resync := !members && slices.Contains(counted, id) && counts[id] != *hg.Members
		switch {
		case members || resync:
			ws, err := wholeState(ctx, tx, g)
			if err != nil {
				return err
			}
			if resync {
				ws.Resync = true
				resyncs++
				h.log().Warn("a cell's member set of a security group differs from the root's at the same sequence; sent again whole",
					"request_id", env.RequestID, "from", cell, "group", id, "member_seq", g.MemberSeq, "cell_members", *hg.Members, "root_members", counts[id])
			}
			answer.Groups = append(answer.Groups, ws)
		case rules:
			answer.Groups = append(answer.Groups, state(g))
		}
	}
	h.log().Info("security groups sync from a cell", "request_id", env.RequestID, "from", cell, "want", len(m.Want), "held", len(m.Held),
		"complete", m.Complete, "holds", len(targets), "released", released, "sent", len(answer.Groups), "drop", len(answer.Drop), "resyncs", resyncs)
	if len(answer.Groups) == 0 && len(answer.Drop) == 0 {
		return nil
	}
	return h.Sender.Send(ctx, tx, cell, wire.MethodSecurityGroups, env.RequestID, &answer)
}
