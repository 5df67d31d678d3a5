package hostsched

import (
	"errors"
	"maps"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

func group(policy string, hosts map[string]int) *Group {
	return &Group{UUID: "g", Policy: policy, Hosts: hosts}
}

func TestServerGroupAffinityFilter(t *testing.T) {
	tests := []struct {
		name  string
		group *Group
		host  string
		want  bool
	}{
		{"no group", nil, "a", true},
		{"no member yet", group(PolicyAffinity, nil), "a", true},
		{"only zero counts", group(PolicyAffinity, map[string]int{"b": 0}), "a", true},
		{"the member's host", group(PolicyAffinity, map[string]int{"a": 2}), "a", true},
		{"another host", group(PolicyAffinity, map[string]int{"b": 1}), "a", false},
		{"one of the members' hosts", group(PolicyAffinity, map[string]int{"b": 1, "a": 1}), "a", true},
		{"anti-affinity is not its business", group(PolicyAntiAffinity, map[string]int{"b": 1}), "a", true},
		{"soft-affinity is not its business", group(PolicySoftAffinity, map[string]int{"b": 1}), "a", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (ServerGroupAffinityFilter{}).Passes(&Request{Group: tt.group}, &Host{Name: tt.host}); got != tt.want {
				t.Errorf("Passes(%+v, %q) = %v, want %v", tt.group, tt.host, got, tt.want)
			}
		})
	}
}

func TestServerGroupAntiAffinityFilter(t *testing.T) {
	tests := []struct {
		name  string
		group *Group
		host  string
		want  bool
	}{
		{"no group", nil, "a", true},
		{"no member yet", group(PolicyAntiAffinity, nil), "a", true},
		{"a member here", group(PolicyAntiAffinity, map[string]int{"a": 1}), "a", false},
		{"members elsewhere", group(PolicyAntiAffinity, map[string]int{"b": 1, "c": 3}), "a", true},
		{"a zero count is no member", group(PolicyAntiAffinity, map[string]int{"a": 0}), "a", true},
		{"affinity is not its business", group(PolicyAffinity, map[string]int{"a": 1}), "a", true},
		{"soft-anti-affinity is not its business", group(PolicySoftAntiAffinity, map[string]int{"a": 1}), "a", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (ServerGroupAntiAffinityFilter{}).Passes(&Request{Group: tt.group}, &Host{Name: tt.host}); got != tt.want {
				t.Errorf("Passes(%+v, %q) = %v, want %v", tt.group, tt.host, got, tt.want)
			}
		})
	}
}

func TestServerGroupSoftWeighers(t *testing.T) {
	members := map[string]int{"a": 2, "b": 1}
	tests := []struct {
		name           string
		group          *Group
		host           string
		affinity, anti float64
	}{
		{"no group", nil, "a", 0, 0},
		{"soft-affinity, two members", group(PolicySoftAffinity, members), "a", 2, 0},
		{"soft-affinity, one member", group(PolicySoftAffinity, members), "b", 1, 0},
		{"soft-affinity, none", group(PolicySoftAffinity, members), "c", 0, 0},
		{"soft-anti-affinity, two members", group(PolicySoftAntiAffinity, members), "a", 0, -2},
		{"soft-anti-affinity, none", group(PolicySoftAntiAffinity, members), "c", 0, 0},
		{"hard affinity does not weigh", group(PolicyAffinity, members), "a", 0, 0},
		{"hard anti-affinity does not weigh", group(PolicyAntiAffinity, members), "a", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, h := &Request{Group: tt.group}, &Host{Name: tt.host}
			if got := (ServerGroupSoftAffinityWeigher{}).Weigh(req, h); got != tt.affinity {
				t.Errorf("soft-affinity Weigh = %v, want %v", got, tt.affinity)
			}
			if got := (ServerGroupSoftAntiAffinityWeigher{}).Weigh(req, h); got != tt.anti {
				t.Errorf("soft-anti-affinity Weigh = %v, want %v", got, tt.anti)
			}
		})
	}
}

func TestKeepPolicy(t *testing.T) {
	sels := func() []Selection {
		return []Selection{sel("a", "b", "c", "d"), sel("b", "c", "d", "e"), sel("c", "d", "e", "f")}
	}
	tests := []struct {
		name  string
		group *Group
		want  []Selection
	}{
		{"no group keeps all", nil, sels()},
		{"soft policies keep all", group(PolicySoftAntiAffinity, map[string]int{"a": 1, "b": 1, "c": 1}), sels()},
		{
			// a, b, c are the request's own choices; e is an older member's.
			name:  "anti-affinity: no group host, each alternate offered once",
			group: group(PolicyAntiAffinity, map[string]int{"a": 1, "b": 1, "c": 1, "e": 1}),
			want:  []Selection{sel("a", "d"), sel("b"), sel("c", "f")},
		},
		{
			name:  "affinity: only the group's hosts",
			group: group(PolicyAffinity, map[string]int{"a": 1, "b": 1, "c": 1}),
			want:  []Selection{sel("a", "b", "c"), sel("b", "c"), sel("c")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sels()
			keepPolicy(got, tt.group)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("keepPolicy =\n  %v\nwant\n  %v", got, tt.want)
			}
		})
	}
}

