package hostsched

import "strings"

// A host's aggregate metadata as Nova's aggregate filters read it
// (nova.scheduler.filters.utils.aggregate_metadata_get_by_host): the union
// over the host's aggregates, each key mapping to the set of the
// comma-separated items of its values, each item stripped of surrounding
// whitespace. The helpers here walk Host.Aggregates in place instead of
// building that map, so a filter allocates nothing per host.

// anyMetadataItem reports whether match holds for an item of the aggregate
// metadata value v: v split at commas, each part stripped of surrounding
// whitespace as Python's str.strip does. A value always has at least one
// item, "" for an empty value.
func anyMetadataItem(v string, match func(item string) bool) bool {
	for {
		item, rest, more := strings.Cut(v, ",")
		if match(strings.TrimFunc(item, pyIsSpace)) {
			return true
		}
		if !more {
			return false
		}
		v = rest
	}
}

// anyHostMetadataItem reports whether match holds for an item of key's
// value in any of h's aggregates; false when none of them has key.
func anyHostMetadataItem(h *Host, key string, match func(item string) bool) bool {
	for _, md := range h.Aggregates {
		if v, ok := md[key]; ok && anyMetadataItem(v, match) {
			return true
		}
	}
	return false
}
