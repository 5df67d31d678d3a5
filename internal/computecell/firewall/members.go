package firewall

import (
	"context"
	"slices"

	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// memberSet is a group's members as the Syncer holds them: the (port,
// address) pairs of sg_members, and how many pairs each address has, so
// that a delta changes the address set by what it adds and removes alone
// (an address two ports have stays while one of them does).
type memberSet struct {
	pairs map[wire.GroupMember]struct{}
	addrs map[string]int
	// sorted is the addresses sorted (nil: to compute, at the next full
	// load of a host's set).
	sorted []string
}

func newMemberSet(ms []wire.GroupMember) memberSet {
	m := memberSet{pairs: make(map[wire.GroupMember]struct{}, len(ms)), addrs: make(map[string]int, len(ms))}
	for _, p := range ms {
		m.add(p)
	}
	return m
}

// add adds a pair; it says whether its address is new to the set.
func (m *memberSet) add(p wire.GroupMember) bool {
	if _, ok := m.pairs[p]; ok {
		return false
	}
	if m.pairs == nil {
		m.pairs, m.addrs = map[wire.GroupMember]struct{}{}, map[string]int{}
	}
	m.pairs[p] = struct{}{}
	m.addrs[p.Address]++
	m.sorted = nil
	return m.addrs[p.Address] == 1
}

// remove removes a pair; it says whether its address left the set.
func (m *memberSet) remove(p wire.GroupMember) bool {
	if _, ok := m.pairs[p]; !ok {
		return false
	}
	delete(m.pairs, p)
	m.sorted = nil
	if m.addrs[p.Address]--; m.addrs[p.Address] > 0 {
		return false
	}
	delete(m.addrs, p.Address)
	return true
}

// apply takes the delta's Removed then its Added, as the cell does; it
// returns the addresses that came into the set and those that left it.
// Applying a delta the set has already taken changes nothing.
func (m *memberSet) apply(d wire.MemberDelta) (added, removed []string) {
	for _, p := range d.Removed {
		if m.remove(p) {
			removed = append(removed, p.Address)
		}
	}
	for _, p := range d.Added {
		if m.add(p) {
			if i := slices.Index(removed, p.Address); i >= 0 {
				removed = slices.Delete(removed, i, i+1) // gone and back
			} else {
				added = append(added, p.Address)
			}
		}
	}
	return added, removed
}

// list is the distinct addresses, sorted.
func (m *memberSet) list() []string {
	if m.sorted == nil && len(m.addrs) > 0 {
		m.sorted = make([]string, 0, len(m.addrs))
		for a := range m.addrs {
			m.sorted = append(m.sorted, a)
		}
		slices.Sort(m.sorted)
	}
	return m.sorted
}

// sameAddrs says whether both sets have the same addresses.
func (m *memberSet) sameAddrs(o *memberSet) bool {
	if len(m.addrs) != len(o.addrs) {
		return false
	}
	for a := range m.addrs {
		if _, ok := o.addrs[a]; !ok {
			return false
		}
	}
	return true
}

// Members applies member deltas the cell's network handlers committed in
// this process (security_group_members), in their order, without a
// statement: a delta of a held group at its FromSeq takes the group to
// ToSeq and updates the address sets of the hosts that use the group by
// what it adds and removes (UpdateAddressSet, when the driver has it); a
// delta at or behind the group's sequence (a repeat, or one a reload has
// read already) changes nothing. Anything else wakes the loop, which
// reloads the groups whose member_seq differs from the held one: a gap
// (a delta the Syncer did not see, such as one another process applied),
// a group wanted and not held yet, a Sync under way (its reads may be
// from before the delta committed).
func (s *Syncer) Members(deltas []wire.MemberDelta) {
	ctx := context.Background()
	s.mu.Lock()
	defer s.mu.Unlock()
	wake := s.syncRunning
	for _, d := range deltas {
		c := s.groups[d.GroupID]
		switch {
		case c == nil:
			wake = wake || s.want[d.GroupID]
			continue
		case c.MemberSeq >= d.ToSeq:
			continue
		case c.MemberSeq != d.FromSeq:
			wake = true
			continue
		}
		added, removed := c.set.apply(d)
		c.MemberSeq = d.ToSeq
		if len(added) == 0 && len(removed) == 0 {
			continue
		}
		from := c.ver
		c.ver++
		s.updateSets(ctx, d.GroupID, from, added, removed)
	}
	if wake {
		s.Wake()
	}
}

// updateSets brings the hosts that use group g from version from to the
// group's version now: by the addresses added and removed where the host
// has the set at from and the driver takes updates, else whole.
func (s *Syncer) updateSets(ctx context.Context, g string, from int64, added, removed []string) {
	up, _ := s.cfg.Driver.(virt.AddressSetUpdater)
	c := s.groups[g]
	for h, hs := range s.hosts {
		if hs.refs[g] == 0 {
			continue
		}
		if cur, ok := hs.sets[g]; ok && cur == from && up != nil {
			err := up.UpdateAddressSet(ctx, h, g, added, removed)
			if err == nil {
				hs.sets[g] = c.ver
				continue
			}
			s.log.Warn("updating an address set; setting it whole", "group", g, "host", h, "err", err)
		}
		s.syncSets(ctx, h)
	}
}
