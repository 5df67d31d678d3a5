package firewall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// The Syncer keeps the driver's filters and address sets of this
// process's hosts in step with the cell's groups and instances.
//
// What it holds, in memory: every group of sg_groups (rules by revision,
// members by sequence); each instance copy on its hosts with its ports
// (NIC and addresses) and the filter last set; per host, the address sets
// set and which groups its instances' rules name.
//
// Where it learns: VMUp (a spawn, an unshelve, a resize's new copy) and
// VMGone (a destroy) from the compute service, at once, without SQL when
// it holds the groups; Members (members.go), the member deltas the cell
// applied in this process, at once, without SQL, updating the hosts'
// address sets by the delta; and one loop that reads sg_state (one SELECT)
// every Interval and on Wake. When members_gen moved, it reloads the
// members of the groups whose member_seq moved (none, when Members gave
// the deltas) and sets those groups' address sets whole on the hosts that
// use them: no filter is set again. When
// rules_gen moved (or at Start), it reloads the groups and the live
// instances of its hosts with their NICs and addresses, and sets the
// filters that changed. A VMUp that names a group it does not hold sets
// the port Pending (nothing let in) and wakes the loop, which loads the
// group (and the remote groups its rules name) by id.
//
// A reload's read of the instances races with VMUp and VMGone: an
// instance up or gone after the read began keeps what VMUp or VMGone
// said (by an epoch), and an instance this process destroyed is not
// brought back by a reload that still finds it live in the database (its
// row goes later in the delete) until a reload finds it gone. A copy
// VMUp gave stays until VMGone, even when a reload does not find it (a
// move's new copy runs before the database places it): every way a copy
// leaves a host (the compute service's Destroy, VMDestroy, the shelve
// operation) calls VMGone. A copy known from the database alone goes when
// a reload does not find it.

// Config configures a Syncer.
type Config struct {
	Cell   string
	DB     *db.DB
	Driver virt.Firewall
	// Hosts are this process's hosts.
	Hosts []string
	// Interval is how often sg_state is read without a wake (default 1s).
	Interval time.Duration
	Logger   *slog.Logger
}

// Syncer programs the driver's firewall of this process's hosts.
type Syncer struct {
	cfg    Config
	log    *slog.Logger
	mine   map[string]bool
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	// syncing serialises Sync.
	syncing sync.Mutex

	// mu guards what follows, and is held while the driver is programmed
	// so that filters and sets are set in the order they were computed.
	mu     sync.Mutex
	groups map[string]*cached
	// rulesGen and membersGen are the generations last loaded (-1: none).
	rulesGen, membersGen int64
	// syncRunning says a Sync is under way (Members then wakes the loop
	// again: the Sync's reads may be from before the delta).
	syncRunning bool
	// want are groups named by a VM that are not in groups.
	want  map[string]bool
	vms   map[vmKey]*vm
	gone  map[vmKey]bool
	epoch int64
	hosts map[string]*hostState
}

// cached is a group held in memory; ver counts changes of its member
// addresses. Its members are in set (Group.Members is not kept).
type cached struct {
	Group
	ver int64
	set memberSet
}

type vmKey struct{ host, uuid string }

// vm is an instance copy on one of the hosts.
type vm struct {
	ports  []port
	filter []virt.PortFilter // as last set (nil: none)
	refs   []string          // remote groups its filter names
	epoch  int64
	// up says VMUp gave it: a reload that does not find it live in the
	// database keeps it (the database may not say so yet).
	up bool
}

// port is a NIC of an instance with its addresses; the NIC's PortID is
// the port's (derived by the cell for a port it made).
type port struct {
	nic   wire.NIC
	addrs []string
}

// hostState is what a host has of the address sets: the version of each
// set it was given, and how many of its instances name each group.
type hostState struct {
	sets map[string]int64
	refs map[string]int
	vms  map[string]*vm
}

