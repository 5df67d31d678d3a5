package hostsched

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

// weigherFunc adapts a function to Weigher.
type weigherFunc func(*Request, *Host) float64

func (f weigherFunc) Weigh(req *Request, h *Host) float64 { return f(req, h) }

// byName scores hosts from a table.
func byName(scores map[string]float64) weigherFunc {
	return func(_ *Request, h *Host) float64 { return scores[h.Name] }
}

// host returns an up, enabled host in zone "az1".
func host(name string, vcpus int, ramMB, diskGB int64) Host {
	return Host{
		Name: name, AvailabilityZone: "az1", Up: true, Enabled: true,
		TotalVCPUs: vcpus, TotalRAMMB: ramMB, TotalDiskGB: diskGB,
	}
}

// sel is shorthand for a Selection.
func sel(h string, alts ...string) Selection { return Selection{Host: h, Alternates: alts} }

func TestSelect(t *testing.T) {
	small := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}
	stack := &Scheduler{
		Filters:  Default().Filters,
		Weighers: []WeighSpec{{Weigher: RAMWeigher{}, Multiplier: -1, Normalise: true}},
	}
	tests := []struct {
		name  string
		s     *Scheduler
		req   Request
		hosts []Host
		want  []Selection
	}{
		{
			name:  "one instance to the most free RAM",
			s:     Default(),
			req:   Request{Flavor: small, NumInstances: 1},
			hosts: []Host{host("a", 8, 4096, 100), host("b", 8, 8192, 100), host("c", 8, 6144, 100)},
			want:  []Selection{sel("b", "c", "a")},
		},
		{
			name:  "zero instances means one",
			s:     Default(),
			req:   Request{Flavor: small},
			hosts: []Host{host("a", 8, 4096, 100)},
			want:  []Selection{sel("a")},
		},
		{
			name: "spread consumes RAM between instances",
			s:    Default(),
			req:  Request{Flavor: capacity.Flavor{VCPUs: 1, RAMMB: 2048, DiskGB: 1}, NumInstances: 4},
			// Free RAM: a 8192, b 6144. a→6144 (tie, a wins on name), a→4096, b→4096, a.
			hosts: []Host{host("b", 8, 6144, 100), host("a", 8, 8192, 100)},
			want:  []Selection{sel("a", "b"), sel("a", "b"), sel("b", "a"), sel("a", "b")},
		},
		{
			name: "stack fills the fullest host first",
			s:    stack,
			req:  Request{Flavor: capacity.Flavor{VCPUs: 1, RAMMB: 2048, DiskGB: 1}, NumInstances: 5},
			// b has least free RAM (4096): takes 2, then a (8192) takes 3.
			hosts: []Host{host("a", 8, 8192, 100), host("b", 8, 4096, 100)},
			want:  []Selection{sel("b", "a"), sel("b", "a"), sel("a"), sel("a"), sel("a")},
		},
		{
			name: "vCPUs are consumed",
			s:    stack,
			req:  Request{Flavor: capacity.Flavor{VCPUs: 2, RAMMB: 1, DiskGB: 1}, NumInstances: 3},
			// a has less RAM so stacking prefers it, but only 2 fit by vCPUs.
			hosts: []Host{host("a", 4, 1000, 100), host("b", 64, 2000, 100)},
			want:  []Selection{sel("a", "b"), sel("a", "b"), sel("b")},
		},
		{
			name:  "disk is consumed",
			s:     stack,
			req:   Request{Flavor: capacity.Flavor{VCPUs: 1, RAMMB: 1, DiskGB: 40}, NumInstances: 3},
			hosts: []Host{host("a", 64, 1000, 100), host("b", 64, 2000, 1000)},
			want:  []Selection{sel("a", "b"), sel("a", "b"), sel("b")},
		},
		{
			name: "instance count is consumed",
			s: &Scheduler{Weighers: []WeighSpec{{
				Weigher:    weigherFunc(func(_ *Request, h *Host) float64 { return -float64(h.Instances) }),
				Multiplier: 1,
			}}},
			req:   Request{Flavor: small, NumInstances: 4},
			hosts: []Host{host("a", 8, 8192, 100), host("b", 8, 8192, 100)},
			want:  []Selection{sel("a", "b"), sel("b", "a"), sel("a", "b"), sel("b", "a")},
		},
		{
			name:  "ratios let more fit",
			s:     stack,
			req:   Request{Flavor: capacity.Flavor{VCPUs: 4, RAMMB: 1024, DiskGB: 1}, NumInstances: 3},
			hosts: []Host{{Name: "a", Up: true, Enabled: true, TotalVCPUs: 4, CPURatio: 2, TotalRAMMB: 2048, TotalDiskGB: 10}, host("b", 64, 65536, 100)},
			want:  []Selection{sel("a", "b"), sel("a", "b"), sel("b")},
		},
		{
			name: "filters apply",
			s:    Default(),
			req:  Request{Flavor: small, NumInstances: 1, AvailabilityZone: "az1", IgnoreHosts: []string{"b"}},
			hosts: func() []Host {
				down, disabled, other := host("down", 8, 1<<20, 100), host("disabled", 8, 1<<20, 100), host("other", 8, 1<<20, 100)
				down.Up, disabled.Enabled, other.AvailabilityZone = false, false, "az2"
				return []Host{host("a", 8, 4096, 100), host("b", 8, 1<<20, 100), down, disabled, other, host("tiny", 0, 1<<20, 100)}
			}(),
			want: []Selection{sel("a")},
		},
		{
			name:  "at most three alternates",
			s:     Default(),
			req:   Request{Flavor: small, NumInstances: 1},
			hosts: []Host{host("a", 8, 1000, 100), host("b", 8, 2000, 100), host("c", 8, 3000, 100), host("d", 8, 4000, 100), host("e", 8, 5000, 100), host("f", 8, 6000, 100)},
			want:  []Selection{sel("f", "e", "d", "c")},
		},
		{
			name:  "ties go to the lower name",
			s:     Default(),
			req:   Request{Flavor: small, NumInstances: 1},
			hosts: []Host{host("d", 8, 4096, 100), host("b", 8, 4096, 100), host("c", 8, 4096, 100), host("a", 8, 4096, 100), host("e", 8, 4096, 100)},
			want:  []Selection{sel("a", "b", "c", "d")},
		},
		{
			name: "normalised over passing hosts only",
			s: &Scheduler{
				Filters: []Filter{RetryFilter{}},
				Weighers: []WeighSpec{
					{Weigher: byName(map[string]float64{"a": 10, "b": 20, "z": 1e6}), Multiplier: 1, Normalise: true},
					{Weigher: byName(map[string]float64{"a": 0.9}), Multiplier: 1},
				},
			},
			// Over a, b: a→0+0.9, b→1. Had z counted, b would be ≈0.
			req:   Request{Flavor: small, IgnoreHosts: []string{"z"}},
			hosts: []Host{host("z", 8, 1, 1), host("a", 8, 1, 1), host("b", 8, 1, 1)},
			want:  []Selection{sel("b", "a")},
		},
		{
			name: "all-equal normalised scores are zero",
			s: &Scheduler{Weighers: []WeighSpec{
				{Weigher: byName(map[string]float64{"a": 5, "b": 5}), Multiplier: 1000, Normalise: true},
				{Weigher: byName(map[string]float64{"b": 1}), Multiplier: 1},
			}},
			req:   Request{Flavor: small},
			hosts: []Host{host("a", 8, 1, 1), host("b", 8, 1, 1)},
			want:  []Selection{sel("b", "a")},
		},
		{
			name: "unnormalised weigher uses raw scores",
			s: &Scheduler{Weighers: []WeighSpec{
				{Weigher: byName(map[string]float64{"a": 10, "b": 20}), Multiplier: 0.1},
				{Weigher: byName(map[string]float64{"a": 1.5}), Multiplier: 1},
			}},
			// a: 1 + 1.5 = 2.5; b: 2.
			req:   Request{Flavor: small},
			hosts: []Host{host("a", 8, 1, 1), host("b", 8, 1, 1)},
			want:  []Selection{sel("a", "b")},
		},
		{
			name:  "no filters or weighers",
			s:     &Scheduler{},
			req:   Request{Flavor: small, NumInstances: 2},
			hosts: []Host{host("b", 0, 0, 0), host("a", 0, 0, 0)},
			want:  []Selection{sel("a", "b"), sel("a", "b")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.hosts)
			got, err := tt.s.Select(&tt.req, in)
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Select =\n  %v\nwant\n  %v", got, tt.want)
			}
			if !reflect.DeepEqual(in, tt.hosts) {
				t.Errorf("Select modified its input hosts")
			}
		})
	}
}

