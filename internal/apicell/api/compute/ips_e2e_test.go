package compute_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestServerIPs: GET /servers/{id}/ips and /ips/{network} with gophercloud.
func TestServerIPs(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	sc := tr.Compute(demo)
	ctx := context.Background()
	id := create(t, tr, demo, map[string]any{"name": "ips", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	pages, err := servers.ListAddresses(sc, id).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := servers.ExtractAddresses(pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(all["private"]) != 1 || all["private"][0].Version != 4 || all["private"][0].Address == "" {
		t.Fatalf("addresses: %+v", all)
	}
	pages, err = servers.ListAddressesByNetwork(sc, id, "private").AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byNet, err := servers.ExtractNetworkAddresses(pages)
	if err != nil || len(byNet) != 1 || byNet[0].Address != all["private"][0].Address {
		t.Fatalf("addresses on private: %+v, %v", byNet, err)
	}
	testtree.Fault(t, tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/ips/elsewhere", demo, nil), http.StatusNotFound)
	testtree.Fault(t, tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/ips", other, nil), http.StatusNotFound)
}
