package compute_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestServerFirewall: GET /servers/{id}/firewall is an admin's (a member,
// even the server's owner, gets Nova's 403); an unknown server is a 404;
// for a server on a host it is what the host enforces on each port: the
// port's address and groups and, for a server in the default group,
// Neutron's default rules (egress anywhere, IPv4 and IPv6; ingress from
// the group's own members, the server itself among them).
func TestServerFirewall(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	id := create(t, tr, demo, map[string]any{"name": "fw", "flavorRef": "1", "imageRef": imageID})
	s := waitStatus(t, tr.Compute(demo), id, "ACTIVE")

	r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/firewall", demo, nil)
	if r.Status != http.StatusForbidden {
		t.Fatalf("a member's firewall view: want 403, got %s", r)
	}
	if r := tr.Do(t, http.MethodGet, "/v2.1/servers/00000000-0000-0000-0000-000000000000/firewall", admin, nil); r.Status != http.StatusNotFound {
		t.Fatalf("an unknown server's firewall view: want 404, got %s", r)
	}

	var addr string
	for _, as := range s.Addresses {
		for _, a := range as.([]any) {
			addr, _ = a.(map[string]any)["addr"].(string)
		}
	}
	if addr == "" {
		t.Fatalf("server %s has no address: %v", id, s.Addresses)
	}
	testpoll.Eventually(t, wait, "the default group's rules enforced on the server's port", func() (bool, string) {
		r, err := tr.Send(http.MethodGet, "/v2.1/servers/"+id+"/firewall", admin, nil)
		if err != nil {
			return false, err.Error()
		}
		if r.Status != http.StatusOK {
			return false, r.String()
		}
		var out struct {
			Firewall wire.InstanceFilterAnswer `json:"firewall"`
		}
		r.JSON(t, &out)
		f := out.Firewall
		if f.UUID != id || f.Host == "" || len(f.Ports) != 1 {
			return false, string(r.Body)
		}
		p := f.Ports[0]
		if !p.PortSecurity || len(p.Pending) > 0 || !slices.Contains(p.Addresses, addr) || len(p.SecurityGroups) != 1 {
			return false, string(r.Body)
		}
		var egress4, egress6, fromMembers bool
		for _, rule := range p.Rules {
			switch {
			case rule.Direction == "egress" && rule.EtherType == "IPv4" && rule.Protocol == "" && len(rule.Remote) == 0 && rule.RemoteGroupID == "":
				egress4 = true
			case rule.Direction == "egress" && rule.EtherType == "IPv6" && rule.Protocol == "" && len(rule.Remote) == 0 && rule.RemoteGroupID == "":
				egress6 = true
			case rule.Direction == "ingress" && rule.EtherType == "IPv4" && rule.RemoteGroupID == p.SecurityGroups[0] && slices.Contains(rule.Remote, addr):
				fromMembers = true
			}
		}
		return egress4 && egress6 && fromMembers, string(r.Body)
	})
}
