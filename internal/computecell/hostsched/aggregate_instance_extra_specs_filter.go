package hostsched

import "strings"

// aggregateExtraSpecsScope is the extra spec scope that
// AggregateInstanceExtraSpecsFilter reads.
const aggregateExtraSpecsScope = "aggregate_instance_extra_specs"

// AggregateInstanceExtraSpecsFilter matches the flavor's extra specs
// against the metadata of the host's aggregates (Nova's
// AggregateInstanceExtraSpecsFilter). It reads the extra specs scoped
// "aggregate_instance_extra_specs:KEY" and, for compatibility, the unscoped
// ones ("KEY"); a key with any other scope ("hw:cpu_policy") is not its
// business. For each spec it reads, some aggregate of the host must have
// KEY in its metadata with an item (the value split at commas) that
// satisfies the spec's value (matchExtraSpec: "<or> ssd <or> nvme",
// ">= 2", or a plain value to equal). The scope is cut at the first colon
// only, so "aggregate_instance_extra_specs:a:b" reads key "a:b".
// A request without extra specs passes every host.
type AggregateInstanceExtraSpecsFilter struct{}

// Passes implements Filter.
func (AggregateInstanceExtraSpecsFilter) Passes(req *Request, h *Host) bool {
	for key, want := range req.ExtraSpecs {
		if scope, name, scoped := strings.Cut(key, ":"); scoped {
			if scope != aggregateExtraSpecsScope {
				continue
			}
			key = name
		}
		if !anyHostMetadataItem(h, key, func(item string) bool { return matchExtraSpec(item, want) }) {
			return false
		}
	}
	return true
}
