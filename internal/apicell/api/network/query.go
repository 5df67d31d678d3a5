package network

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// kind is the type of a filterable or sortable attribute.
type kind int

const (
	kString kind = iota
	kBool
	kInt
	kList  // a list of strings: matches when any element is asked for
	kMAC   // a MAC address: compared without case
	kFixed // a port's fixed_ips: "ip_address=…", "subnet_id=…", "ip_address_substr=…"
)

// collection describes a resource for lists: what may be filtered on and
// sorted by (Neutron's is_filter and is_sort_key), which attributes are
// kept only for filtering (not shown), and what an unknown marker is.
type collection struct {
	name     string // "networks"
	filters  map[string]kind
	sorts    map[string]bool
	hidden   map[string]bool
	notFound func(id string) error
	// tagged says the items have "tags" ([]string) that the tag filters
	// apply to; other resources have no tags.
	tagged bool
}

// tag filters (standard-attr-tag), each a comma-separated list of tags.
var tagFilters = map[string]bool{"tags": true, "tags-any": true, "not-tags": true, "not-tags-any": true}

// query is a parsed list request.
type query struct {
	filters     map[string][]any
	tags        map[string]bool // tag filters asked for
	tagged      bool
	tagValues   map[string][]string
	fields      []string
	sorts       []sortKey
	limit       int
	marker      string
	pageReverse bool
}

type sortKey struct {
	key string
	asc bool
}

// reprList renders keys as Python prints a list, as Neutron's messages do.
func reprList(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = "'" + k + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// parseQuery reads filters, fields, sorting and paging from a list's query
// string, refusing what Neutron (with filter validation) refuses.
func parseQuery(v url.Values, c *collection) (*query, error) {
	q := &query{filters: map[string][]any{}, tags: map[string]bool{}, tagged: c.tagged, tagValues: map[string][]string{}}
	var invalid []string
	for key, vals := range v {
		switch key {
		case "fields":
			for _, f := range vals {
				if f != "" {
					q.fields = append(q.fields, f)
				}
			}
			continue
		case "sort_key", "sort_dir", "limit", "marker", "page_reverse":
			continue
		}
		var nonEmpty []string
		for _, s := range vals {
			if s != "" {
				nonEmpty = append(nonEmpty, s)
			}
		}
		if tagFilters[key] {
			for _, s := range nonEmpty {
				for _, t := range strings.Split(s, ",") {
					if t != "" {
						q.tags[key] = true
						q.tagValues[key] = append(q.tagValues[key], t)
					}
				}
			}
			continue
		}
		k, ok := c.filters[key]
		if !ok {
			invalid = append(invalid, key)
			continue
		}
		if len(nonEmpty) == 0 {
			continue
		}
		conv, err := convertFilter(key, k, nonEmpty)
		if err != nil {
			return nil, err
		}
		q.filters[key] = conv
	}
	if len(invalid) > 0 {
		slices.Sort(invalid)
		return nil, badRequest("%s is invalid attribute for filtering", reprList(invalid))
	}

	keys, dirs := nonEmptyValues(v["sort_key"]), nonEmptyValues(v["sort_dir"])
	if len(keys) != len(dirs) {
		return nil, badRequest("The number of sort_keys and sort_dirs must be same")
	}
	var badKeys, badDirs []string
	for _, k := range keys {
		if !c.sorts[k] {
			badKeys = append(badKeys, k)
		}
	}
	if len(badKeys) > 0 {
		return nil, badRequest("%s is invalid attribute for sort_keys", reprList(badKeys))
	}
	for _, d := range dirs {
		if d != "asc" && d != "desc" {
			badDirs = append(badDirs, d)
		}
	}
	if len(badDirs) > 0 {
		return nil, badRequest("%s is invalid value for sort_dirs, valid value is 'asc' and 'desc'", reprList(badDirs))
	}
	hasID := false
	for i, k := range keys {
		q.sorts = append(q.sorts, sortKey{k, dirs[i] == "asc"})
		hasID = hasID || k == "id"
	}
	if !hasID {
		q.sorts = append(q.sorts, sortKey{"id", true})
	}

	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fault(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Bad limit request: Limit must be an integer 0 or greater and not '%s'.", s))
		}
		q.limit = n
	}
	q.marker = v.Get("marker")
	q.pageReverse = strings.EqualFold(v.Get("page_reverse"), "true")
	return q, nil
}

