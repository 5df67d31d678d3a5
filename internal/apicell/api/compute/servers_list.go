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

// GET /servers and /servers/detail read their query as Nova's
// ServersController._get_servers does, up to 2.60: the query schema, the
// filters a member may use (an admin may use any), status, changes-since,
// deleted, tags (2.26), all_tenants, sorting and paging. Filters that are
// regular expressions (name, ip, reservation_id, node, ...) match as
// Python's re.search (ip and ip6: re.match), with Go's syntax.

// listRegexParams are the query parameters Nova's index_query declares as
// regular expressions (each value must compile and not be empty).
var listRegexParams = []string{
	"kernel_id", "ramdisk_id", "hostname", "key_name", "power_state", "node", "flavor", "reservation_id",
	"launched_at", "terminated_at", "availability_zone", "name", "display_name", "description",
	"display_description", "locked_by", "root_device_name", "config_drive", "access_ip_v4", "access_ip_v6",
	"auto_disk_config", "progress", "ip", "ip6", "created_at",
}

// tagFilters are the tag filters of 2.26.
var tagFilters = []string{"tags", "tags-any", "not-tags", "not-tags-any"}

// joinedTableParams may not be filtered on (Nova's
// JOINED_TABLE_QUERY_PARAMS_SERVERS).
var joinedTableParams = []string{"block_device_mapping", "services", "metadata", "system_metadata", "info_cache",
	"security_groups", "pci_devices"}

// validSortKeys are Nova's VALID_SORT_KEYS before 2.73, in its order;
// ignoredSortKeys (SERVER_LIST_IGNORE_SORT_KEY) among them are accepted and
// dropped.
var (
	ignoredSortKeys = []string{
		"architecture", "cell_name", "cleaned", "default_ephemeral_device", "default_swap_device", "deleted",
		"deleted_at", "disable_terminate", "ephemeral_gb", "ephemeral_key_uuid", "id", "key_data", "launched_on",
		"locked", "memory_mb", "os_type", "reservation_id", "root_gb", "shutdown_terminate", "user_data", "vcpus",
		"vm_mode",
	}
	validSortKeys = append([]string{
		"access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone", "config_drive", "created_at",
		"display_description", "display_name", "host", "hostname", "image_ref", "instance_type_id", "kernel_id",
		"key_name", "launch_index", "launched_at", "locked_by", "node", "power_state", "progress", "project_id",
		"ramdisk_id", "root_device_name", "task_state", "terminated_at", "updated_at", "user_id", "uuid", "vm_state",
	}, ignoredSortKeys...)
)

// statusMap is Nova's _STATE_MAP: for each vm_state, the status of each
// task state, "default" for any other.
var statusMap = map[string]map[string]string{
	"active": {"default": "ACTIVE", "rebooting": "REBOOT", "reboot_pending": "REBOOT", "reboot_started": "REBOOT",
		"rebooting_hard": "HARD_REBOOT", "reboot_pending_hard": "HARD_REBOOT", "reboot_started_hard": "HARD_REBOOT",
		"updating_password": "PASSWORD", "rebuilding": "REBUILD", "rebuild_block_device_mapping": "REBUILD",
		"rebuild_spawning": "REBUILD", "migrating": "MIGRATING", "resize_prep": "RESIZE", "resize_migrating": "RESIZE",
		"resize_migrated": "RESIZE", "resize_finish": "RESIZE"},
	"building": {"default": "BUILD"},
	"stopped": {"default": "SHUTOFF", "resize_prep": "RESIZE", "resize_migrating": "RESIZE", "resize_migrated": "RESIZE",
		"resize_finish": "RESIZE", "rebuilding": "REBUILD", "rebuild_block_device_mapping": "REBUILD",
		"rebuild_spawning": "REBUILD"},
	"resized":           {"default": "VERIFY_RESIZE", "resize_reverting": "REVERT_RESIZE"},
	"paused":            {"default": "PAUSED", "migrating": "MIGRATING"},
	"suspended":         {"default": "SUSPENDED"},
	"rescued":           {"default": "RESCUE"},
	"error":             {"default": "ERROR", "rebuilding": "REBUILD", "rebuild_block_device_mapping": "REBUILD", "rebuild_spawning": "REBUILD"},
	"deleted":           {"default": "DELETED"},
	"soft-delete":       {"default": "SOFT_DELETED"},
	"shelved":           {"default": "SHELVED"},
	"shelved_offloaded": {"default": "SHELVED_OFFLOADED"},
}

