// Package sgsync is the API cell's side of the security groups the compute
// cells enforce (wire/secgroups.go). The API cell owns the groups and
// their rules (netdb); a cell holds the groups its ports are in and the
// groups their rules name as remote. This package
//
//   - answers a cell's security_groups_sync (Handlers.Sync): it records the
//     cell as a holder of the groups it needs and sends, in the same
//     transaction, what is newer than what the cell holds;
//   - pushes a group's rules to its holders in the transaction of every
//     change that raises the group's revision (CreateRules, DeleteRule,
//     UpdateGroup, DeleteGroup);
//   - sends port_update to the cell of a server whose port changed what
//     its enforcement depends on (SendPortUpdate);
//   - flushes the member change log that netdb's writes append to
//     (Flusher): one security_group_members per holder cell, with every
//     delta of its groups, numbered by the groups' member sequences.
//
// Every message is durable, sent in the transaction of its change through
// the cells service's outbox; a cell ignores repeats and late copies by
// revision and sequence, and its periodic complete sync heals the rest.
package sgsync

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Sender sends a durable message from the API cell inside a transaction.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error
}

// state is a group as a cell gets it, rules only.
func state(g *netdb.GroupState) wire.SecurityGroupState {
	s := wire.SecurityGroupState{ID: g.ID, ProjectID: g.ProjectID, Revision: g.RevisionNumber, Stateful: g.Stateful,
		Rules: make([]wire.SecurityGroupRule, 0, len(g.Rules))}
	for _, r := range g.Rules {
		s.Rules = append(s.Rules, wire.SecurityGroupRule{ID: r.ID, Direction: r.Direction, EtherType: r.EtherType, Protocol: r.Protocol,
			PortRangeMin: r.PortRangeMin, PortRangeMax: r.PortRangeMax, RemoteIPPrefix: r.NormalizedCIDR(), RemoteGroupID: r.RemoteGroupID})
	}
	return s
}

// wholeState is a group with its whole member set, at the member sequence
// GroupStates read before (so the set is at least as new as it says).
func wholeState(ctx context.Context, q db.Querier, g *netdb.GroupState) (wire.SecurityGroupState, error) {
	s := state(g)
	ms, err := netdb.GroupMembers(ctx, q, g.ID)
	if err != nil {
		return s, err
	}
	s.HasMembers, s.MemberSeq = true, g.MemberSeq
	s.Members = make([]wire.GroupMember, 0, len(ms))
	for _, m := range ms {
		s.Members = append(s.Members, wire.GroupMember{PortID: m.PortID, Address: m.Address})
	}
	return s, nil
}

// remotes are the groups g's rules name as remote, other than g.
func remotes(g *netdb.GroupState) []string {
	var out []string
	for _, r := range g.Rules {
		if r.RemoteGroupID != "" && r.RemoteGroupID != g.ID && !slices.Contains(out, r.RemoteGroupID) {
			out = append(out, r.RemoteGroupID)
		}
	}
	slices.Sort(out)
	return out
}

// outgoing gathers the security_groups messages of one change, one per
// cell.
type outgoing map[string]*wire.SecurityGroups

func (o outgoing) to(cell string) *wire.SecurityGroups {
	m := o[cell]
	if m == nil {
		m = &wire.SecurityGroups{}
		o[cell] = m
	}
	return m
}

func (o outgoing) send(ctx context.Context, tx *db.Tx, s Sender, requestID string) error {
	for _, cell := range slices.Sorted(maps.Keys(o)) {
		if err := s.Send(ctx, tx, cell, wire.MethodSecurityGroups, requestID, o[cell]); err != nil {
			return fmt.Errorf("send security groups to %s: %w", cell, err)
		}
	}
	return nil
}

// PushGroups sends the rules of the groups ids (as they are now in tx) to
// every cell that holds them, one security_groups per cell. A holder of a
// group whose rules name a remote group it does not hold becomes a holder
// of that one too and gets it whole. Call it in the transaction that
// changed the groups; a nil sender sends nothing.
func PushGroups(ctx context.Context, tx *db.Tx, s Sender, requestID string, ids ...string) error {
	if s == nil || len(ids) == 0 {
		return nil
	}
	out := outgoing{}
	if err := pushGroups(ctx, tx, out, ids); err != nil {
		return err
	}
	return out.send(ctx, tx, s, requestID)
}

