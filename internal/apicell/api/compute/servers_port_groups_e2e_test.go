package compute_test

import (
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestServerOnAPortShowsThePortsGroups: a server booted on a port the
// caller made with a group of its own is in that group only, as Nova shows
// it (the groups of the server's ports): not in the project's default
// group, which only the ports made for a server get. A server booted on a
// network shows the groups asked for (the default group when none was).
func TestServerOnAPortShowsThePortsGroups(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	nc, sc := networking(tr, demo), tr.Compute(demo)
	private := privateNetwork(t, nc)
	web, err := groups.Create(ctx, nc, groups.CreateOpts{Name: "web"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ports.Create(ctx, nc, ports.CreateOpts{NetworkID: private, Name: "p", SecurityGroups: &[]string{web.ID}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	names := func(id string) []string {
		t.Helper()
		r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, demo, nil)
		var body struct {
			Server struct {
				SecurityGroups []struct {
					Name string `json:"name"`
				} `json:"security_groups"`
			} `json:"server"`
		}
		r.JSON(t, &body)
		var out []string
		for _, g := range body.Server.SecurityGroups {
			out = append(out, g.Name)
		}
		return out
	}
	onPort := create(t, tr, demo, map[string]any{"name": "on-port", "flavorRef": "1", "imageRef": imageID,
		"networks": []map[string]any{{"port": p.ID}}})
	if got := names(onPort); len(got) != 1 || got[0] != "web" {
		t.Errorf("the server on the port is in %v at once, want [web]", got)
	}
	waitStatus(t, sc, onPort, "ACTIVE")
	if got := names(onPort); len(got) != 1 || got[0] != "web" {
		t.Errorf("the active server on the port is in %v, want [web]", got)
	}
	onNet := create(t, tr, demo, map[string]any{"name": "on-net", "flavorRef": "1", "imageRef": imageID,
		"networks": []map[string]any{{"uuid": private}}})
	waitStatus(t, sc, onNet, "ACTIVE")
	if got := names(onNet); len(got) != 1 || got[0] != "default" {
		t.Errorf("the server on the network is in %v, want [default]", got)
	}
}
