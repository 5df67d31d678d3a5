package testtree_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/node"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/up"
)

// The servers of these tests are project p's, made by an admin of p (the
// admin alone may name a target cell).
const adminP = "admin:p"

func networkClient(tr *testtree.Tree, token string) *gophercloud.ServiceClient {
	pc := &gophercloud.ProviderClient{HTTPClient: *tr.HTTP}
	pc.SetToken(token)
	base := strings.TrimSuffix(tr.APIURL(), "/v2.1") + "/networking/"
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: base, ResourceBase: base + "v2.0/", Type: "network"}
}

// bootIn creates a server in project p on the default network, in the
// security groups named, in cell, and waits for its address.
func bootIn(t *testing.T, tr *testtree.Tree, name, cell string, groups ...string) (id, addr string) {
	t.Helper()
	ctx := context.Background()
	opts := servers.CreateOpts{Name: name, FlavorRef: "1", ImageRef: up.DefaultImageID, SecurityGroups: groups}
	s, err := servers.Create(ctx, tr.Compute(adminP), opts, servers.SchedulerHintOpts{TargetCell: cell}).Extract()
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	addrs := activeWithAddresses(t, tr, []string{s.ID})
	return s.ID, addrs[s.ID].Addr
}

// firewall is GET /servers/{id}/firewall as an admin.
func firewall(tr *testtree.Tree, id string) (wire.InstanceFilterAnswer, error) {
	var out struct {
		Firewall wire.InstanceFilterAnswer `json:"firewall"`
	}
	r, err := tr.Send(http.MethodGet, "/v2.1/servers/"+id+"/firewall", "admin:admin", nil)
	if err != nil {
		return out.Firewall, err
	}
	if r.Status != http.StatusOK {
		return out.Firewall, fmt.Errorf("firewall of %s: %s", id, r)
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		return out.Firewall, err
	}
	return out.Firewall, nil
}

// remoteOf is the expanded remote addresses of the server's ingress rule
// from group remote on protocol/port, and whether there is such a rule.
func remoteOf(f wire.InstanceFilterAnswer, remote, protocol string, port int) ([]string, bool) {
	for _, p := range f.Ports {
		for _, r := range p.Rules {
			if r.Direction == "ingress" && r.RemoteGroupID == remote && r.Protocol == protocol &&
				r.PortRangeMin != nil && *r.PortRangeMin == port {
				out := slices.Clone(r.Remote)
				slices.Sort(out)
				return out, true
			}
		}
	}
	return nil, false
}

// hasPrefixRule says whether the server's ports have an ingress rule on
// protocol/port from prefix.
func hasPrefixRule(f wire.InstanceFilterAnswer, prefix, protocol string, port int) bool {
	for _, p := range f.Ports {
		for _, r := range p.Rules {
			if r.Direction == "ingress" && r.Protocol == protocol && r.PortRangeMin != nil && *r.PortRangeMin == port &&
				slices.Contains(r.Remote, prefix) {
				return true
			}
		}
	}
	return false
}

// waitRemote polls the server's firewall until its rule from group remote
// on tcp/port lets exactly want in.
func waitRemote(t *testing.T, tr *testtree.Tree, id, remote string, port int, want []string, what string) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	testpoll.Eventually(t, 60*time.Second, what, func() (bool, string) {
		f, err := firewall(tr, id)
		if err != nil {
			return false, err.Error()
		}
		got, ok := remoteOf(f, remote, "tcp", port)
		if !ok {
			return false, fmt.Sprintf("no tcp %d rule from group %s yet: %+v", port, remote, f.Ports)
		}
		if !slices.Equal(got, want) {
			return false, fmt.Sprintf("remote %v, want %v", got, want)
		}
		return true, ""
	})
}

