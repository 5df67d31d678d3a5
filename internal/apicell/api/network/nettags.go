package network

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// networkTags are a network's tags (tags.go): whoever sees the network
// reads them (a shared one's too), its project changes them (Neutron's
// get_network:tags and update_network:tags).
func networkTags(b *base) tagTarget {
	t := tagTarget{path: "networks", name: "networks", member: "network"}
	t.get = func(r *http.Request, q db.Querier, id string, write bool, action string) ([]string, error) {
		c := httpkit.CallerFrom(r.Context())
		n, err := netdb.NetworkByID(r.Context(), q, id)
		if err != nil {
			return nil, t.notFoundAsTag(id, err)
		}
		if !n.VisibleTo(c.ProjectID, c.Admin) {
			return nil, t.notFound(id)
		}
		if write && !c.Admin && n.ProjectID != c.ProjectID {
			return nil, forbidden(action)
		}
		return netdb.Tags(r.Context(), q, netdb.TagNetworks, id)
	}
	t.set = func(r *http.Request, tx *db.Tx, id string, tags []string) error {
		return netdb.SetTags(r.Context(), tx, netdb.TagNetworks, id, tags, b.cfg.Now())
	}
	return t
}

// subnetTags are a subnet's tags: whoever sees the subnet reads them, its
// project or its network's changes them (as update_subnet).
func subnetTags(b *base) tagTarget {
	t := tagTarget{path: "subnets", name: "subnets", member: "subnet"}
	t.get = func(r *http.Request, q db.Querier, id string, write bool, action string) ([]string, error) {
		c := httpkit.CallerFrom(r.Context())
		s, err := netdb.GetSubnet(r.Context(), q, id)
		if err != nil {
			return nil, t.notFoundAsTag(id, err)
		}
		n, err := netdb.NetworkByID(r.Context(), q, s.NetworkID)
		if err != nil {
			n = nil
		}
		if !subnetVisible(s, n, c) {
			return nil, t.notFound(id)
		}
		if write && !c.Admin && !subnetOwner(s, n, c) {
			return nil, forbidden(action)
		}
		return netdb.Tags(r.Context(), q, netdb.TagSubnets, id)
	}
	t.set = func(r *http.Request, tx *db.Tx, id string, tags []string) error {
		return netdb.SetTags(r.Context(), tx, netdb.TagSubnets, id, tags, b.cfg.Now())
	}
	return t
}