func TestSelectNoValidHost(t *testing.T) {
	small := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}
	tests := []struct {
		name     string
		req      Request
		hosts    []Host
		want     []Selection
		contains []string
	}{
		{
			name:     "no hosts",
			req:      Request{Flavor: small, NumInstances: 2},
			contains: []string{"placed 0 of 2", "0 hosts"},
		},
		{
			name:     "none fit",
			req:      Request{Flavor: capacity.Flavor{VCPUs: 16}, NumInstances: 1, IgnoreHosts: []string{"b"}},
			hosts:    []Host{host("a", 8, 8192, 100), host("b", 32, 8192, 100)},
			contains: []string{"placed 0 of 1", "2 hosts", "RetryFilter rejected 1", "CoreFilter rejected 1"},
		},
		{
			name:  "partial placement is returned",
			req:   Request{Flavor: capacity.Flavor{VCPUs: 4, RAMMB: 1024, DiskGB: 10}, NumInstances: 5},
			hosts: []Host{host("a", 8, 8192, 100), host("b", 4, 8192, 100)},
			// a (tie on name), b (more free RAM), a; then neither has 4 vCPUs.
			want:     []Selection{sel("a", "b"), sel("b", "a"), sel("a")},
			contains: []string{"placed 3 of 5", "CoreFilter rejected 2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Default().Select(&tt.req, tt.hosts)
			if !errors.Is(err, ErrNoValidHost) {
				t.Fatalf("Select error = %v, want ErrNoValidHost", err)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("Select = %v, want %v", got, tt.want)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestSelectNilRequest(t *testing.T) {
	if _, err := Default().Select(nil, []Host{host("a", 8, 8192, 100)}); err == nil {
		t.Fatal("Select(nil) returned no error")
	}
}

func TestDefault(t *testing.T) {
	s := Default()
	wantFilters := []Filter{RetryFilter{}, ComputeFilter{}, AvailabilityZoneFilter{}, RAMFilter{}, DiskFilter{}, CoreFilter{},
		AggregateInstanceExtraSpecsFilter{}, AggregateImagePropertiesIsolation{}, AggregateMultiTenancyIsolation{},
		ServerGroupAffinityFilter{}, ServerGroupAntiAffinityFilter{}}
	if !reflect.DeepEqual(s.Filters, wantFilters) {
		t.Errorf("Default filters = %#v, want %#v", s.Filters, wantFilters)
	}
	wantWeighers := []WeighSpec{
		{Weigher: RAMWeigher{}, Multiplier: 1, Normalise: true},
		{Weigher: ServerGroupSoftAffinityWeigher{}, Multiplier: 2, Normalise: true},
		{Weigher: ServerGroupSoftAntiAffinityWeigher{}, Multiplier: 2, Normalise: true},
	}
	if !reflect.DeepEqual(s.Weighers, wantWeighers) {
		t.Errorf("Default weighers = %#v, want %#v", s.Weighers, wantWeighers)
	}
	if Default() == s {
		t.Error("Default returned a shared Scheduler")
	}
}

// referenceSelect is the obvious implementation of Select: for every
// instance, filter and weigh all hosts afresh and sort them.
func referenceSelect(s *Scheduler, req *Request, hosts []Host) ([]Selection, bool) {
	work := slices.Clone(hosts)
	var out []Selection
	if req.Group != nil {
		// Count each placement into a copy of the group, and cut the
		// alternates of a hard policy at the end.
		own := *req
		own.Group = &Group{UUID: req.Group.UUID, Policy: req.Group.Policy, Hosts: maps.Clone(req.Group.Hosts)}
		if own.Group.Hosts == nil {
			own.Group.Hosts = map[string]int{}
		}
		req = &own
		defer func() { keepPolicy(out, req.Group) }()
	}
	forced := req.ForcedHost != "" || req.ForcedNode != ""
	for range max(req.NumInstances, 1) {
		var live []int
		for i := range work {
			ok := true
			if forced {
				// Only the forced host, unless ignored, and no filters.
				name := work[i].Name
				ok = (req.ForcedHost == "" || strings.EqualFold(name, req.ForcedHost)) &&
					(req.ForcedNode == "" || name == req.ForcedNode) &&
					!slices.Contains(req.IgnoreHosts, name)
			}
			for _, f := range s.Filters {
				ok = ok && (forced || f.Passes(req, &work[i]))
			}
			if ok {
				live = append(live, i)
			}
		}
		if len(live) == 0 {
			return out, false
		}
		total := make([]float64, len(work))
		for _, ws := range s.Weighers {
			raw := make([]float64, len(live))
			for k, i := range live {
				raw[k] = ws.Weigher.Weigh(req, &work[i])
			}
			lo, hi := slices.Min(raw), slices.Max(raw)
			for k, i := range live {
				switch {
				case !ws.Normalise:
					total[i] += ws.Multiplier * raw[k]
				case lo != hi:
					total[i] += ws.Multiplier * ((raw[k] - lo) / (hi - lo))
				}
			}
		}
		slices.SortStableFunc(live, func(a, b int) int {
			return cmp.Or(cmp.Compare(total[b], total[a]), strings.Compare(work[a].Name, work[b].Name))
		})
		sel := Selection{Host: work[live[0]].Name}
		for _, i := range live[1:min(len(live), 1+MaxAlternates)] {
			sel.Alternates = append(sel.Alternates, work[i].Name)
		}
		out = append(out, sel)
		consume(&work[live[0]], req.Flavor)
		if req.Group != nil {
			req.Group.Hosts[work[live[0]].Name]++
		}
	}
	return out, true
}

func randomHosts(r *rand.Rand, n int) []Host {
	hosts := make([]Host, n)
	for i := range hosts {
		h := host(fmt.Sprintf("h%02d", r.IntN(n)), 1+r.IntN(16), int64(1024*(1+r.IntN(32))), int64(10*(1+r.IntN(20))))
		h.UsedVCPUs = r.IntN(h.TotalVCPUs + 1)
		h.UsedRAMMB = r.Int64N(h.TotalRAMMB + 1)
		h.UsedDiskGB = r.Int64N(h.TotalDiskGB + 1)
		h.CPURatio = []float64{0, 1, 4, 16}[r.IntN(4)]
		h.RAMRatio = []float64{0, 1, 1.5}[r.IntN(3)]
		h.Instances = r.IntN(10)
		h.AvailabilityZone = []string{"az1", "az2"}[r.IntN(2)]
		h.Up = r.IntN(10) > 0
		hosts[i] = h
	}
	return hosts
}

func TestSelectMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	schedulers := map[string]*Scheduler{
		"default": Default(),
		"stack": {
			Filters:  Default().Filters,
			Weighers: []WeighSpec{{Weigher: RAMWeigher{}, Multiplier: -1, Normalise: true}},
		},
		"mixed": {
			Filters: Default().Filters,
			Weighers: []WeighSpec{
				{Weigher: RAMWeigher{}, Multiplier: 1, Normalise: true},
				{Weigher: weigherFunc(func(_ *Request, h *Host) float64 { return freeVCPUs(h) }), Multiplier: 2, Normalise: true},
				{Weigher: weigherFunc(func(_ *Request, h *Host) float64 { return -float64(h.Instances) }), Multiplier: 0.1},
			},
		},
		"coarse": {
			Filters:  []Filter{ComputeFilter{}, CoreFilter{}},
			Weighers: []WeighSpec{{Weigher: weigherFunc(func(_ *Request, h *Host) float64 { return float64(h.Instances / 3) }), Multiplier: -1, Normalise: true}},
		},
	}
	for name, s := range schedulers {
		for round := range 200 {
			hosts := randomHosts(r, 1+r.IntN(40))
			req := &Request{
				Flavor:       capacity.Flavor{VCPUs: 1 + r.IntN(4), RAMMB: int64(512 * (1 + r.IntN(8))), DiskGB: int64(5 * r.IntN(4))},
				NumInstances: r.IntN(30),
			}
			if r.IntN(3) == 0 {
				req.AvailabilityZone = "az1"
			}
			if r.IntN(3) == 0 {
				req.IgnoreHosts = []string{hosts[0].Name}
			}
			if r.IntN(2) == 0 {
				req.Group = randomGroup(r, hosts)
			}
			switch r.IntN(8) {
			case 0:
				req.ForcedHost = strings.ToUpper(hosts[r.IntN(len(hosts))].Name)
			case 1:
				req.ForcedNode = hosts[r.IntN(len(hosts))].Name
			case 2:
				req.ForcedHost, req.ForcedNode = hosts[r.IntN(len(hosts))].Name, hosts[r.IntN(len(hosts))].Name
			case 3:
				req.ForcedHost = "nowhere"
			}
			randomAggregates(r, hosts, req)
			want, wantOK := referenceSelect(s, req, hosts)
			got, err := s.Select(req, hosts)
			if (err == nil) != wantOK || len(got) != len(want) || (len(got) > 0 && !reflect.DeepEqual(got, want)) {
				t.Fatalf("%s round %d: Select = %v, %v\nreference = %v, ok=%v", name, round, got, err, want, wantOK)
			}
		}
	}
}

func BenchmarkSelect10kHosts(b *testing.B) {
	hosts := make([]Host, 10000)
	for i := range hosts {
		h := host(fmt.Sprintf("compute-%05d", i), 32+16*(i%3), int64(131072+65536*(i%4)), 2000)
		h.AvailabilityZone = []string{"az1", "az2"}[i%2]
		h.CPURatio, h.RAMRatio = 16, 1.5
		h.UsedVCPUs = i % 40
		h.UsedRAMMB = int64(2048 * (i % 50))
		h.UsedDiskGB = int64(20 * (i % 50))
		h.Instances = i % 50
		h.Up = i%97 != 0
		hosts[i] = h
	}
	req := &Request{
		Flavor:       capacity.Flavor{VCPUs: 2, RAMMB: 4096, DiskGB: 40},
		NumInstances: 100,
		IgnoreHosts:  []string{"compute-00001", "compute-00002"},
	}
	s := Default()
	b.ReportAllocs()
	for b.Loop() {
		sels, err := s.Select(req, hosts)
		if err != nil || len(sels) != 100 {
			b.Fatalf("Select = %d selections, %v", len(sels), err)
		}
	}
}

func TestWithRAMMultiplierStacks(t *testing.T) {
	hosts := []Host{
		{Name: "a", Enabled: true, Up: true, TotalVCPUs: 8, TotalRAMMB: 8192, TotalDiskGB: 100, UsedRAMMB: 4096},
		{Name: "b", Enabled: true, Up: true, TotalVCPUs: 8, TotalRAMMB: 8192, TotalDiskGB: 100},
	}
	req := &Request{Flavor: capacity.Flavor{VCPUs: 1, RAMMB: 512, DiskGB: 1}, NumInstances: 1}
	spread, err := Default().Select(req, hosts)
	if err != nil || spread[0].Host != "b" {
		t.Fatalf("spread picked %v, %v; want b (more free RAM)", spread, err)
	}
	stack, err := Default().WithRAMMultiplier(-1).Select(req, hosts)
	if err != nil || stack[0].Host != "a" {
		t.Fatalf("stack picked %v, %v; want a (less free RAM)", stack, err)
	}
	if Default().Weighers[0].Multiplier != DefaultRAMWeightMultiplier {
		t.Error("WithRAMMultiplier changed the default scheduler")
	}
}

// randomAggregates puts some of hosts into aggregates with metadata the
// aggregate filters read, and gives req a project, extra specs and image
// properties some of them match.
func randomAggregates(r *rand.Rand, hosts []Host, req *Request) {
	pick := func(vs ...string) string { return vs[r.IntN(len(vs))] }
	for i := range hosts {
		for range r.IntN(3) {
			md := map[string]string{}
			if r.IntN(2) == 0 {
				md["filter_tenant_id"] = pick("p1", "p2", "p1,p2")
			}
			if r.IntN(2) == 0 {
				md["ssd"] = pick("true", "false")
			}
			if r.IntN(2) == 0 {
				md["gen"] = pick("1", "2, 3", "abc")
			}
			if r.IntN(2) == 0 {
				md["os_distro"] = pick("linux", "windows", "linux,windows")
			}
			hosts[i].Aggregates = append(hosts[i].Aggregates, md)
		}
	}
	req.ProjectID = pick("p1", "p2", "p3")
	if r.IntN(2) == 0 {
		req.ExtraSpecs = map[string]string{"hw:cpu_policy": "dedicated"}
		if r.IntN(2) == 0 {
			req.ExtraSpecs["aggregate_instance_extra_specs:ssd"] = "true"
		}
		if r.IntN(2) == 0 {
			req.ExtraSpecs["gen"] = ">= 2"
		}
	}
	if r.IntN(2) == 0 {
		req.ImageProperties = map[string]string{"os_distro": pick("linux", "windows", "")}
	}
}

func TestSelectForced(t *testing.T) {
	small := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}
	// refused fails every filter of Default, one way or another.
	refused := host("refused", 0, 0, 0)
	refused.Up, refused.Enabled, refused.AvailabilityZone = false, false, "az9"
	refused.Aggregates = []map[string]string{{"filter_tenant_id": "other", "ssd": "false", "os_distro": "windows"}}
	strict := Request{
		Flavor: small, AvailabilityZone: "az1", ProjectID: "p",
		ExtraSpecs:      map[string]string{"aggregate_instance_extra_specs:ssd": "true"},
		ImageProperties: map[string]string{"os_distro": "linux"},
		Group:           &Group{UUID: "g", Policy: PolicyAffinity, Hosts: map[string]int{"a": 1}},
	}
	withForce := func(req Request, host, node string, n int) Request {
		req.ForcedHost, req.ForcedNode, req.NumInstances = host, node, n
		return req
	}
	a, b := host("a", 8, 8192, 100), host("b", 8, 16384, 100)
	a.Aggregates = []map[string]string{{"filter_tenant_id": "p", "ssd": "true", "os_distro": "linux"}}
	hosts := []Host{a, refused, b}
	tests := []struct {
		name  string
		s     *Scheduler
		req   Request
		hosts []Host
		want  []Selection
	}{
		{"forced host past every filter", Default(), withForce(strict, "refused", "", 1), hosts, []Selection{sel("refused")}},
		{"forced node past every filter", Default(), withForce(strict, "", "refused", 1), hosts, []Selection{sel("refused")}},
		{"forced host and node", Default(), withForce(strict, "refused", "refused", 1), hosts, []Selection{sel("refused")}},
		{"forced host ignores case", Default(), withForce(strict, "REFUSED", "", 1), hosts, []Selection{sel("refused")}},
		{"all instances to the forced host", Default(), withForce(strict, "refused", "", 3), hosts,
			[]Selection{sel("refused"), sel("refused"), sel("refused")}},
		{"forced past a full host", Default(), withForce(Request{Flavor: capacity.Flavor{VCPUs: 64}}, "a", "", 2), hosts,
			[]Selection{sel("a"), sel("a")}},
		{"weighers still rank hosts of the forced name", Default(), withForce(Request{Flavor: small}, "a", "", 1),
			[]Host{host("a", 8, 1024, 100), host("A", 8, 8192, 100), host("b", 8, 65536, 100)}, []Selection{sel("A", "a")}},
		{"forced node is exact", Default(), withForce(Request{Flavor: small}, "", "a", 1),
			[]Host{host("a", 8, 1024, 100), host("A", 8, 8192, 100)}, []Selection{sel("a")}},
		{"without force the filters refuse it", Default(), withForce(strict, "", "", 1), hosts, []Selection{sel("a")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.hosts)
			got, err := tt.s.Select(&tt.req, in)
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Select = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(in, tt.hosts) {
				t.Error("Select modified its input hosts")
			}
		})
	}
}

func TestSelectForcedNoValidHost(t *testing.T) {
	small := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}
	hosts := []Host{host("a", 8, 8192, 100), host("b", 8, 8192, 100)}
	tests := []struct {
		name string
		req  Request
	}{
		{"unknown host", Request{Flavor: small, ForcedHost: "c"}},
		{"unknown node", Request{Flavor: small, ForcedNode: "c"}},
		{"node is case sensitive", Request{Flavor: small, ForcedNode: "A"}},
		{"host and node disagree", Request{Flavor: small, ForcedHost: "a", ForcedNode: "b"}},
		{"forced host ignored", Request{Flavor: small, ForcedHost: "a", IgnoreHosts: []string{"a"}}},
		{"no hosts", Request{Flavor: small, ForcedHost: "a", NumInstances: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := hosts
			if tt.name == "no hosts" {
				in = nil
			}
			got, err := Default().Select(&tt.req, in)
			if !errors.Is(err, ErrNoValidHost) || len(got) != 0 {
				t.Fatalf("Select = %v, %v; want no selection and ErrNoValidHost", got, err)
			}
			if !strings.Contains(err.Error(), "forced host") {
				t.Errorf("error %q does not say the host was forced", err)
			}
		})
	}
}

