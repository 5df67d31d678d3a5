package hostsched

import "strings"

// tenantKeyPrefix begins the aggregate metadata keys that list the projects
// an aggregate's hosts are kept for.
const tenantKeyPrefix = "filter_tenant_id"

// AggregateMultiTenancyIsolation keeps the hosts of tenant-isolated
// aggregates for their projects (Nova's AggregateMultiTenancyIsolation).
// When any aggregate of the host has a metadata key beginning with
// "filter_tenant_id" ("filter_tenant_id", "filter_tenant_id_2", ...), the
// request's ProjectID must be one of the comma-separated items of one of
// those keys, over all the host's aggregates; a host with no such key takes
// every project. It does not keep a project out of other hosts.
type AggregateMultiTenancyIsolation struct{}

// Passes implements Filter.
func (AggregateMultiTenancyIsolation) Passes(req *Request, h *Host) bool {
	isolated := false
	for _, md := range h.Aggregates {
		for key, v := range md {
			if !strings.HasPrefix(key, tenantKeyPrefix) {
				continue
			}
			isolated = true
			if anyMetadataItem(v, func(item string) bool { return item == req.ProjectID }) {
				return true
			}
		}
	}
	return !isolated
}