// New validates the configuration.
func New(cfg Config) (*Syncer, error) {
	if cfg.DB == nil || cfg.Driver == nil {
		return nil, errors.New("firewall: database and driver are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Syncer{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "firewall"), mine: map[string]bool{},
		wake: make(chan struct{}, 1), groups: map[string]*cached{}, rulesGen: -1, membersGen: -1,
		want: map[string]bool{}, vms: map[vmKey]*vm{}, gone: map[vmKey]bool{}, hosts: map[string]*hostState{}}
	for _, h := range cfg.Hosts {
		s.mine[h] = true
	}
	return s, nil
}

// Start loads the groups and the instances of the hosts and programs the
// driver with them (what a restarted process needs), then runs the loop.
func (s *Syncer) Start(ctx context.Context) error {
	if err := s.Sync(ctx); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			case <-s.wake:
			}
			if err := s.Sync(lctx); err != nil && lctx.Err() == nil {
				s.log.Error("firewall sync", "err", err)
			}
		}
	}()
	return nil
}

// Shutdown stops the loop and waits for it.
func (s *Syncer) Shutdown(context.Context) error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	return nil
}

// Wake makes the loop read sg_state now (the cell's network handlers
// call it after a change of the groups commits, in this process).
func (s *Syncer) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// VMUp records an instance copy running on host with its NICs and
// addresses, and sets its filter (again, even if unchanged: the driver
// may have lost it with the instance). NICs with PortRevision 0 come from
// an older API cell: nothing is enforced on them.
func (s *Syncer) VMUp(ctx context.Context, host, uuid string, nics []wire.NIC, addrs []wire.Address) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := vmKey{host, uuid}
	delete(s.gone, k)
	s.epoch++
	v := s.vms[k]
	if v == nil {
		v = &vm{}
		s.vms[k] = v
		s.host(host).vms[uuid] = v
	}
	v.ports, v.epoch, v.up = toPorts(nics, addrs), s.epoch, true
	s.program(ctx, k, v, true)
	s.syncSets(ctx, host)
	if len(s.want) > 0 {
		s.Wake()
	}
}

// VMGone forgets an instance copy the driver destroyed, and its filter.
func (s *Syncer) VMGone(ctx context.Context, host, uuid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := vmKey{host, uuid}
	s.epoch++
	s.gone[k] = true
	s.drop(ctx, k, true)
}

// drop forgets a VM; clear removes its filter from the driver too.
func (s *Syncer) drop(ctx context.Context, k vmKey, clear bool) {
	v := s.vms[k]
	if v == nil {
		return
	}
	if clear && v.filter != nil {
		if err := s.cfg.Driver.SetFilter(ctx, k.host, k.uuid, nil); err != nil {
			s.log.Warn("removing a filter", "instance", k.uuid, "host", k.host, "err", err)
		}
	}
	s.setRefs(k.host, v, nil)
	delete(s.vms, k)
	delete(s.host(k.host).vms, k.uuid)
	s.syncSets(ctx, k.host)
}

func (s *Syncer) host(h string) *hostState {
	hs := s.hosts[h]
	if hs == nil {
		hs = &hostState{sets: map[string]int64{}, refs: map[string]int{}, vms: map[string]*vm{}}
		s.hosts[h] = hs
	}
	return hs
}

// groupsView is the groups as Effective takes them; groups not held
// (and not known at all) are recorded in want.
func (s *Syncer) view(v *vm) map[string]Group {
	out := map[string]Group{}
	for _, p := range v.ports {
		for _, id := range p.nic.SecurityGroups {
			g, ok := s.groups[id]
			if !ok {
				s.want[id] = true
				continue
			}
			out[id] = g.Group
			for _, r := range g.Rules {
				if r.RemoteGroupID != "" && s.groups[r.RemoteGroupID] == nil {
					s.want[r.RemoteGroupID] = true
				}
			}
		}
	}
	return out
}