// pushGroups adds PushGroups' messages to out.
func pushGroups(ctx context.Context, tx *db.Tx, out outgoing, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	states, err := netdb.GroupStates(ctx, tx, ids)
	if err != nil {
		return err
	}
	holders, err := netdb.GroupHolders(ctx, tx, ids)
	if err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(states)) {
		g := states[id]
		cells := holders[id]
		if len(cells) == 0 {
			continue
		}
		st := state(g)
		for _, c := range cells {
			m := out.to(c)
			m.Groups = append(m.Groups, st)
		}
		if err := extendHolders(ctx, tx, out, g, cells); err != nil {
			return err
		}
	}
	return nil
}

// extendHolders makes each of cells, holders of g, a holder of the remote
// groups g's rules name, and adds each one it did not hold, whole, to its
// message.
func extendHolders(ctx context.Context, tx *db.Tx, out outgoing, g *netdb.GroupState, cells []string) error {
	rs := remotes(g)
	if len(rs) == 0 {
		return nil
	}
	rh, err := netdb.GroupHolders(ctx, tx, rs)
	if err != nil {
		return err
	}
	var rstates map[string]*netdb.GroupState
	for _, r := range rs {
		for _, c := range cells {
			if slices.Contains(rh[r], c) {
				continue
			}
			if rstates == nil {
				if rstates, err = netdb.GroupStates(ctx, tx, rs); err != nil {
					return err
				}
			}
			rg := rstates[r]
			if rg == nil {
				continue
			}
			if err := netdb.AddHolders(ctx, tx, c, []string{r}); err != nil {
				return err
			}
			ws, err := wholeState(ctx, tx, rg)
			if err != nil {
				return err
			}
			m := out.to(c)
			m.Groups = append(m.Groups, ws)
		}
	}
	return nil
}

// CreateRules creates rules of one group (netdb.CreateSecurityGroupRules)
// and pushes the group to its holders, in tx.
func CreateRules(ctx context.Context, tx *db.Tx, s Sender, requestID string, rules []*netdb.SecurityGroupRule, now time.Time) error {
	if err := netdb.CreateSecurityGroupRules(ctx, tx, rules, now); err != nil {
		return err
	}
	if len(rules) == 0 {
		return nil
	}
	return PushGroups(ctx, tx, s, requestID, rules[0].SecurityGroupID)
}

// DeleteRule deletes a rule (netdb.DeleteSecurityGroupRule) and pushes
// its group to its holders, in tx.
func DeleteRule(ctx context.Context, tx *db.Tx, s Sender, requestID, id string, ifMatch *int64, now time.Time) error {
	r, err := netdb.SecurityGroupRuleByID(ctx, tx, id)
	if err != nil {
		return err
	}
	if err := netdb.DeleteSecurityGroupRule(ctx, tx, id, ifMatch, now); err != nil {
		return err
	}
	return PushGroups(ctx, tx, s, requestID, r.SecurityGroupID)
}

// UpdateGroup updates a group (netdb.UpdateSecurityGroup) and, when its
// revision rose, pushes it to its holders, in tx.
func UpdateGroup(ctx context.Context, tx *db.Tx, s Sender, requestID, id string, p netdb.SecurityGroupPatch, ifMatch *int64, now time.Time) (*netdb.SecurityGroup, error) {
	before, err := netdb.SecurityGroupByID(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	g, err := netdb.UpdateSecurityGroup(ctx, tx, id, p, ifMatch, now)
	if err != nil {
		return nil, err
	}
	if g.RevisionNumber != before.RevisionNumber {
		if err := PushGroups(ctx, tx, s, requestID, id); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// DeleteGroup deletes a group (netdb.DeleteSecurityGroup), in tx: its
// holders get Drop and stop being its holders; the groups whose rules
// named it lose those rules and are pushed to their holders (a cell that
// holds both gets one message with both).
func DeleteGroup(ctx context.Context, tx *db.Tx, s Sender, requestID, id string, ifMatch *int64, now time.Time) error {
	others, err := netdb.GroupsNaming(ctx, tx, id)
	if err != nil {
		return err
	}
	if err := netdb.DeleteSecurityGroup(ctx, tx, id, ifMatch, now); err != nil {
		return err
	}
	holders, err := netdb.GroupHolders(ctx, tx, []string{id})
	if err != nil {
		return err
	}
	if err := netdb.DeleteGroupHolders(ctx, tx, id); err != nil {
		return err
	}
	if s == nil {
		return nil
	}
	out := outgoing{}
	for _, c := range holders[id] {
		m := out.to(c)
		m.Drop = append(m.Drop, id)
	}
	if err := pushGroups(ctx, tx, out, others); err != nil {
		return err
	}
	return out.send(ctx, tx, s, requestID)
}