func nonEmptyValues(vs []string) []string {
	var out []string
	for _, s := range vs {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// convertFilter turns a filter's values into the attribute's type.
func convertFilter(key string, k kind, vals []string) ([]any, error) {
	out := make([]any, 0, len(vals))
	for _, s := range vals {
		switch k {
		case kBool:
			b, ok := parseBool(s)
			if !ok {
				return nil, badAttr("InvalidInput", key, fmt.Sprintf("'%s' cannot be converted to boolean", s))
			}
			out = append(out, b)
		case kInt:
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return nil, badAttr("InvalidInput", key, fmt.Sprintf("'%s' is not an integer", s))
			}
			out = append(out, n)
		case kMAC:
			out = append(out, strings.ToLower(s))
		case kFixed:
			name, val, ok := strings.Cut(s, "=")
			if !ok {
				return nil, badAttr("InvalidInput", key, fmt.Sprintf("'%s' is not of the form <key>=[value]", s))
			}
			if name != "ip_address" && name != "subnet_id" && name != "ip_address_substr" {
				return nil, badAttr("InvalidInput", key, fmt.Sprintf("'%s' is not a fixed_ips filter: use ip_address, ip_address_substr or subnet_id", name))
			}
			out = append(out, [2]string{name, val})
		default:
			out = append(out, s)
		}
	}
	return out, nil
}

// item is one resource as the caller may see it; attributes in the
// collection's hidden set are only for filtering.
type item map[string]any

func (q *query) matches(it item) bool {
	if q.tagged {
		if !matchTags(it["tags"], q.tagValues) {
			return false
		}
	} else if q.tags["tags"] || q.tags["tags-any"] {
		return false
	}
	for key, want := range q.filters {
		have, ok := it[key]
		if !ok || !matchOne(key, have, want) {
			return false
		}
	}
	return true
}

// matchTags applies Neutron's tag filters: tags (has all), tags-any (has
// one), not-tags (lacks one), not-tags-any (has none).
func matchTags(have any, want map[string][]string) bool {
	tags, _ := have.([]string)
	hasAll := func(ts []string) bool {
		for _, t := range ts {
			if !slices.Contains(tags, t) {
				return false
			}
		}
		return true
	}
	hasAny := func(ts []string) bool {
		return slices.ContainsFunc(ts, func(t string) bool { return slices.Contains(tags, t) })
	}
	if ts := want["tags"]; len(ts) > 0 && !hasAll(ts) {
		return false
	}
	if ts := want["tags-any"]; len(ts) > 0 && !hasAny(ts) {
		return false
	}
	if ts := want["not-tags"]; len(ts) > 0 && hasAll(ts) {
		return false
	}
	if ts := want["not-tags-any"]; len(ts) > 0 && hasAny(ts) {
		return false
	}
	return true
}

func matchOne(key string, have any, want []any) bool {
	if key == "fixed_ips" {
		return matchFixedIPs(have, want)
	}
	for _, w := range want {
		switch h := have.(type) {
		case string:
			if ws, ok := w.(string); ok && (h == ws || strings.EqualFold(h, ws) && key == "mac_address") {
				return true
			}
		case bool:
			if h == w {
				return true
			}
		case int:
			if int64(h) == w {
				return true
			}
		case int64:
			if h == w {
				return true
			}
		case []string:
			if slices.Contains(h, w.(string)) {
				return true
			}
		}
	}
	return false
}

// matchFixedIPs matches when one of the port's fixed IPs meets every kind
// of condition given (each kind: any of its values), as Neutron's query on
// IP allocations does.
func matchFixedIPs(have any, want []any) bool {
	ips, _ := have.([]map[string]any)
	for _, ip := range ips {
		addr, _ := ip["ip_address"].(string)
		sub, _ := ip["subnet_id"].(string)
		ok := map[string]bool{}
		asked := map[string]bool{}
		for _, w := range want {
			kv := w.([2]string)
			asked[kv[0]] = true
			switch kv[0] {
			case "ip_address":
				ok[kv[0]] = ok[kv[0]] || addr == kv[1]
			case "subnet_id":
				ok[kv[0]] = ok[kv[0]] || sub == kv[1]
			case "ip_address_substr":
				ok[kv[0]] = ok[kv[0]] || strings.Contains(addr, kv[1])
			}
		}
		all := true
		for k := range asked {
			all = all && ok[k]
		}
		if all {
			return true
		}
	}
	return false
}

func compareValues(a, b any) int {
	switch x := a.(type) {
	case nil:
		if b == nil {
			return 0
		}
		return -1
	case string:
		if y, ok := b.(string); ok {
			return cmp.Compare(x, y)
		}
	case bool:
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0
			case !x:
				return -1
			}
			return 1
		}
	case int:
		if y, ok := b.(int); ok {
			return cmp.Compare(x, y)
		}
	case int64:
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
	}
	if b == nil {
		return 1
	}
	return cmp.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

