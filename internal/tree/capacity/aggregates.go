package capacity

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"unicode"
)

// Bounds of a report's Aggregates. Past them the report says less, never
// something false: a filter that reads it lets the cell through.
const (
	// MaxAggregateValues bounds the metadata values listed. Past it, the
	// keys with the most values are listed in AnyValue instead, most first.
	MaxAggregateValues = 256
	// MaxAggregateKeys bounds the metadata keys. Past it, no metadata is
	// listed and MetadataTruncated is set.
	MaxAggregateKeys = 64
	// MaxProjects bounds Projects. Past it, none is listed and
	// ProjectsTruncated is set.
	MaxProjects = 256
)

// TenantKeyPrefix starts the aggregate metadata keys that isolate hosts to
// projects (Nova's AggregateMultiTenancyIsolation): a host in an aggregate
// with such a key takes only the projects that the values of these keys
// (comma lists) name.
const TenantKeyPrefix = "filter_tenant_id"

// Aggregates is what a report says of the host aggregates of a cell's
// enabled, live hosts. It is a union over the hosts, so it gives the cell
// scheduler necessary conditions only: what no host has, the cell cannot
// offer; whether one host has all that a build asks, the host scheduler
// decides.
type Aggregates struct {
	// Metadata maps each metadata key on some host's aggregates (but the
	// TenantKeyPrefix ones) to its values, sorted. A value is an item of
	// the comma list, trimmed, as Nova's aggregate filters read it.
	Metadata map[string][]string `json:"metadata,omitempty"`
	// AnyValue are keys on some host whose values were too many to list:
	// any value may be there.
	AnyValue []string `json:"any_value,omitempty"`
	// MetadataTruncated says the keys were too many to list: any key, with
	// any value, may be on some host.
	MetadataTruncated bool `json:"metadata_truncated,omitempty"`
	// OpenToAll says some host is in no aggregate with a TenantKeyPrefix
	// key, so every project can land in the cell. Projects is then left
	// out.
	OpenToAll bool `json:"open_to_all,omitempty"`
	// Projects are the projects that the isolated hosts take, sorted.
	Projects []string `json:"projects,omitempty"`
	// ProjectsTruncated says the projects were too many to list: any
	// project may land.
	ProjectsTruncated bool `json:"projects_truncated,omitempty"`
}

// SummariseAggregates is the Aggregates of a cell's enabled, live hosts:
// hosts holds, for each of them, the metadata of every aggregate it is in.
// No host: nil, nothing to say.
func SummariseAggregates(hosts [][]map[string]string) *Aggregates {
	if len(hosts) == 0 {
		return nil
	}
	var acc aggregateSet
	for _, h := range hosts {
		acc.addHost(h)
	}
	return acc.result()
}

// HasKey reports whether some host may have metadata key k, and the values
// it may have: all listed (anyValue false) or not listed (anyValue true).
func (a *Aggregates) HasKey(k string) (values []string, anyValue, ok bool) {
	if a.MetadataTruncated || slices.Contains(a.AnyValue, k) {
		return nil, true, true
	}
	vs, ok := a.Metadata[k]
	return vs, false, ok
}

// TakesProject reports whether project p may land on some host.
func (a *Aggregates) TakesProject(p string) bool {
	if a.OpenToAll || a.ProjectsTruncated {
		return true
	}
	_, ok := slices.BinarySearch(a.Projects, p)
	return ok
}

// mergeAggregates is the Aggregates of reports merged. A report that
// offers room (slots or zones) but says nothing of aggregates (nil) may
// hold any: the merge says nothing either. Reports without room add
// nothing.
func mergeAggregates(reports []Report) *Aggregates {
	var acc aggregateSet
	known := false
	for _, r := range reports {
		if r.Aggregates == nil {
			if len(r.Slots) > 0 || len(r.AvailabilityZones) > 0 || len(r.ZoneSlots) > 0 {
				return nil
			}
			continue
		}
		acc.add(r.Aggregates)
		known = true
	}
	if !known {
		return nil
	}
	return acc.result()
}