func makeGroups(t *testing.T, nc *gophercloud.ServiceClient) (web, clients string) {
	t.Helper()
	ctx := context.Background()
	w, err := groups.Create(ctx, nc, groups.CreateOpts{Name: "web"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	c, err := groups.Create(ctx, nc, groups.CreateOpts{Name: "clients"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	_, err = rules.Create(ctx, nc, rules.CreateOpts{SecGroupID: w.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolTCP, PortRangeMin: 80, PortRangeMax: 80, RemoteGroupID: c.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	return w.ID, c.ID
}

// A remote-group rule is enforced in the cell of the port that has it
// with the member addresses of the remote group from every cell: a member
// booted in another cell, or in the same one, reaches the web server's
// filter; a member deleted leaves it; a rule added at the top reaches it.
// A cell holds only the groups its ports need: the cell with clients alone
// never holds web. A server that joins a group (a port_update down to its
// cell) gets the group's rules on its port.
func TestRemoteGroupMembersReachTheRightVMs(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 2})
	ctx := context.Background()
	nc := networkClient(tr, adminP)
	web, clients := makeGroups(t, nc)
	c1, c2 := tr.Cells[0].Config().Cell, tr.Cells[1].Config().Cell

	srv, _ := bootIn(t, tr, "web-1", c1, "web")
	waitRemote(t, tr, srv, clients, 80, nil, "the web server's tcp 80 rule from clients, with no member yet")

	cl1, a1 := bootIn(t, tr, "client-1", c2, "clients")
	waitRemote(t, tr, srv, clients, 80, []string{a1}, "client-1 (another cell) let in on tcp 80")
	cl2, a2 := bootIn(t, tr, "client-2", c1, "clients")
	waitRemote(t, tr, srv, clients, 80, []string{a1, a2}, "client-2 (the same cell) let in too")

	// The cell with clients alone holds clients, not web; the web
	// server's cell holds both.
	held := func(n *node.Node) []string {
		rows, err := n.DB.Query(ctx, `SELECT id FROM sg_groups`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	if h := held(tr.Cells[1]); slices.Contains(h, web) || !slices.Contains(h, clients) {
		t.Errorf("%s (a client only) holds %v: want clients %s and not web %s", c2, h, clients, web)
	}
	if h := held(tr.Cells[0]); !slices.Contains(h, web) || !slices.Contains(h, clients) {
		t.Errorf("%s (the web server's) holds %v: want web and clients", c1, h)
	}

	if err := servers.Delete(ctx, tr.Compute(adminP), cl1).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitRemote(t, tr, srv, clients, 80, []string{a2}, "client-1's address gone once it is deleted")

	// client-2 joins web (addSecurityGroup: a port_update to its cell):
	// its own port now has web's rule, from clients, itself among them.
	if r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+cl2+"/action", adminP, map[string]any{"addSecurityGroup": map[string]any{"name": "web"}}); r.Status != http.StatusAccepted {
		t.Fatalf("addSecurityGroup: %s", r)
	}
	waitRemote(t, tr, cl2, clients, 80, []string{a2}, "web's rule on client-2's port once it joins web")

	if _, err := rules.Create(ctx, nc, rules.CreateOpts{SecGroupID: web, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolTCP, PortRangeMin: 443, PortRangeMax: 443, RemoteIPPrefix: "198.51.100.0/24"}).Extract(); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 60*time.Second, "the new tcp 443 rule enforced", func() (bool, string) {
		f, err := firewall(tr, srv)
		if err != nil {
			return false, err.Error()
		}
		return hasPrefixRule(f, "198.51.100.0/24", "tcp", 443), fmt.Sprintf("%+v", f.Ports)
	})
}

// A cell that is down while a group's rules and members change enforces
// the new ones once it is back: the changes wait in the API cell's outbox
// (and the cell's periodic sync heals anything missed).
func TestCellDownWhileRulesChangeConverges(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 2})
	ctx := context.Background()
	nc := networkClient(tr, adminP)
	_, clients := makeGroups(t, nc)
	c1, c2 := tr.Cells[0].Config().Cell, tr.Cells[1].Config().Cell
	webID := func() string {
		var out struct {
			SecurityGroups []struct{ ID, Name string } `json:"security_groups"`
		}
		tr.Do(t, http.MethodGet, "/networking/v2.0/security-groups?name=web", adminP, nil).JSON(t, &out)
		return out.SecurityGroups[0].ID
	}()

	srv, _ := bootIn(t, tr, "web-1", c1, "web")
	_, a1 := bootIn(t, tr, "client-1", c2, "clients")
	waitRemote(t, tr, srv, clients, 80, []string{a1}, "client-1 let in before the web server's cell goes down")

	// Back on the same broker address, where the API cell's link finds it.
	cfg := testtree.StopCell(t, tr.Cells[0])

	// While it is down: a rule added, and a member booted in the other cell.
	if _, err := rules.Create(ctx, nc, rules.CreateOpts{SecGroupID: webID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolTCP, PortRangeMin: 8080, PortRangeMax: 8080, RemoteIPPrefix: "203.0.113.0/24"}).Extract(); err != nil {
		t.Fatal(err)
	}
	_, a2 := bootIn(t, tr, "client-2", c2, "clients")

	testtree.RestartCell(t, cfg)
	waitRemote(t, tr, srv, clients, 80, []string{a1, a2}, "client-2, booted while the cell was down, let in after it returns")
	testpoll.Eventually(t, 60*time.Second, "the rule added while the cell was down enforced", func() (bool, string) {
		f, err := firewall(tr, srv)
		if err != nil {
			return false, err.Error()
		}
		return hasPrefixRule(f, "203.0.113.0/24", "tcp", 8080), fmt.Sprintf("%+v", f.Ports)
	})
	// The API copy agrees the server is where it was.
	in, err := apidb.Get(ctx, tr.API.DB, srv)
	if err != nil || in.Cell != c1 || !strings.EqualFold(in.VMState, "active") {
		t.Fatalf("server after the restart: %+v, %v", in, err)
	}
}