// statesFromStatus is Nova's task_and_vm_state_from_status: the vm and
// task states (sorted) any of which shows as one of statuses.
func statesFromStatus(statuses []string) (vms, tasks []string) {
	want := map[string]bool{}
	for _, s := range statuses {
		want[strings.ToLower(s)] = true
	}
	vs, ts := map[string]bool{}, map[string]bool{}
	for vm, m := range statusMap {
		for task, status := range m {
			if want[strings.ToLower(status)] {
				vs[vm], ts[task] = true, true
			}
		}
	}
	for v := range vs {
		vms = append(vms, v)
	}
	for t := range ts {
		tasks = append(tasks, t)
	}
	sort.Strings(vms)
	sort.Strings(tasks)
	return vms, tasks
}

// memberFilters are the filters a non-admin may use at the request's
// microversion (Nova's _get_server_search_options); any other is dropped.
func memberFilters(r *http.Request) []string {
	opts := []string{"reservation_id", "name", "status", "image", "flavor", "ip", "changes-since", "all_tenants"}
	if atLeast(r, 5) {
		opts = append(opts, "ip6")
	}
	if atLeast(r, 66) {
		opts = append(opts, "changes-before")
	}
	if atLeast(r, 26) {
		opts = append(opts, tagFilters...)
	}
	return opts
}

// isoTimeRE is the forms the iso8601 library (Nova's parse_isotime) reads.
var isoTimeRE = regexp.MustCompile(`^(\d{4})(?:(?:-(\d{1,2})|(\d{2}))(?:(?:-(\d{1,2})|(\d{2}))(?:[ T](\d{2})(?::?(\d{2}))?(?::?(\d{1,2})(?:[.,](\d+))?)?(Z|[-+]\d{2}(?::?\d{2})?)?)?)?)?$`)

