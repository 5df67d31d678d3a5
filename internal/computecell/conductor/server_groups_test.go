package conductor_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

const groupID = "77777777-7777-7777-7777-777777777777"

// groupBuild is a multi-create of n small instances (uuids from first on)
// into a server group of policy.
func groupBuild(n, first int, reservation, policy string) *wire.BuildInstances {
	b := build(0, 0)
	b.Group = &wire.GroupPlacement{UUID: groupID, Policy: policy}
	for i := range n {
		b.Instances = append(b.Instances, wire.InstanceSpec{UUID: uuidN(first + i), Name: fmt.Sprintf("vm-%d", first+i), ProjectID: "p1",
			UserID: "u1", ImageRef: "img", ReservationID: reservation, LaunchIndex: i, CreatedAt: t0})
	}
	return b
}

// hostsOf waits until every instance of b is ACTIVE and returns their hosts.
func (e *cellEnv) hostsOf(t *testing.T, specs []wire.InstanceSpec) []string {
	t.Helper()
	testpoll.Eventually(t, wait, fmt.Sprintf("%d instances ACTIVE", len(specs)), func() (bool, string) {
		for _, s := range specs {
			if in := get(t, e.db, s.UUID); in.VMState != celldb.VMActive {
				return false, fmt.Sprintf("%s is %q", s.UUID, in.VMState)
			}
		}
		return true, ""
	})
	var out []string
	for _, s := range specs {
		out = append(out, get(t, e.db, s.UUID).Host)
	}
	return out
}

