package compute

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
)

// The readers of a GET /servers query: listQuery's steps, which
// listOptions (servers_list.go) runs in Nova's order.

// listQuery is a GET /servers query being read into lr.
type listQuery struct {
	h      *serversHandler
	r      *http.Request
	c      httpkit.Caller
	detail bool
	// q is the whole query; opts the filters the caller may use.
	q, opts url.Values
	lr      *listRequest
	// fromStatus says the states came from status; allTenants that the
	// caller lists every project's servers.
	fromStatus, allTenants bool
	// stop ends the reading: the answer is known to be empty.
	stop bool
}

// get is a filter's value (the last one given).
func (lq *listQuery) get(k string) string { return lastValue(lq.opts, k) }

// schema checks the query schema: limit, regular expressions,
// changes-since, changes-before (2.66), sort_key (locked from 2.73, the
// ignored keys refused from 2.75), and from 2.75 no parameter it does not
// name.
func (lq *listQuery) schema() error {
	q, o := lq.q, &lq.lr.opts
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	o.Limit = limit
	lq.lr.empty = limit == 0
	o.Marker = lastValue(q, "marker")
	regexParams := listRegexParams
	if atLeast(lq.r, 26) {
		regexParams = append(slices.Clone(regexParams), tagFilters...)
	}
	for _, p := range regexParams {
		for _, v := range q[p] {
			if _, err := compileRegex(p, v, false); err != nil {
				return err
			}
		}
	}
	for _, v := range q["changes-since"] {
		if _, ok := parseISOTime(v); !ok {
			return queryInvalid("changes-since", v, "%s is not a 'date-time'", pyRepr(v))
		}
	}
	if atLeast(lq.r, 66) {
		for _, v := range q["changes-before"] {
			if _, ok := parseISOTime(v); !ok {
				return queryInvalid("changes-before", v, "%s is not a 'date-time'", pyRepr(v))
			}
		}
	} else {
		// Before 2.66 the legacy schema drops it.
		q.Del("changes-before")
	}
	keys := sortKeysAt(lq.r)
	for _, v := range q["sort_key"] {
		if !slices.Contains(keys, v) {
			return queryInvalid("sort_key", v, "%s is not one of %s", pyRepr(v), pyList(keys))
		}
	}
	if atLeast(lq.r, 75) {
		// From 2.75 the schema allows no other parameters but those
		// starting with "_" (its patternProperties), which filterSet
		// refuses as an admin's filters.
		plain := url.Values{}
		for k, v := range q {
			if !strings.HasPrefix(k, "_") {
				plain[k] = v
			}
		}
		if err := checkQuery(plain, listQueryParams(lq.r)...); err != nil {
			return err
		}
	} else if !atLeast(lq.r, 73) {
		// Before 2.73 the schema has no locked: it is dropped.
		q.Del("locked")
	}
	return nil
}

// filterSet picks the filters: a member's are limited to memberFilters;
// an admin's are all but paging and sorting.
func (lq *listQuery) filterSet() error {
	lq.opts = url.Values{}
	allowed := memberFilters(lq.r)
	for k, v := range lq.q {
		if k == "limit" || k == "marker" || k == "sort_key" || k == "sort_dir" {
			continue
		}
		if lq.c.Admin || slices.Contains(allowed, k) {
			lq.opts[k] = v
		}
	}
	var refused []string
	for k := range lq.opts {
		if slices.Contains(joinedTableParams, k) || strings.HasPrefix(k, "_") {
			refused = append(refused, k)
		}
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return bad("Invalid filter field: %s.", refused[0])
	}
	return nil
}

// stateFilters reads status (or vm_state) and task_state; vm_state and
// task_state are an admin's, and from 2.83 a member's too.
func (lq *listQuery) stateFilters() error {
	o := &lq.lr.opts
	if statuses := lq.q["status"]; len(statuses) > 0 {
		vms, tasks := statesFromStatus(statuses)
		if len(vms) == 0 && len(tasks) == 0 {
			if atLeast(lq.r, 38) {
				return bad("Invalid status value")
			}
			// Before 2.38 such a status lists nothing, before any
			// further check.
			lq.lr.empty, lq.stop = true, true
			return nil
		}
		o.VMStates = vms
		if !slices.Contains(tasks, "default") {
			o.TaskStates = tasks
		}
		lq.fromStatus = true
	} else if v := lq.get("vm_state"); lq.opts.Has("vm_state") {
		// An admin's, or from 2.83 a member's (filterSet keeps it).
		o.VMStates = []string{v}
	}
	if lq.opts.Has("task_state") && o.TaskStates == nil {
		o.TaskStates = []string{lq.get("task_state")}
	}
	return nil
}

