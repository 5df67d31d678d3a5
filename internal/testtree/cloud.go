package testtree

import (
	"fmt"
	"net/netip"

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
		if cfg.Network.CIDR == "" {
			continue // a routing cell
		}
		p, err := netip.ParsePrefix(cfg.Network.CIDR)
		if err != nil {
			panic(fmt.Sprintf("cell %s: network %q: %v", cfg.Cell, cfg.Network.CIDR, err))
		}
		out = append(out, scenario.Cell{Path: cfg.Cell, Network: p})
	}
	return out
}
