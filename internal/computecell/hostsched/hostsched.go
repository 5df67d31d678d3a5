// Package hostsched is the host scheduler of a compute cell: filters and
// weighers over live host state. It is pure logic; the scheduler role reads
// host state from the cell database, and the conductor (or, for a move, the
// instance operations) takes the claim on the host chosen.
package hostsched

import (
	"errors"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

// ErrNoValidHost mirrors Nova's NoValidHost.
var ErrNoValidHost = errors.New("no valid host was found")

// Host is the scheduler's view of one compute host.
type Host struct {
	Name             string
	AvailabilityZone string
	Enabled          bool
	Up               bool
	TotalVCPUs       int
	UsedVCPUs        int
	TotalRAMMB       int64
	UsedRAMMB        int64
	TotalDiskGB      int64
	UsedDiskGB       int64
	// Allocation ratios; zero means 1.0.
	CPURatio  float64
	RAMRatio  float64
	DiskRatio float64
	Instances int
	// Aggregates are the metadata of each host aggregate the host is in
	// (what the cell holds of the API cell's os-aggregates), for the
	// aggregate filters. The ratios above are already the aggregates'
	// (cpu_allocation_ratio, ... metadata) where they have them.
	Aggregates []map[string]string `json:",omitempty"`
}

// Request is a set of instances of one flavor to place.
type Request struct {
	Flavor           capacity.Flavor
	NumInstances     int
	AvailabilityZone string
	// IgnoreHosts are hosts that already failed this build (the retry filter).
	IgnoreHosts []string
	// Group is the server group the instances join, with the hosts its
	// members already use in this cell; nil for none. Select counts each
	// instance it places into (a copy of) it, so the next instance sees it.
	Group *Group `json:",omitempty"`
	// ProjectID is the project the instances are built for (the
	// aggregate multi-tenancy isolation).
	ProjectID string `json:",omitempty"`
	// ExtraSpecs are the flavor's extra specs (the aggregate instance
	// extra specs filter).
	ExtraSpecs map[string]string `json:",omitempty"`
	// ImageProperties are the properties of the image booted (the
	// aggregate image properties isolation).
	ImageProperties map[string]string `json:",omitempty"`
	// ForcedHost and ForcedNode are an admin's availability_zone
	// "zone:host:node" (or "zone:host", "zone::node"): the build goes to
	// that host (node) without the filters, as Nova's force_hosts.
	ForcedHost string `json:",omitempty"`
	ForcedNode string `json:",omitempty"`
	// RequestedHost and RequestedNode are an admin's requested destination
	// (the Compute API's host and hypervisor_hostname, 2.74; Nova's
	// requested_destination): only that host (node) is considered, but
	// through the filters and weighers, unlike a forced one.
	RequestedHost string `json:",omitempty"`
	RequestedNode string `json:",omitempty"`
}

// Filter decides whether a host can take one more instance of the request.
type Filter interface {
	Passes(req *Request, h *Host) bool
}

// Weigher scores a host; higher is better.
type Weigher interface {
	Weigh(req *Request, h *Host) float64
}
