package hostsched

// Server group policies, as Nova names them.
const (
	PolicyAffinity         = "affinity"
	PolicyAntiAffinity     = "anti-affinity"
	PolicySoftAffinity     = "soft-affinity"
	PolicySoftAntiAffinity = "soft-anti-affinity"
)

// DefaultSoftAffinityWeightMultiplier and DefaultSoftAntiAffinityWeightMultiplier
// are the multipliers Default gives the soft policy weighers. They are twice
// RAMWeigher's, so that a soft policy wins over spreading by free RAM
// whenever it can be honoured: at Nova's 1.0 the two normalised weighers tie
// on a cell of equal hosts (the group's host has a member and less free RAM)
// and soft-affinity would stack only by the luck of the tie-break.
const (
	DefaultSoftAffinityWeightMultiplier     = 2.0
	DefaultSoftAntiAffinityWeightMultiplier = 2.0
)

// Group is the server group the instances of a request join.
type Group struct {
	UUID   string
	Policy string
	// MaxPerHost is how many members an anti-affinity group may have on
	// one host (its max_server_per_host rule); 0 means 1.
	MaxPerHost int
	// Hosts counts the group's members on each host of this cell: the
	// members placed before the request and, while Select runs, the
	// instances of the request it has already placed.
	Hosts map[string]int
}

// perHost is how many members of an anti-affinity group a host may hold.
func (g *Group) perHost() int { return max(g.MaxPerHost, 1) }

// on reports how many of the group's members are on host.
func (g *Group) on(host string) int { return g.Hosts[host] }

// placed reports whether the group has a member on any host.
func (g *Group) placed() bool {
	for _, n := range g.Hosts {
		if n > 0 {
			return true
		}
	}
	return false
}

// add records one more member on host.
func (g *Group) add(host string) {
	if g.Hosts == nil {
		g.Hosts = map[string]int{}
	}
	g.Hosts[host]++
}

func (g *Group) clone() *Group {
	if g == nil {
		return nil
	}
	c := *g
	c.Hosts = make(map[string]int, len(g.Hosts))
	for h, n := range g.Hosts {
		if n > 0 {
			c.Hosts[h] = n
		}
	}
	return &c
}

// hard reports whether the group's policy is a filter (not a preference).
func (g *Group) hard() bool {
	return g != nil && (g.Policy == PolicyAffinity || g.Policy == PolicyAntiAffinity)
}

// ServerGroupAffinityFilter keeps the members of an "affinity" group on one
// host: once the group has a member on a host of this cell, only the hosts
// with members pass. A request with no group, another policy, or a group
// with no member here yet passes every host (Nova's
// ServerGroupAffinityFilter).
type ServerGroupAffinityFilter struct{}

// Passes implements Filter.
func (ServerGroupAffinityFilter) Passes(req *Request, h *Host) bool {
	g := req.Group
	if g == nil || g.Policy != PolicyAffinity || !g.placed() {
		return true
	}
	return g.on(h.Name) > 0
}

// ServerGroupAntiAffinityFilter keeps the members of an "anti-affinity"
// group on distinct hosts: a host with as many members of the group as the
// group's max_server_per_host (1 by default) does not pass (Nova's
// ServerGroupAntiAffinityFilter).
type ServerGroupAntiAffinityFilter struct{}

// Passes implements Filter.
func (ServerGroupAntiAffinityFilter) Passes(req *Request, h *Host) bool {
	g := req.Group
	return g == nil || g.Policy != PolicyAntiAffinity || g.on(h.Name) < g.perHost()
}

// ServerGroupSoftAffinityWeigher scores a host by the number of members of
// a "soft-affinity" group on it, so the group gathers where it can; it
// scores 0 for any other request (Nova's ServerGroupSoftAffinityWeigher).
// It is meant to be normalised.
type ServerGroupSoftAffinityWeigher struct{}

// Weigh implements Weigher.
func (ServerGroupSoftAffinityWeigher) Weigh(req *Request, h *Host) float64 {
	if g := req.Group; g != nil && g.Policy == PolicySoftAffinity {
		return float64(g.on(h.Name))
	}
	return 0
}

// ServerGroupSoftAntiAffinityWeigher scores a host by minus the number of
// members of a "soft-anti-affinity" group on it, so the group spreads where
// it can; it scores 0 for any other request (Nova's
// ServerGroupSoftAntiAffinityWeigher). It is meant to be normalised.
type ServerGroupSoftAntiAffinityWeigher struct{}

// Weigh implements Weigher.
func (ServerGroupSoftAntiAffinityWeigher) Weigh(req *Request, h *Host) float64 {
	if g := req.Group; g != nil && g.Policy == PolicySoftAntiAffinity {
		return -float64(g.on(h.Name))
	}
	return 0
}

// keepPolicy drops the alternates an instance could not fall back to
// without breaking a hard policy, given g as it is once every selection is
// made: for affinity, every host that is not already the group's; for
// anti-affinity, every host the group uses (a member's, or the choice for
// another instance of the request) and every host already offered to an
// earlier instance, so that two instances whose claims fail cannot both
// fall back to one host. Soft policies keep their alternates.
func keepPolicy(sels []Selection, g *Group) {
	if !g.hard() {
		return
	}
	offered := map[string]int{}
	for i := range sels {
		var keep []string
		for _, a := range sels[i].Alternates {
			switch {
			case g.Policy == PolicyAffinity && g.on(a) > 0:
				keep = append(keep, a)
			case g.Policy == PolicyAntiAffinity && g.on(a)+offered[a] < g.perHost():
				offered[a]++
				keep = append(keep, a)
			}
		}
		sels[i].Alternates = keep
	}
}