// handedBack waits for the n-th build_failed and decodes it.
func (e *cellEnv) handedBack(t *testing.T, n int) wire.BuildFailed {
	t.Helper()
	testpoll.Eventually(t, wait, fmt.Sprintf("%d build_failed", n), func() (bool, string) {
		got := len(e.sent.buildFailed(t))
		return got >= n, fmt.Sprintf("%d sent", got)
	})
	var f wire.BuildFailed
	if err := json.Unmarshal(e.sent.buildFailed(t)[n-1].Payload, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func distinct(hosts []string) bool {
	s := slices.Clone(hosts)
	slices.Sort(s)
	return len(slices.Compact(s)) == len(hosts)
}

func TestAntiAffinityGroupTakesDistinctHosts(t *testing.T) {
	e := newCell(t, cellOpts{hosts: []string{"h1", "h2", "h3", "h4"}})
	e.start(t)
	// The API cell's copy says a member is on h4 already.
	b1 := groupBuild(2, 1, "r-1", hostsched.PolicyAntiAffinity)
	b1.Group.MemberHosts = map[string][]string{cell: {"h4"}, "api!elsewhere": {"h1"}}
	accept(t, e.db, e.cd, "req-1", b1)
	first := e.hostsOf(t, b1.Instances)
	if !distinct(first) || slices.Contains(first, "h4") {
		t.Fatalf("anti-affinity build of 2 with a member on h4 went to %v", first)
	}
	// The stored build context keeps the group.
	if g := get(t, e.db, b1.Instances[0].UUID).Build.Group; g == nil || g.UUID != groupID || g.Policy != hostsched.PolicyAntiAffinity {
		t.Errorf("stored build context group %+v", g)
	}

	// A later request of the same group sees this cell's members without
	// the copy's help (it knows only the one on h4, as if the copy had not
	// heard of the others yet), and two of its instances fit nowhere here.
	b2 := groupBuild(3, 11, "r-2", hostsched.PolicyAntiAffinity)
	b2.Group.MemberHosts = map[string][]string{cell: {"h4"}}
	accept(t, e.db, e.cd, "req-2", b2)
	f := e.handedBack(t, 1)
	placed := slices.DeleteFunc(slices.Clone(b2.Instances), func(s wire.InstanceSpec) bool {
		return slices.ContainsFunc(f.Build.Instances, func(h wire.InstanceSpec) bool { return h.UUID == s.UUID })
	})
	if len(placed) != 1 || len(f.Build.Instances) != 2 {
		t.Fatalf("placed %d and handed back %d of 3, want 1 and 2 (one free host)", len(placed), len(f.Build.Instances))
	}
	second := e.hostsOf(t, placed)
	all := append(slices.Clone(first), second...)
	if !distinct(all) || slices.Contains(all, "h4") {
		t.Errorf("the group's members are on %v, want distinct hosts other than h4", all)
	}
	// Hosts of other cells are other hosts: the build may try another cell.
	if f.Build.Group == nil || f.Build.Group.UUID != groupID || len(f.Build.SameCell) != 0 {
		t.Errorf("handed-back anti-affinity build: group %+v same_cell %v, want the group and no cell pinned", f.Build.Group, f.Build.SameCell)
	}
}

func TestAffinityGroupSharesAHost(t *testing.T) {
	// Room for three small instances per host.
	e := newCell(t, cellOpts{hosts: []string{"h1", "h2", "h3"},
		spec: compute.HostSpec{VCPUs: 3, RAMMB: 8192, DiskGB: 100, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}})
	e.start(t)
	b1 := groupBuild(2, 1, "r-1", hostsched.PolicyAffinity)
	accept(t, e.db, e.cd, "req-1", b1)
	first := e.hostsOf(t, b1.Instances)
	if first[0] != first[1] {
		t.Fatalf("affinity build of 2 went to %v", first)
	}
	// The next request joins them; its second instance does not fit there
	// and goes back pinned to this cell, where the parent will not try
	// again: it fails rather than joining another host.
	b2 := groupBuild(2, 11, "r-2", hostsched.PolicyAffinity)
	accept(t, e.db, e.cd, "req-2", b2)
	f := e.handedBack(t, 1)
	if len(f.Build.Instances) != 1 || !slices.Equal(f.Build.SameCell, []string{cell}) || f.Build.Group == nil {
		t.Fatalf("handed back %d instances with same_cell %v group %+v, want 1 pinned to %s with its group",
			len(f.Build.Instances), f.Build.SameCell, f.Build.Group, cell)
	}
	var joined []wire.InstanceSpec
	for _, s := range b2.Instances {
		if s.UUID != f.Build.Instances[0].UUID {
			joined = append(joined, s)
		}
	}
	if got := e.hostsOf(t, joined); got[0] != first[0] {
		t.Errorf("the second request's member is on %s, want the group's host %s", got[0], first[0])
	}
}

func TestAffinityGroupWithNoMemberHereIsNotPinned(t *testing.T) {
	// Nothing fits: a new affinity group may still try another cell.
	e := newCell(t, cellOpts{hosts: []string{"h1"},
		spec: compute.HostSpec{VCPUs: 1, RAMMB: 512, DiskGB: 100, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}})
	b := groupBuild(2, 1, "r-1", hostsched.PolicyAffinity)
	b.SameCell = []string{"api!region"}
	accept(t, e.db, e.cd, "req-1", b)
	e.start(t)
	f := e.handedBack(t, 1)
	if len(f.Build.Instances) != 2 || !slices.Equal(f.Build.SameCell, []string{"api!region"}) {
		t.Errorf("handed back %d instances with same_cell %v, want both with the build's own constraint", len(f.Build.Instances), f.Build.SameCell)
	}
}

func TestSchedulerIsToldTheGroup(t *testing.T) {
	sched := &fakeScheduler{}
	e := newCell(t, cellOpts{hosts: []string{"h1", "h2"}})
	e.cd = newConductorWith(t, e, sched)
	b := groupBuild(1, 1, "r-1", hostsched.PolicySoftAntiAffinity)
	b.Group.MemberHosts = map[string][]string{cell: {"h2", "h2", "h1"}, "api!other": {"h1"}}
	accept(t, e.db, e.cd, "req-1", b)
	e.start(t)
	testpoll.Eventually(t, wait, "the scheduler asked", func() (bool, string) { return sched.count() > 0, "not asked" })
	sched.mu.Lock()
	req := sched.calls[0]
	sched.mu.Unlock()
	want := &hostsched.Group{UUID: groupID, Policy: hostsched.PolicySoftAntiAffinity, Hosts: map[string]int{"h1": 1, "h2": 2}}
	if req.Group == nil || req.Group.UUID != want.UUID || req.Group.Policy != want.Policy || len(req.Group.Hosts) != 2 ||
		req.Group.Hosts["h1"] != 1 || req.Group.Hosts["h2"] != 2 {
		t.Errorf("scheduler asked with group %+v, want %+v", req.Group, want)
	}
	// A build with no group asks with none.
	sched2 := &fakeScheduler{}
	e2 := newCell(t, cellOpts{hosts: []string{"h1"}})
	e2.cd = newConductorWith(t, e2, sched2)
	accept(t, e2.db, e2.cd, "req-2", build(1, 0))
	e2.start(t)
	testpoll.Eventually(t, wait, "the scheduler asked", func() (bool, string) { return sched2.count() > 0, "not asked" })
	sched2.mu.Lock()
	defer sched2.mu.Unlock()
	if g := sched2.calls[0].Group; g != nil {
		t.Errorf("a build with no group asked with group %+v", g)
	}
}

// newConductorWith is a conductor for e's cell that asks s for hosts.
func newConductorWith(t *testing.T, e *cellEnv, s conductor.HostScheduler) *conductor.Conductor {
	t.Helper()
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: e.db, Sender: e.sent, Scheduler: s, Network: e.network,
		Compute: e.compute, PollInterval: 100 * time.Millisecond, HealInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return cd
}