// filterOf is the VM's filter now: its ports with a PortRevision (nil
// when it has none).
func (s *Syncer) filterOf(v *vm) []virt.PortFilter {
	var out []virt.PortFilter
	var gs map[string]Group
	for _, p := range v.ports {
		if p.nic.PortRevision == 0 {
			continue
		}
		if gs == nil {
			gs = s.view(v)
		}
		out = append(out, Effective(p.nic, p.addrs, gs))
	}
	return out
}

// program computes the VM's filter and sets it when it changed (or
// always, with force).
func (s *Syncer) program(ctx context.Context, k vmKey, v *vm, force bool) {
	f := s.filterOf(v)
	if !force && reflect.DeepEqual(f, v.filter) {
		return
	}
	if f == nil && v.filter == nil {
		return
	}
	if err := s.cfg.Driver.SetFilter(ctx, k.host, k.uuid, f); err != nil {
		s.log.Warn("setting a filter", "instance", k.uuid, "host", k.host, "err", err)
		v.filter = []virt.PortFilter{} // differs from any filter: set again next time
		return
	}
	v.filter = f
	s.setRefs(k.host, v, remoteGroups(f))
}

// setRefs replaces the remote groups the VM's filter names in its host's
// counts.
func (s *Syncer) setRefs(host string, v *vm, refs []string) {
	hs := s.host(host)
	for _, g := range v.refs {
		if hs.refs[g]--; hs.refs[g] <= 0 {
			delete(hs.refs, g)
		}
	}
	for _, g := range refs {
		hs.refs[g]++
	}
	v.refs = refs
}

func remoteGroups(f []virt.PortFilter) []string {
	var out []string
	for _, p := range f {
		for _, r := range p.Rules {
			if r.RemoteGroupID != "" && !slices.Contains(out, r.RemoteGroupID) {
				out = append(out, r.RemoteGroupID)
			}
		}
	}
	return out
}

// syncSets gives the host the address set of each group its instances
// name at the version held, and removes those they name no more.
func (s *Syncer) syncSets(ctx context.Context, host string) {
	hs := s.host(host)
	for g := range hs.refs {
		var ver int64
		var members []string
		if c := s.groups[g]; c != nil {
			ver, members = c.ver, c.set.list()
		}
		if cur, ok := hs.sets[g]; ok && cur == ver {
			continue
		}
		if err := s.cfg.Driver.SetAddressSet(ctx, host, g, members); err != nil {
			s.log.Warn("setting an address set", "group", g, "host", host, "err", err)
			continue
		}
		hs.sets[g] = ver
	}
	for g := range hs.sets {
		if hs.refs[g] > 0 {
			continue
		}
		if err := s.cfg.Driver.SetAddressSet(ctx, host, g, nil); err != nil {
			s.log.Warn("removing an address set", "group", g, "host", host, "err", err)
			continue
		}
		delete(hs.sets, g)
	}
	if len(hs.sets) == 0 && len(hs.refs) == 0 && len(hs.vms) == 0 {
		delete(s.hosts, host)
	}
}

// Sync is one round of the loop: it reads sg_state and loads and
// programs what changed, and the groups VMUp found missing.
func (s *Syncer) Sync(ctx context.Context) error {
	s.syncing.Lock()
	defer s.syncing.Unlock()
	s.mu.Lock()
	s.syncRunning = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.syncRunning = false
		s.mu.Unlock()
	}()
	var rg, mg int64
	if err := s.cfg.DB.QueryRow(ctx, `SELECT rules_gen, members_gen FROM sg_state WHERE id = 1`).Scan(&rg, &mg); err != nil {
		return fmt.Errorf("firewall: read sg_state: %w", err)
	}
	s.mu.Lock()
	rulesMoved, membersMoved := rg != s.rulesGen, mg != s.membersGen
	want := make([]string, 0, len(s.want))
	for id := range s.want {
		want = append(want, id)
	}
	start := s.epoch
	s.mu.Unlock()
	switch {
	case rulesMoved:
		return s.reload(ctx, rg, mg, start)
	case membersMoved:
		if err := s.reloadMembers(ctx, mg); err != nil {
			return err
		}
	}
	if len(want) > 0 {
		return s.loadWanted(ctx, want)
	}
	return nil
}