// parseISOTime reads a time as Nova's timeutils.parse_isotime; a time
// without a zone is UTC.
func parseISOTime(s string) (time.Time, bool) {
	m := isoTimeRE.FindStringSubmatch(s)
	if m == nil || (m[3] != "" && m[4] == "" && m[5] == "") {
		// (YYYYMM alone is not a date to iso8601.)
		return time.Time{}, false
	}
	num := func(i int, def int) int {
		if m[i] == "" {
			return def
		}
		n, _ := strconv.Atoi(m[i])
		return n
	}
	year := num(1, 0)
	month := num(2, num(3, 1))
	day := num(4, num(5, 1))
	hour, minute, sec := num(6, 0), num(7, 0), num(8, 0)
	nsec := 0
	if f := m[9]; f != "" {
		f = (f + "000000000")[:9]
		nsec, _ = strconv.Atoi(f)
	}
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	loc := time.UTC
	if z := m[10]; z != "" && z != "Z" {
		digits := strings.ReplaceAll(z[1:], ":", "")
		h, _ := strconv.Atoi(digits[:2])
		mins := 0
		if len(digits) == 4 {
			mins, _ = strconv.Atoi(digits[2:])
		}
		off := h*3600 + mins*60
		if z[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day {
		return time.Time{}, false // 31 February
	}
	return t.UTC(), true
}

// queryInvalid is Nova's message for a query parameter that fails its schema.
func queryInvalid(param, value, format string, args ...any) error {
	return bad("Invalid input for query parameters %s. Value: %s. %s", param, value, fmt.Sprintf(format, args...))
}

// compileRegex compiles a filter's regular expression; anchored, it
// matches at the start only (Python's re.match).
func compileRegex(param, value string, anchored bool) (*regexp.Regexp, error) {
	p := value
	if anchored {
		p = `^(?:` + value + `)`
	}
	re, err := regexp.Compile(p)
	if err != nil || value == "" {
		return nil, queryInvalid(param, value, "%s is not a 'regex'", pyRepr(value))
	}
	return re, nil
}

// listRequest is a list request read: the options for apidb.List, and
// whether the answer is empty without asking (a status that matches
// nothing before 2.38, a flavor the caller cannot see, limit=0).
type listRequest struct {
	opts  apidb.ListOptions
	empty bool
	// sortDirs are the sort directions as given, checked only when the
	// list is really read (as Nova's database layer does).
	sortKeys, sortDirs []string
}

func description(in *apidb.Instance) string {
	if in.Description == nil {
		return ""
	}
	return *in.Description
}

// sortOptions checks the sort directions as Nova's process_sort_params
// does and turns keys and directions into apidb's sort.
func (lr *listRequest) sortOptions() ([]apidb.SortKey, error) {
	for _, d := range lr.sortDirs {
		if d != "asc" && d != "desc" {
			return nil, bad("Invalid input received: Unknown sort direction, must be 'desc' or 'asc'")
		}
	}
	if len(lr.sortDirs) > len(lr.sortKeys) {
		return nil, bad("Invalid input received: Sort direction size exceeds sort key size")
	}
	def := "desc"
	if len(lr.sortDirs) > 0 {
		def = lr.sortDirs[0]
	}
	out := make([]apidb.SortKey, len(lr.sortKeys))
	for i, k := range lr.sortKeys {
		d := def
		if i < len(lr.sortDirs) {
			d = lr.sortDirs[i]
		}
		out[i] = apidb.SortKey{Key: k, Desc: d == "desc"}
	}
	if len(out) == 0 {
		// Only the defaults: created_at, then the tie-breaker, in the
		// first direction given.
		out = []apidb.SortKey{{Key: "created_at", Desc: def == "desc"}}
	}
	return out, nil
}

// listOptions reads a GET /servers query, one group of parameters after
// the other (listQuery's steps, in Nova's order).
func (h *serversHandler) listOptions(r *http.Request, detail bool) (*listRequest, error) {
	lq := &listQuery{h: h, r: r, c: httpkit.CallerFrom(r.Context()), q: r.URL.Query(), detail: detail, lr: &listRequest{}}
	for _, step := range []func() error{
		lq.schema,         // the query schema: limit, regular expressions, dates, sort_key
		lq.filterSet,      // the filters the caller may use
		lq.stateFilters,   // status, vm_state, task_state
		lq.timeFilters,    // changes-since, changes-before, deleted
		lq.tagFilters,     // tags (2.26)
		lq.owner,          // all_tenants, tenant_id, project_id
		lq.sorting,        // sort_key, sort_dir
		lq.exactFilters,   // image, host, user_id, uuid, flavor
		lq.patternFilters, // name, ip and the other regular expressions
	} {
		if err := step(); err != nil {
			return nil, err
		}
		if lq.stop {
			break
		}
	}
	return lq.lr, nil
}

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
// changes-since, sort_key.
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
	for _, v := range q["sort_key"] {
		if !slices.Contains(validSortKeys, v) {
			return queryInvalid("sort_key", v, "%s is not one of %s", pyRepr(v), pyList(validSortKeys))
		}
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

// stateFilters reads status (or an admin's vm_state) and task_state.
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
	} else if lq.c.Admin {
		if v := lq.get("vm_state"); lq.opts.Has("vm_state") {
			o.VMStates = []string{v}
		}
	}
	if lq.c.Admin && lq.opts.Has("task_state") && o.TaskStates == nil {
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
	var kept []string
	for _, k := range keys {
		if slices.Contains(ignoredSortKeys, k) {
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
// host, user_id and uuid, and flavor (a flavor the caller cannot see
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
		o.UserID = lq.get("user_id")
		o.UUID = lq.get("uuid")
	}
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

// patternFields are the fields the regular expression filters match, by
// filter.
var patternFields = map[string]func(*apidb.Instance) string{
	"name":                func(in *apidb.Instance) string { return in.Name },
	"display_name":        func(in *apidb.Instance) string { return in.Name },
	"reservation_id":      func(in *apidb.Instance) string { return in.ReservationID },
	"node":                func(in *apidb.Instance) string { return in.Node },
	"key_name":            func(in *apidb.Instance) string { return in.KeyName },
	"availability_zone":   func(in *apidb.Instance) string { return in.AvailabilityZone },
	"locked_by":           func(in *apidb.Instance) string { return in.LockedBy },
	"access_ip_v4":        func(in *apidb.Instance) string { return in.AccessIPv4 },
	"access_ip_v6":        func(in *apidb.Instance) string { return in.AccessIPv6 },
	"description":         description,
	"display_description": description,
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
