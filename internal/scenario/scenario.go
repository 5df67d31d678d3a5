// Package scenario holds end-to-end scenarios written once against a
// running cell tree and run by more than one harness: in the test's own
// process (internal/testtree) and as separate `cellcloud serve` processes
// (test/integration). A harness offers its tree as a Cloud; a scenario
// drives it only through the public APIs, with gophercloud.
package scenario

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// Cloud is a running cell tree, fresh (no servers), whose API cell is
// ready to build: every compute cell has reported its hosts.
type Cloud interface {
	// ComputeURL is the Compute API's endpoint, ending in "/v2.1/".
	ComputeURL() string
	// AdminToken is an administrator's token, MemberToken an ordinary
	// member's, in a project of its own.
	AdminToken() string
	MemberToken() string
	// ComputeCells are the cells instances can be built in.
	ComputeCells() []Cell
	// AddressCell is the compute cell that handed out a fixed address: the
	// holder of its address block at the API cell ("" for none).
	AddressCell(a netip.Addr) (string, error)
}

// Cell is a compute cell of a Cloud.
type Cell struct {
	// Path is the cell's path, e.g. "api!cell1".
	Path string
}

// Compute is a gophercloud Compute API client of c for token.
func Compute(c Cloud, token string) *gophercloud.ServiceClient {
	pc := &gophercloud.ProviderClient{HTTPClient: http.Client{Timeout: 30 * time.Second}}
	pc.SetToken(token)
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: c.ComputeURL(), ResourceBase: c.ComputeURL(), Type: "compute"}
}