// TestAggregateFiltersCostNothingWithoutAggregates guards the early returns
// that keep a cell without aggregates as fast as before the filters.
func TestAggregateFiltersCostNothingWithoutAggregates(t *testing.T) {
	filters := []Filter{AggregateInstanceExtraSpecsFilter{}, AggregateImagePropertiesIsolation{}, AggregateMultiTenancyIsolation{}}
	plain := host("a", 8, 8192, 100)
	inAggs := plain
	inAggs.Aggregates = []map[string]string{{"filter_tenant_id": "q, p", "ssd": "true", "os_distro": "linux"}}
	tests := []struct {
		name string
		req  *Request
		h    *Host
	}{
		{"no aggregates, no specs", &Request{ProjectID: "p", ImageProperties: map[string]string{"os_distro": "linux"}}, &plain},
		{"aggregates and specs", &Request{ProjectID: "p",
			ExtraSpecs:      map[string]string{"aggregate_instance_extra_specs:ssd": "<or> true <or> yes", "hw:x": "1"},
			ImageProperties: map[string]string{"os_distro": "linux"}}, &inAggs},
	}
	for _, tt := range tests {
		for _, f := range filters {
			if !f.Passes(tt.req, tt.h) {
				t.Fatalf("%s: %T refused", tt.name, f)
			}
			if n := testing.AllocsPerRun(100, func() { f.Passes(tt.req, tt.h) }); n != 0 {
				t.Errorf("%s: %T allocates %v times per host", tt.name, f, n)
			}
		}
	}
}