func TestSelectServerGroup(t *testing.T) {
	small := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}
	// Four equal hosts but for free RAM: d most, then c, b, a.
	four := func() []Host {
		return []Host{host("a", 8, 8192, 100), host("b", 8, 9216, 100), host("c", 8, 10240, 100), host("d", 8, 11264, 100)}
	}
	tests := []struct {
		name     string
		req      Request
		hosts    []Host
		want     []Selection
		noValid  string // the filter named in the error; "" for success
		wantHost map[string]int
	}{
		{
			name:  "anti-affinity puts each instance on its own host",
			req:   Request{Flavor: small, NumInstances: 3, Group: group(PolicyAntiAffinity, nil)},
			hosts: four(),
			// d, c, b; the only host left to fall back to is a.
			want: []Selection{sel("d", "a"), sel("c"), sel("b")},
		},
		{
			name:  "anti-affinity avoids the members' hosts",
			req:   Request{Flavor: small, NumInstances: 2, Group: group(PolicyAntiAffinity, map[string]int{"d": 1, "b": 2})},
			hosts: four(),
			want:  []Selection{sel("c"), sel("a")},
		},
		{
			name:    "anti-affinity with more instances than hosts",
			req:     Request{Flavor: small, NumInstances: 5, Group: group(PolicyAntiAffinity, nil)},
			hosts:   four(),
			want:    []Selection{sel("d"), sel("c"), sel("b"), sel("a")},
			noValid: "ServerGroupAntiAffinityFilter rejected 4",
		},
		{
			name:  "affinity stacks a new group on the best host",
			req:   Request{Flavor: small, NumInstances: 3, Group: group(PolicyAffinity, nil)},
			hosts: four(),
			want:  []Selection{sel("d"), sel("d"), sel("d")},
		},
		{
			name:  "affinity follows the members",
			req:   Request{Flavor: small, NumInstances: 2, Group: group(PolicyAffinity, map[string]int{"a": 1})},
			hosts: four(),
			want:  []Selection{sel("a"), sel("a")},
		},
		{
			name: "affinity fails when the group's host is full",
			req:  Request{Flavor: capacity.Flavor{VCPUs: 4, RAMMB: 1024, DiskGB: 10}, NumInstances: 3, Group: group(PolicyAffinity, nil)},
			// d takes two of four vCPUs each; the third fits elsewhere but may not go there.
			hosts:   four(),
			want:    []Selection{sel("d"), sel("d")},
			noValid: "ServerGroupAffinityFilter rejected 3",
		},
		{
			name:  "soft-affinity gathers on the member's host over spreading",
			req:   Request{Flavor: small, NumInstances: 2, Group: group(PolicySoftAffinity, map[string]int{"a": 1})},
			hosts: four(),
			want:  []Selection{sel("a", "d", "c", "b"), sel("a", "d", "c", "b")},
		},
		{
			name: "soft-affinity goes elsewhere when the host is full",
			req:  Request{Flavor: capacity.Flavor{VCPUs: 8, RAMMB: 1024, DiskGB: 10}, NumInstances: 2, Group: group(PolicySoftAffinity, map[string]int{"a": 1})},
			// The first fills a; the second goes to the most free RAM.
			hosts: four(),
			want:  []Selection{sel("a", "d", "c", "b"), sel("d", "c", "b")},
		},
		{
			name: "soft-anti-affinity spreads over the members' hosts first",
			req:  Request{Flavor: small, NumInstances: 4, Group: group(PolicySoftAntiAffinity, map[string]int{"d": 1, "c": 1})},
			// b and a are empty; then every host has one and RAM decides.
			hosts: four(),
			want:  []Selection{sel("b", "a", "d", "c"), sel("a", "d", "c", "b"), sel("d", "c", "b", "a"), sel("c", "b", "a", "d")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := maps.Clone(tt.req.Group.Hosts)
			got, err := Default().Select(&tt.req, tt.hosts)
			switch {
			case tt.noValid == "" && err != nil:
				t.Fatalf("Select: %v", err)
			case tt.noValid != "" && !errors.Is(err, ErrNoValidHost):
				t.Fatalf("Select error = %v, want ErrNoValidHost", err)
			case tt.noValid != "" && !strings.Contains(err.Error(), tt.noValid):
				t.Errorf("error %q does not say %q", err, tt.noValid)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Select =\n  %v\nwant\n  %v", got, tt.want)
			}
			if !maps.Equal(tt.req.Group.Hosts, before) {
				t.Errorf("Select changed the request's group hosts to %v", tt.req.Group.Hosts)
			}
		})
	}
}

// randomGroup is a group of a random policy with members on some of hosts.
func randomGroup(r *rand.Rand, hosts []Host) *Group {
	policies := []string{PolicyAffinity, PolicyAntiAffinity, PolicySoftAffinity, PolicySoftAntiAffinity}
	g := &Group{UUID: "g", Policy: policies[r.IntN(len(policies))]}
	if r.IntN(2) == 0 {
		return g
	}
	g.Hosts = map[string]int{}
	for range r.IntN(3) + 1 {
		g.Hosts[hosts[r.IntN(len(hosts))].Name] += 1 + r.IntN(2)
	}
	return g
}
