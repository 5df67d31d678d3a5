package testtree

import (
	"context"
	"net/netip"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/scenario"
)

// The tree is a scenario.Cloud, so the scenarios written once run in
// process too.
var _ scenario.Cloud = (*Tree)(nil)

// ComputeURL is the Compute API's endpoint, ending in "/v2.1/".
func (tr *Tree) ComputeURL() string { return tr.APIURL() + "/" }

// AdminToken is the noauth token of an administrator.
func (tr *Tree) AdminToken() string { return "admin:admin" }

// MemberToken is the noauth token of a member of project demo.
func (tr *Tree) MemberToken() string { return "demo:demo" }

// ComputeCells are the tree's compute cells, in the order they started,
// with their networks.
func (tr *Tree) ComputeCells() []scenario.Cell {
	var out []scenario.Cell
	for _, n := range tr.Cells {
		cfg := n.Config()
		if !cfg.Has(config.RoleCompute) {
			continue // a routing cell
		}
		out = append(out, scenario.Cell{Path: cfg.Cell})
	}
	return out
}

// AddressCell is the compute cell that handed out a: the holder of its
// block in the API cell's database.
func (tr *Tree) AddressCell(a netip.Addr) (string, error) {
	return netdb.AddressHolder(context.Background(), tr.API.DB, a)
}
