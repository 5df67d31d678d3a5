package network_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// What terraform's openstack_networking_network_v2 and _subnet_v2 do with
// `tags`: create, then replace the tags, then read them back in the
// resource (and filter lists by them). A change gives a new revision; the
// same tags again do not.
func TestNetworkAndSubnetTags(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sc := e.client(demo)
		n, err := networks.Create(ctx, sc, networks.CreateOpts{Name: "tagged"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		s, err := subnets.Create(ctx, sc, subnets.CreateOpts{NetworkID: n.ID, CIDR: "192.168.77.0/28", IPVersion: 4}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ path, id string }{{"networks", n.ID}, {"subnets", s.ID}} {
			tags, err := attributestags.ReplaceAll(ctx, sc, c.path, c.id, attributestags.ReplaceAllOpts{Tags: []string{"red", "blue"}}).Extract()
			if err != nil || !slices.Equal(tags, []string{"red", "blue"}) {
				t.Fatalf("%s: replace = %v, %v", c.path, tags, err)
			}
			if _, err := attributestags.ReplaceAll(ctx, sc, c.path, c.id, attributestags.ReplaceAllOpts{Tags: []string{"red", "blue"}}).Extract(); err != nil {
				t.Fatal(err)
			}
			if err := attributestags.Add(ctx, sc, c.path, c.id, "green").ExtractErr(); err != nil {
				t.Fatal(err)
			}
			if ok, err := attributestags.Confirm(ctx, sc, c.path, c.id, "green").Extract(); err != nil || !ok {
				t.Fatalf("%s: confirm = %v, %v", c.path, ok, err)
			}
			if err := attributestags.Delete(ctx, sc, c.path, c.id, "blue").ExtractErr(); err != nil {
				t.Fatal(err)
			}
			err = attributestags.Delete(ctx, sc, c.path, c.id, "blue").ExtractErr()
			neutronError(t, err, http.StatusNotFound, "TagNotFound", "Tag blue could not be found.")
			if tags, err := attributestags.List(ctx, sc, c.path, c.id).Extract(); err != nil || !slices.Equal(tags, []string{"red", "green"}) {
				t.Fatalf("%s: list = %v, %v", c.path, tags, err)
			}
		}
		// Three changes (replace, add, delete; not the same replace again)
		// after the create's revision 1.
		got, err := networks.Get(ctx, sc, n.ID).Extract()
		if err != nil || !slices.Equal(got.Tags, []string{"red", "green"}) || got.RevisionNumber != 4 {
			t.Fatalf("network = %+v, %v", got, err)
		}
		gs, err := subnets.Get(ctx, sc, s.ID).Extract()
		if err != nil || !slices.Equal(gs.Tags, []string{"red", "green"}) || gs.RevisionNumber != 4 {
			t.Fatalf("subnet = %+v, %v", gs, err)
		}
		var names []string
		for _, nw := range listNetworks(t, sc, networks.ListOpts{Tags: "red,green"}) {
			names = append(names, nw.Name)
		}
		if !slices.Equal(names, []string{"tagged"}) {
			t.Fatalf("networks tagged red and green: %v", names)
		}
		if nw := listNetworks(t, sc, networks.ListOpts{Name: "private"}); len(nw) != 1 || nw[0].Tags == nil || len(nw[0].Tags) != 0 {
			t.Fatalf("an untagged network: %+v", nw)
		}
		pages, err := subnets.List(sc, subnets.ListOpts{NotTags: "red"}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if all, _ := subnets.ExtractSubnets(pages); len(all) != 1 || all[0].ID != e.privateSubnet {
			t.Fatalf("subnets not tagged red: %+v", all)
		}

		// Another project does not see them; a shared network's tags are
		// read by all and changed by its project only, nothing written.
		_, err = attributestags.List(ctx, e.client(other), "networks", n.ID).Extract()
		neutronError(t, err, http.StatusNotFound, "TagResourceNotFound", "Resource networks "+n.ID+" could not be found.")
		err = attributestags.Add(ctx, e.client(other), "subnets", s.ID, "x").ExtractErr()
		neutronError(t, err, http.StatusNotFound, "TagResourceNotFound", "Resource subnets "+s.ID+" could not be found.")
		if tags, err := attributestags.List(ctx, sc, "networks", e.private).Extract(); err != nil || len(tags) != 0 {
			t.Fatalf("the shared network's tags: %v, %v", tags, err)
		}
		_, err = attributestags.ReplaceAll(ctx, sc, "networks", e.private, attributestags.ReplaceAllOpts{Tags: []string{"x"}}).Extract()
		neutronError(t, err, http.StatusForbidden, "PolicyNotAuthorized", "rule:update_network:tags is disallowed by policy")
		err = attributestags.DeleteAll(ctx, sc, "subnets", e.privateSubnet).ExtractErr()
		neutronError(t, err, http.StatusForbidden, "PolicyNotAuthorized", "rule:delete_subnet:tags is disallowed by policy")
		err = attributestags.Add(ctx, sc, "networks", "0b0e8c5e-7c2b-4a6e-9d8e-4b3f1a2c3d4e", "x").ExtractErr()
		neutronError(t, err, http.StatusNotFound, "TagResourceNotFound", "Resource networks 0b0e8c5e-7c2b-4a6e-9d8e-4b3f1a2c3d4e could not be found.")
		if c := e.count("resource_tags"); c != 4 {
			t.Fatalf("%d tags stored; want 4", c)
		}

		// The tags go with their resource: the subnet's with it, the rest
		// with the network (which takes its subnets along).
		if err := subnets.Delete(ctx, sc, s.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if c := e.count("resource_tags"); c != 2 {
			t.Fatalf("%d tags after the subnet's delete; want 2", c)
		}
		s2, err := subnets.Create(ctx, sc, subnets.CreateOpts{NetworkID: n.ID, CIDR: "192.168.78.0/28", IPVersion: 4}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if err := attributestags.Add(ctx, sc, "subnets", s2.ID, "x").ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if err := networks.Delete(ctx, sc, n.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if c := e.count("resource_tags"); c != 0 {
			t.Fatalf("%d tags after the network's delete; want 0", c)
		}
	})
}

// Tags added at once to one resource are all kept: each add reads the
// tags with the resource's row held, so none is lost to another's write
// (PostgreSQL; SQLite runs one write transaction at a time).
func TestConcurrentTagAdds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sc := e.client(demo)
		n, err := networks.Create(ctx, sc, networks.CreateOpts{Name: "busy"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		g, err := groups.Create(ctx, sc, groups.CreateOpts{Name: "busy"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ path, id string }{{"networks", n.ID}, {"security-groups", g.ID}} {
			var want []string
			for i := range 8 {
				want = append(want, fmt.Sprintf("t%d", i))
			}
			var wg sync.WaitGroup
			errs := make(chan error, len(want))
			for _, tag := range want {
				wg.Go(func() { errs <- attributestags.Add(ctx, sc, c.path, c.id, tag).ExtractErr() })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("%s: add: %v", c.path, err)
				}
			}
			got, err := attributestags.List(ctx, sc, c.path, c.id).Extract()
			slices.Sort(got)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("%s: tags %v, %v; want %v", c.path, got, err, want)
			}
		}
	})
}