func (q *query) compare(a, b item) int {
	for _, s := range q.sorts {
		if c := compareValues(a[s.key], b[s.key]); c != 0 {
			if !s.asc {
				return -c
			}
			return c
		}
	}
	return 0
}

// page is one answer to a list: the items to show and the paging links.
type page struct {
	items []item
	links []map[string]string
}

// apply filters, sorts and pages the items the caller may see.
func (q *query) apply(r *http.Request, c *collection, all []item) (*page, error) {
	slices.SortStableFunc(all, q.compare)
	var after item
	if q.marker != "" {
		i := slices.IndexFunc(all, func(it item) bool { return it["id"] == q.marker })
		if i < 0 {
			return nil, c.notFound(q.marker)
		}
		after = all[i]
	}
	var out []item
	for _, it := range all {
		if !q.matches(it) {
			continue
		}
		if after != nil {
			c := q.compare(it, after)
			if (!q.pageReverse && c <= 0) || (q.pageReverse && c >= 0) {
				continue
			}
		}
		out = append(out, it)
	}
	if q.limit > 0 && len(out) > q.limit {
		if q.pageReverse {
			out = out[len(out)-q.limit:]
		} else {
			out = out[:q.limit]
		}
	}
	p := &page{items: out}
	if q.limit > 0 {
		p.links = q.links(r, out)
	}
	return p, nil
}

// links are Neutron's "next" and "previous" links of a page.
func (q *query) links(r *http.Request, items []item) []map[string]string {
	var out []map[string]string
	self := baseURL(r) + r.URL.Path
	if !(len(items) < q.limit && !q.pageReverse) {
		v := cloneValues(r.URL.Query())
		v.Del("marker")
		v.Del("page_reverse")
		if len(items) > 0 {
			v.Set("marker", fmt.Sprint(items[len(items)-1]["id"]))
		}
		out = append(out, map[string]string{"rel": "next", "href": self + "?" + v.Encode()})
	}
	if !(len(items) < q.limit && q.pageReverse) {
		v := cloneValues(r.URL.Query())
		v.Del("marker")
		if len(items) > 0 {
			v.Set("marker", fmt.Sprint(items[0]["id"]))
		}
		v.Set("page_reverse", "True")
		out = append(out, map[string]string{"rel": "previous", "href": self + "?" + v.Encode()})
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// view is what the caller gets of an item: hidden attributes dropped, and
// only the fields asked for, if any.
func view(it item, c *collection, fields []string) map[string]any {
	out := make(map[string]any, len(it))
	if len(fields) > 0 {
		for _, f := range fields {
			if v, ok := it[f]; ok && !c.hidden[f] {
				out[f] = v
			}
		}
		return out
	}
	for k, v := range it {
		if !c.hidden[k] {
			out[k] = v
		}
	}
	return out
}

// writeList answers a list.
func writeList(w http.ResponseWriter, c *collection, q *query, p *page) {
	views := make([]map[string]any, 0, len(p.items))
	for _, it := range p.items {
		views = append(views, view(it, c, q.fields))
	}
	body := map[string]any{c.name: views}
	if len(p.links) > 0 {
		body[c.name+"_links"] = p.links
	}
	httpkit.WriteJSON(w, http.StatusOK, body)
}

// showFields are the fields a show asks for (fields=…).
func showFields(r *http.Request) []string { return nonEmptyValues(r.URL.Query()["fields"]) }