// timeFilters reads changes-since and changes-before, and which deleted
// servers are listed: with changes-since or changes-before, or when an
// admin asks.
func (lq *listQuery) timeFilters() error {
	o, opts := &lq.lr.opts, lq.opts
	if opts.Has("changes-since") {
		o.ChangesSince, _ = parseISOTime(lq.get("changes-since"))
	}
	if opts.Has("changes-before") {
		o.ChangesBefore, _ = parseISOTime(lq.get("changes-before"))
		if !o.ChangesSince.IsZero() && o.ChangesBefore.Before(o.ChangesSince) {
			return bad("The value of changes-since must be less than or equal to changes-before.")
		}
	}
	switch {
	case opts.Has("deleted"):
		v, err := strictBool(lq.get("deleted"))
		o.OnlyDeleted = err == nil && v
	case opts.Has("changes-since"), opts.Has("changes-before"):
		o.IncludeDeleted = true
	}
	if lq.fromStatus && slices.Equal(o.VMStates, []string{"deleted"}) {
		if !lq.c.Admin {
			return forbidden2("Only administrators may list deleted instances")
		}
		o.OnlyDeleted, o.IncludeDeleted = true, false
	}
	return nil
}

// tagFilters reads tags, tags-any, not-tags and not-tags-any (2.26).
func (lq *listQuery) tagFilters() error {
	if !atLeast(lq.r, 26) {
		return nil
	}
	o := &lq.lr.opts
	into := map[string]*[]string{"tags": &o.Tags, "tags-any": &o.TagsAny, "not-tags": &o.NotTags, "not-tags-any": &o.NotTagsAny}
	for _, f := range tagFilters {
		if lq.opts.Has(f) {
			*into[f] = strings.Split(lq.get(f), ",")
		}
	}
	return nil
}

// owner reads whose servers are listed: the caller's project's, or with
// all_tenants (when policy allows) every project's or the one named.
func (lq *listQuery) owner() error {
	o, opts := &lq.lr.opts, lq.opts
	if opts.Has("all_tenants") {
		lq.allTenants = true
		if v := lq.get("all_tenants"); v != "" {
			var err error
			if lq.allTenants, err = strictBool(v); err != nil {
				return err
			}
		}
	}
	// Nova reads locked (2.73) between all_tenants' value and its
	// policy check.
	if lq.opts.Has("locked") {
		locked, err := strictBool(lq.get("locked"))
		if err != nil {
			return err
		}
		o.Locked = &locked
	}
	if !lq.allTenants {
		o.ProjectID = lq.c.ProjectID
		return nil
	}
	rule := "index"
	if lq.detail {
		rule = "detail"
	}
	if err := lq.h.authorize(lq.r.Context(), fmt.Sprintf("os_compute_api:servers:%s:get_all_tenants", rule), nil); err != nil {
		return err
	}
	o.ProjectID = lq.get("tenant_id")
	if opts.Has("project_id") {
		o.ProjectID = lq.get("project_id")
	}
	return nil
}

// sorting reads the sort keys and directions: Nova's get_sort_params,
// then remove_invalid_sort_keys.
func (lq *listQuery) sorting() error {
	keys, dirs := []string{}, []string{}
	for _, k := range lq.q["sort_key"] {
		keys = append(keys, strings.TrimSpace(k))
	}
	for _, d := range lq.q["sort_dir"] {
		dirs = append(dirs, strings.TrimSpace(d))
	}
	if len(keys) == 0 {
		keys = []string{"created_at"}
	}
	if len(dirs) == 0 {
		dirs = []string{"desc"}
	}
	ignored := ignoredSortKeys
	if atLeast(lq.r, 73) {
		ignored = ignoredSortKeysV273
	}
	var kept []string
	for _, k := range keys {
		if slices.Contains(ignored, k) {
			// Drop the key, and its direction if it has one.
			if j := len(kept); j < len(dirs) {
				dirs = slices.Delete(dirs, j, j+1)
			}
			continue
		}
		if (k == "host" || k == "node") && !lq.c.Admin {
			return forbidden2("Only administrators can sort servers by " + k)
		}
		kept = append(kept, k)
	}
	lq.lr.sortKeys, lq.lr.sortDirs = kept, dirs
	return nil
}

