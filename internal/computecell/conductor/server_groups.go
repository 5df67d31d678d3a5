package conductor

import (
	"context"
	"log/slog"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// groupRequest is the host scheduler's view of the server group a build
// joins (nil for none): its policy, and how many of its members each host
// of this cell has. The cell database is the truth for this cell: every
// live instance that joined the group here and has a host, whatever build
// it came in, this build's instances claimed in earlier rounds included.
// The hosts the API cell's copy listed for this cell count too, each at
// most as many times as the copy saw (a member the copy knows and this
// cell has is counted once).
//
// The conductor schedules one build at a time and claims as it goes, so
// what the database shows at each round is every placement made here.
func (c *Conductor) groupRequest(ctx context.Context, g *wire.GroupPlacement) (*hostsched.Group, error) {
	if g == nil {
		return nil, nil
	}
	hosts, err := celldb.GroupHosts(ctx, c.cfg.DB, g.UUID)
	if err != nil {
		return nil, err
	}
	seen := map[string]int{}
	for _, h := range g.MemberHosts[c.cfg.Cell] {
		seen[h]++
	}
	for h, n := range seen {
		hosts[h] = max(hosts[h], n)
	}
	return &hostsched.Group{UUID: g.UUID, Policy: g.Policy, MaxPerHost: g.MaxServerPerHost, Hosts: hosts}, nil
}

// pinAffinity is the same-cell constraint a build handed back keeps: for an
// affinity group with a member on a host of this cell (placed before, or
// by this build a moment ago), this cell and no other, so that the parent,
// which will not try this cell again, finds no cell and the instances fail
// with No valid host, as Nova fails a member that cannot join its group's
// host. Otherwise the build's own constraint stays: an anti-affinity (or
// soft) group may take hosts in another cell, which are other hosts.
func (c *Conductor) pinAffinity(ctx context.Context, log *slog.Logger, g *wire.GroupPlacement, sameCell []string) []string {
	if g == nil || g.Policy != hostsched.PolicyAffinity {
		return sameCell
	}
	grp, err := c.groupRequest(ctx, g)
	if err != nil {
		// Keep the group together rather than risk splitting it.
		log.Error("reading the server group's hosts; keeping the build in this cell", "group", g.UUID, "err", err)
		return []string{c.cfg.Cell}
	}
	for _, n := range grp.Hosts {
		if n > 0 {
			return []string{c.cfg.Cell}
		}
	}
	return sameCell
}