// reload loads every group and the live instances of the hosts, and sets
// the filters that changed and the sets of the groups that did.
func (s *Syncer) reload(ctx context.Context, rg, mg, start int64) error {
	rows, err := s.readGroups(ctx, "")
	if err != nil {
		return err
	}
	s.mu.Lock()
	var stale []string
	for _, g := range rows {
		if c := s.groups[g.ID]; c == nil || c.MemberSeq != g.MemberSeq || c.MemberEpoch != g.MemberEpoch {
			stale = append(stale, g.ID)
		}
	}
	s.mu.Unlock()
	members, err := s.readMembers(ctx, stale)
	if err != nil {
		return err
	}
	vms, err := s.readVMs(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	groups := make(map[string]*cached, len(rows))
	for _, g := range rows {
		c := s.groups[g.ID]
		if c == nil {
			c = &cached{}
		}
		n := &cached{Group: g, ver: c.ver}
		if slices.Contains(stale, g.ID) {
			n.set = newMemberSet(members[g.ID])
			if !n.set.sameAddrs(&c.set) || s.groups[g.ID] == nil {
				n.ver++
			}
		} else {
			n.set = c.set
		}
		groups[g.ID] = n
	}
	s.groups = groups
	s.want = map[string]bool{}
	for k, ports := range vms {
		if s.gone[k] {
			continue
		}
		v := s.vms[k]
		if v != nil && v.epoch > start {
			continue
		}
		if v == nil {
			v = &vm{}
			s.vms[k] = v
			s.host(k.host).vms[k.uuid] = v
		}
		v.ports = ports
	}
	for k, v := range s.vms {
		if _, ok := vms[k]; !ok && v.epoch <= start && !v.up {
			s.drop(ctx, k, true)
		}
	}
	for k := range s.gone {
		if _, ok := vms[k]; !ok {
			delete(s.gone, k)
		}
	}
	for k, v := range s.vms {
		s.program(ctx, k, v, false)
	}
	for h := range s.hosts {
		s.syncSets(ctx, h)
	}
	s.rulesGen, s.membersGen = rg, mg
	if len(s.want) > 0 {
		s.Wake()
	}
	return nil
}

// reloadMembers loads the members of the groups whose member_seq moved
// and sets their address sets on the hosts that name them.
func (s *Syncer) reloadMembers(ctx context.Context, mg int64) error {
	seqs, err := db.Collect(ctx, s.cfg.DB, func(r db.Scanner) (Group, error) {
		var g Group
		return g, r.Scan(&g.ID, &g.MemberSeq, &g.MemberEpoch)
	}, `SELECT id, member_seq, member_epoch FROM sg_groups`)
	if err != nil {
		return fmt.Errorf("firewall: read member sequences: %w", err)
	}
	s.mu.Lock()
	var stale []string
	for _, g := range seqs {
		if c := s.groups[g.ID]; c != nil && (c.MemberSeq != g.MemberSeq || c.MemberEpoch != g.MemberEpoch) {
			stale = append(stale, g.ID)
		}
	}
	s.mu.Unlock()
	members, err := s.readMembers(ctx, stale)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range seqs {
		c := s.groups[g.ID]
		if c == nil || !slices.Contains(stale, g.ID) {
			continue
		}
		n := *c
		n.MemberSeq, n.MemberEpoch, n.set = g.MemberSeq, g.MemberEpoch, newMemberSet(members[g.ID])
		if !n.set.sameAddrs(&c.set) {
			n.ver++
		}
		s.groups[g.ID] = &n
	}
	for h, hs := range s.hosts {
		for _, g := range stale {
			if hs.refs[g] > 0 {
				s.syncSets(ctx, h)
				break
			}
		}
	}
	s.membersGen = mg
	return nil
}

// loadWanted loads groups VMUp found missing, and the remote groups their
// rules name, and programs the VMs in them. A group not in sg_groups at
// all is held as not come (revision 0) until a reload finds it.
func (s *Syncer) loadWanted(ctx context.Context, want []string) error {
	var loaded []Group
	sets := map[string]memberSet{}
	for round := 0; len(want) > 0 && round < 2; round++ {
		rows, err := s.readGroups(ctx, "id IN ("+placeholders(len(want))+")", anys(want)...)
		if err != nil {
			return err
		}
		members, err := s.readMembers(ctx, want)
		if err != nil {
			return err
		}
		found := map[string]bool{}
		var next []string
		for _, g := range rows {
			sets[g.ID] = newMemberSet(members[g.ID])
			loaded = append(loaded, g)
			found[g.ID] = true
			for _, r := range g.Rules {
				if r.RemoteGroupID != "" && !slices.Contains(want, r.RemoteGroupID) && !slices.Contains(next, r.RemoteGroupID) {
					next = append(next, r.RemoteGroupID)
				}
			}
		}
		for _, id := range want {
			if !found[id] {
				loaded = append(loaded, Group{ID: id})
			}
		}
		s.mu.Lock()
		want = slices.DeleteFunc(next, func(id string) bool { return s.groups[id] != nil })
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range loaded {
		if s.groups[g.ID] == nil { // a reload meanwhile has it already
			s.groups[g.ID] = &cached{Group: g, ver: 1, set: sets[g.ID]}
		}
		delete(s.want, g.ID)
	}
	for k, v := range s.vms {
		s.program(ctx, k, v, false)
	}
	for h := range s.hosts {
		s.syncSets(ctx, h)
	}
	if len(s.want) > 0 {
		s.Wake()
	}
	return nil
}

// readGroups reads the groups (where, if given, is a condition).
func (s *Syncer) readGroups(ctx context.Context, where string, args ...any) ([]Group, error) {
	q := `SELECT id, revision, member_seq, member_epoch, stateful, rules FROM sg_groups`
	if where != "" {
		q += ` WHERE ` + where
	}
	gs, err := db.Collect(ctx, s.cfg.DB, func(r db.Scanner) (Group, error) {
		var g Group
		var stateful int
		var rules string
		if err := r.Scan(&g.ID, &g.Revision, &g.MemberSeq, &g.MemberEpoch, &stateful, &rules); err != nil {
			return g, err
		}
		g.Stateful = stateful != 0
		if err := json.Unmarshal([]byte(rules), &g.Rules); err != nil {
			s.log.Error("a group's rules are not readable: the group matches nothing", "group", g.ID, "err", err)
			g.Rules = nil
		}
		return g, nil
	}, q, args...)
	if err != nil {
		return nil, fmt.Errorf("firewall: read groups: %w", err)
	}
	return gs, nil
}

// readMembers reads the members (port and address) of the groups.
func (s *Syncer) readMembers(ctx context.Context, ids []string) (map[string][]wire.GroupMember, error) {
	out := map[string][]wire.GroupMember{}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		rows, err := db.Collect(ctx, s.cfg.DB, func(r db.Scanner) ([3]string, error) {
			var m [3]string
			return m, r.Scan(&m[0], &m[1], &m[2])
		}, `SELECT group_id, port_id, address FROM sg_members WHERE group_id IN (`+placeholders(len(chunk))+`)`, anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("firewall: read members: %w", err)
		}
		for _, m := range rows {
			out[m[0]] = append(out[m[0]], wire.GroupMember{PortID: m[1], Address: m[2]})
		}
	}
	return out, nil
}

// readVMs reads the instance copies on the hosts that run (every live
// instance on its host but those building or offloaded, and the source
// copy of a resize waiting for confirm or revert) with their ports.
func (s *Syncer) readVMs(ctx context.Context) (map[vmKey][]port, error) {
	type row struct {
		uuid, host, build string
	}
	rows, err := db.Collect(ctx, s.cfg.DB, func(r db.Scanner) (row, error) {
		var x row
		return x, r.Scan(&x.uuid, &x.host, &x.build)
	}, `SELECT uuid, host, build FROM instances WHERE deleted = 0 AND host <> '' AND vm_state NOT IN (?, ?)
		UNION ALL SELECT m.instance_uuid, m.source_host, i.build FROM migrations m JOIN instances i ON i.uuid = m.instance_uuid
		WHERE m.status = 'finished' AND i.deleted = 0`, vmstate.ShelvedOffloaded, vmstate.Building)
	if err != nil {
		return nil, fmt.Errorf("firewall: read instances: %w", err)
	}
	nics := map[string][]wire.NIC{}
	var keys []vmKey
	for _, x := range rows {
		if !s.mine[x.host] {
			continue
		}
		keys = append(keys, vmKey{x.host, x.uuid})
		if _, ok := nics[x.uuid]; ok {
			continue
		}
		var b celldb.BuildContext
		if err := json.Unmarshal([]byte(x.build), &b); err != nil {
			s.log.Warn("an instance's NICs are not readable", "instance", x.uuid, "err", err)
		}
		nics[x.uuid] = b.Enforced()
	}
	addrs := map[string][]wire.Address{}
	if len(keys) > 0 {
		type addr struct {
			uuid string
			wire.Address
		}
		as, err := db.Collect(ctx, s.cfg.DB, func(r db.Scanner) (addr, error) {
			var a addr
			return a, r.Scan(&a.uuid, &a.Addr, &a.PortID, &a.Network, &a.NetworkID)
		}, `SELECT f.instance_uuid, f.address, f.port_id, f.network, f.network_id FROM fixed_ips f JOIN instances i ON i.uuid = f.instance_uuid
			WHERE i.deleted = 0 AND i.host <> '' ORDER BY f.instance_uuid, f.nic, f.address_int`)
		if err != nil {
			return nil, fmt.Errorf("firewall: read addresses: %w", err)
		}
		for _, a := range as {
			if _, ok := nics[a.uuid]; ok {
				addrs[a.uuid] = append(addrs[a.uuid], a.Address)
			}
		}
	}
	out := make(map[vmKey][]port, len(keys))
	for _, k := range keys {
		out[k] = toPorts(nics[k.uuid], addrs[k.uuid])
	}
	return out, nil
}

// toPorts gives each NIC its addresses: those of its port, or for a NIC
// whose port the cell made (no PortID), the first address left on its
// network and the port the cell made for it.
func toPorts(nics []wire.NIC, addrs []wire.Address) []port {
	named := map[string]bool{}
	for _, n := range nics {
		if n.PortID != "" {
			named[n.PortID] = true
		}
	}
	used := make([]bool, len(addrs))
	out := make([]port, 0, len(nics))
	for _, n := range nics {
		p := port{nic: n}
		if n.PortID == "" {
			for i, a := range addrs {
				if used[i] || named[a.PortID] || a.PortID == "" {
					continue
				}
				if (n.NetworkID != "" && a.NetworkID == n.NetworkID) || (n.NetworkName != "" && a.Network == n.NetworkName) ||
					(n.NetworkID == "" && n.NetworkName == "") {
					p.nic.PortID = a.PortID
					named[a.PortID] = true
					break
				}
			}
		}
		if p.nic.PortID != "" {
			for i, a := range addrs {
				if a.PortID == p.nic.PortID {
					p.addrs = append(p.addrs, a.Addr)
					used[i] = true
				}
			}
		}
		out = append(out, p)
	}
	return out
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