// exactFilters reads the filters that match exactly: image, an admin's
// host and uuid, user_id (an admin's, a member's from 2.83), and flavor (a flavor the caller cannot see
// lists nothing).
func (lq *listQuery) exactFilters() error {
	o, opts := &lq.lr.opts, lq.opts
	if opts.Has("image") {
		o.ImageRef = lq.get("image")
	} else if opts.Has("image_ref") {
		o.ImageRef = lq.get("image_ref")
	}
	if lq.c.Admin {
		o.Host = lq.get("host")
		o.UUID = lq.get("uuid")
	}
	// An admin's, and from 2.83 a member's (filterSet keeps it).
	o.UserID = lq.get("user_id")
	if !opts.Has("flavor") {
		return nil
	}
	ctx := lq.r.Context()
	viewer := flavorViewer(ctx)
	if lq.allTenants {
		viewer.Admin = true // Nova looks it up with the elevated context
	}
	f, err := apidb.GetFlavorDetail(ctx, lq.h.cfg.DB, lq.get("flavor"), viewer)
	switch {
	case isNotFound(err):
		lq.lr.empty = true
	case err != nil:
		return err
	default:
		o.FlavorID = f.ID
	}
	return nil
}

func description(in *apidb.Instance) string {
	if in.Description == nil {
		return ""
	}
	return *in.Description
}

// patternFields are the fields the regular expression filters match, by
// filter.
var patternFields = map[string]func(*apidb.Instance) string{
	"name":                func(in *apidb.Instance) string { return in.Name },
	"display_name":        func(in *apidb.Instance) string { return in.Name },
	"reservation_id":      func(in *apidb.Instance) string { return in.ReservationID },
	"hostname":            (*apidb.Instance).HostnameOf,
	"node":                func(in *apidb.Instance) string { return in.Node },
	"key_name":            func(in *apidb.Instance) string { return in.KeyName },
	"availability_zone":   func(in *apidb.Instance) string { return in.AvailabilityZone },
	"locked_by":           func(in *apidb.Instance) string { return in.LockedBy },
	"access_ip_v4":        func(in *apidb.Instance) string { return in.AccessIPv4 },
	"access_ip_v6":        func(in *apidb.Instance) string { return in.AccessIPv6 },
	"description":         description,
	"display_description": description,
	// Nova matches these columns' text as the database gives it: an
	// integer's digits, a time as MySQL's DATETIME ("2006-01-02
	// 15:04:05"). config_drive is never set here ("", as the view shows)
	// and progress is 0, as the view shows.
	"power_state":   func(in *apidb.Instance) string { return strconv.Itoa(in.PowerState) },
	"progress":      func(*apidb.Instance) string { return "0" },
	"config_drive":  func(*apidb.Instance) string { return "" },
	"created_at":    func(in *apidb.Instance) string { return dbTime(in.CreatedAt) },
	"launched_at":   func(in *apidb.Instance) string { return dbTime(in.LaunchedAt) },
	"terminated_at": func(in *apidb.Instance) string { return dbTime(in.DeletedAt) },
}

// dbTime is t as a MySQL DATETIME's text, "" for none (NULL).
func dbTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateTime)
}

// patternFilters reads the regular expression filters, applied in order
// as the rows come (ip and ip6 match an address of the server).
func (lq *listQuery) patternFilters() error {
	type reFilter struct {
		re    *regexp.Regexp
		field func(*apidb.Instance) string
	}
	var res []reFilter
	names := make([]string, 0, len(patternFields))
	for k := range patternFields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !lq.opts.Has(k) {
			continue
		}
		re, err := compileRegex(k, lq.get(k), false)
		if err != nil {
			return err
		}
		res = append(res, reFilter{re, patternFields[k]})
	}
	var ip4, ip6 *regexp.Regexp
	var err error
	if lq.opts.Has("ip") {
		if ip4, err = compileRegex("ip", lq.get("ip"), true); err != nil {
			return err
		}
	}
	if lq.opts.Has("ip6") {
		if ip6, err = compileRegex("ip6", lq.get("ip6"), true); err != nil {
			return err
		}
	}
	if len(res) == 0 && ip4 == nil && ip6 == nil {
		return nil
	}
	lq.lr.opts.Match = func(in *apidb.Instance) bool {
		for _, f := range res {
			// A field that is not set (NULL in Nova) matches nothing.
			v := f.field(in)
			if v == "" || !f.re.MatchString(v) {
				return false
			}
		}
		if ip4 == nil && ip6 == nil {
			return true
		}
		for _, ad := range in.Addresses {
			if (ad.Version == 4 && ip4 != nil && ip4.MatchString(ad.Addr)) ||
				(ad.Version == 6 && ip6 != nil && ip6.MatchString(ad.Addr)) {
				return true
			}
		}
		return false
	}
	return nil
}