// aggregateSet gathers Aggregates without bounds; result bounds them.
type aggregateSet struct {
	meta          map[string]map[string]bool
	anyKeys       map[string]bool
	metaTrunc     bool
	open          bool
	projects      map[string]bool
	projectsTrunc bool
}

func (s *aggregateSet) addValue(k, v string) {
	if s.meta == nil {
		s.meta = map[string]map[string]bool{}
	}
	if s.meta[k] == nil {
		s.meta[k] = map[string]bool{}
	}
	s.meta[k][v] = true
}

func (s *aggregateSet) addProject(p string) {
	if s.projects == nil {
		s.projects = map[string]bool{}
	}
	s.projects[p] = true
}

// addHost adds one host, in the aggregates whose metadata are given.
func (s *aggregateSet) addHost(aggs []map[string]string) {
	isolated := false
	for _, md := range aggs {
		for k, v := range md {
			for _, item := range strings.Split(v, ",") {
				item = strings.TrimFunc(item, pyIsSpace)
				if strings.HasPrefix(k, TenantKeyPrefix) {
					isolated = true
					s.addProject(item)
				} else {
					s.addValue(k, item)
				}
			}
		}
	}
	if !isolated {
		s.open = true
	}
}

// pyIsSpace is whitespace as Python's str.strip sees it (which Nova's
// filters, and the host scheduler's, strip from a metadata item): Go's
// and the separators U+001C..U+001F. Trimming less than they do would
// list a value no host filter sees, and keep a cell from a build.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

func (s *aggregateSet) add(a *Aggregates) {
	for k, vs := range a.Metadata {
		for _, v := range vs {
			s.addValue(k, v)
		}
	}
	for _, k := range a.AnyValue {
		if s.anyKeys == nil {
			s.anyKeys = map[string]bool{}
		}
		s.anyKeys[k] = true
	}
	s.metaTrunc = s.metaTrunc || a.MetadataTruncated
	s.open = s.open || a.OpenToAll
	for _, p := range a.Projects {
		s.addProject(p)
	}
	s.projectsTrunc = s.projectsTrunc || a.ProjectsTruncated
}

func (s *aggregateSet) result() *Aggregates {
	out := &Aggregates{OpenToAll: s.open}
	for k := range s.anyKeys {
		delete(s.meta, k) // any value subsumes the listed ones
	}
	out.MetadataTruncated = s.metaTrunc || len(s.meta)+len(s.anyKeys) > MaxAggregateKeys
	if !out.MetadataTruncated {
		total := 0
		for _, vs := range s.meta {
			total += len(vs)
		}
		// Too many values: the keys with the most stop listing them.
		keys := slices.SortedFunc(maps.Keys(s.meta), func(a, b string) int {
			return cmp.Or(cmp.Compare(len(s.meta[b]), len(s.meta[a])), strings.Compare(a, b))
		})
		for _, k := range keys {
			if total <= MaxAggregateValues {
				break
			}
			total -= len(s.meta[k])
			delete(s.meta, k)
			if s.anyKeys == nil {
				s.anyKeys = map[string]bool{}
			}
			s.anyKeys[k] = true
		}
		if len(s.meta) > 0 {
			out.Metadata = make(map[string][]string, len(s.meta))
			for k, vs := range s.meta {
				out.Metadata[k] = slices.Sorted(maps.Keys(vs))
			}
		}
		if len(s.anyKeys) > 0 {
			out.AnyValue = slices.Sorted(maps.Keys(s.anyKeys))
		}
	}
	if !out.OpenToAll {
		out.ProjectsTruncated = s.projectsTrunc || len(s.projects) > MaxProjects
		if !out.ProjectsTruncated && len(s.projects) > 0 {
			out.Projects = slices.Sorted(maps.Keys(s.projects))
		}
	}
	return out
}
