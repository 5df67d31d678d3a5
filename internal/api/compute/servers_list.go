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

	"github.com/cellcloud/cellcloud/internal/apidb"
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

// boolStrings are oslo's bool_from_string values.
var (
	trueStrings  = []string{"1", "t", "true", "on", "y", "yes"}
	falseStrings = []string{"0", "f", "false", "off", "n", "no"}
)

// strictBool is oslo's bool_from_string(s, strict=True).
func strictBool(s string) (bool, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch {
	case slices.Contains(trueStrings, v):
		return true, nil
	case slices.Contains(falseStrings, v):
		return false, nil
	}
	all := append(slices.Clone(trueStrings), falseStrings...)
	sort.Strings(all)
	q := make([]string, len(all))
	for i, a := range all {
		q[i] = "'" + a + "'"
	}
	return false, bad("Invalid input received: Unrecognized value '%s', acceptable values are: %s", s, strings.Join(q, ", "))
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

// listOptions reads a GET /servers query.
func (a *API) listOptions(r *http.Request, detail bool) (*listRequest, error) {
	ctx := r.Context()
	c := caller(ctx)
	q := r.URL.Query()
	lr := &listRequest{}
	o := &lr.opts

	// The query schema: limit, regular expressions, changes-since, sort_key.
	limit, err := queryLimit(q)
	if err != nil {
		return nil, err
	}
	o.Limit = limit
	lr.empty = limit == 0
	o.Marker = lastValue(q, "marker")
	regexParams := listRegexParams
	if atLeast(r, 26) {
		regexParams = append(slices.Clone(regexParams), tagFilters...)
	}
	for _, p := range regexParams {
		for _, v := range q[p] {
			if _, err := compileRegex(p, v, false); err != nil {
				return nil, err
			}
		}
	}
	for _, v := range q["changes-since"] {
		if _, ok := parseISOTime(v); !ok {
			return nil, queryInvalid("changes-since", v, "%s is not a 'date-time'", pyRepr(v))
		}
	}
	if atLeast(r, 66) {
		for _, v := range q["changes-before"] {
			if _, ok := parseISOTime(v); !ok {
				return nil, queryInvalid("changes-before", v, "%s is not a 'date-time'", pyRepr(v))
			}
		}
	} else {
		// Before 2.66 the legacy schema drops it.
		q.Del("changes-before")
	}
	for _, v := range q["sort_key"] {
		if !slices.Contains(validSortKeys, v) {
			return nil, queryInvalid("sort_key", v, "%s is not one of %s", pyRepr(v), pyList(validSortKeys))
		}
	}

	// The filters: a member's are limited to memberFilters; an admin's
	// are all but paging and sorting.
	opts := url.Values{}
	allowed := memberFilters(r)
	for k, v := range q {
		if k == "limit" || k == "marker" || k == "sort_key" || k == "sort_dir" {
			continue
		}
		if c.Admin || slices.Contains(allowed, k) {
			opts[k] = v
		}
	}
	var refused []string
	for k := range opts {
		if slices.Contains(joinedTableParams, k) || strings.HasPrefix(k, "_") {
			refused = append(refused, k)
		}
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return nil, bad("Invalid filter field: %s.", refused[0])
	}
	get := func(k string) string { return lastValue(opts, k) }

	fromStatus := false
	if statuses := q["status"]; len(statuses) > 0 {
		vms, tasks := statesFromStatus(statuses)
		if len(vms) == 0 && len(tasks) == 0 {
			if atLeast(r, 38) {
				return nil, bad("Invalid status value")
			}
			// Before 2.38 such a status lists nothing, before any
			// further check.
			lr.empty = true
			return lr, nil
		}
		o.VMStates = vms
		if !slices.Contains(tasks, "default") {
			o.TaskStates = tasks
		}
		fromStatus = true
	} else if c.Admin {
		if v := get("vm_state"); opts.Has("vm_state") {
			o.VMStates = []string{v}
		}
	}
	if c.Admin && opts.Has("task_state") && o.TaskStates == nil {
		o.TaskStates = []string{get("task_state")}
	}
	if opts.Has("changes-since") {
		o.ChangesSince, _ = parseISOTime(get("changes-since"))
	}
	if opts.Has("changes-before") {
		o.ChangesBefore, _ = parseISOTime(get("changes-before"))
		if !o.ChangesSince.IsZero() && o.ChangesBefore.Before(o.ChangesSince) {
			return nil, bad("The value of changes-since must be less than or equal to changes-before.")
		}
	}
	// Deleted servers: listed with changes-since or changes-before, or
	// when an admin asks.
	switch {
	case opts.Has("deleted"):
		v, err := strictBool(get("deleted"))
		o.OnlyDeleted = err == nil && v
	case opts.Has("changes-since"), opts.Has("changes-before"):
		o.IncludeDeleted = true
	}
	if fromStatus && slices.Equal(o.VMStates, []string{"deleted"}) {
		if !c.Admin {
			return nil, forbidden2("Only administrators may list deleted instances")
		}
		o.OnlyDeleted, o.IncludeDeleted = true, false
	}
	if atLeast(r, 26) {
		for _, f := range tagFilters {
			if !opts.Has(f) {
				continue
			}
			tags := strings.Split(get(f), ",")
			switch f {
			case "tags":
				o.Tags = tags
			case "tags-any":
				o.TagsAny = tags
			case "not-tags":
				o.NotTags = tags
			case "not-tags-any":
				o.NotTagsAny = tags
			}
		}
	}

	// Whose servers.
	allTenants := false
	if opts.Has("all_tenants") {
		allTenants = true
		if v := get("all_tenants"); v != "" {
			if allTenants, err = strictBool(v); err != nil {
				return nil, err
			}
		}
	}
	if allTenants {
		rule := "index"
		if detail {
			rule = "detail"
		}
		if err := a.authorize(ctx, fmt.Sprintf("os_compute_api:servers:%s:get_all_tenants", rule), nil); err != nil {
			return nil, err
		}
		o.ProjectID = get("tenant_id")
		if opts.Has("project_id") {
			o.ProjectID = get("project_id")
		}
	} else {
		o.ProjectID = c.ProjectID
	}

	// Sorting: Nova's get_sort_params, then remove_invalid_sort_keys.
	keys, dirs := []string{}, []string{}
	for _, k := range q["sort_key"] {
		keys = append(keys, strings.TrimSpace(k))
	}
	for _, d := range q["sort_dir"] {
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
		if (k == "host" || k == "node") && !c.Admin {
			return nil, forbidden2("Only administrators can sort servers by " + k)
		}
		kept = append(kept, k)
	}
	lr.sortKeys, lr.sortDirs = kept, dirs

	// Exact filters.
	if opts.Has("image") {
		o.ImageRef = get("image")
	} else if opts.Has("image_ref") {
		o.ImageRef = get("image_ref")
	}
	if c.Admin {
		o.Host = get("host")
		o.UserID = get("user_id")
		o.UUID = get("uuid")
	}
	if opts.Has("flavor") {
		viewer := flavorViewer(ctx)
		if allTenants {
			viewer.Admin = true // Nova looks it up with the elevated context
		}
		f, err := apidb.GetFlavorDetail(ctx, a.cfg.DB, get("flavor"), viewer)
		switch {
		case isNotFound(err):
			lr.empty = true
		case err != nil:
			return nil, err
		default:
			o.FlavorID = f.ID
		}
	}

	// Regular expression filters, applied in order as the rows come.
	type reFilter struct {
		re    *regexp.Regexp
		field func(*apidb.Instance) string
	}
	var res []reFilter
	fields := map[string]func(*apidb.Instance) string{
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
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !opts.Has(k) {
			continue
		}
		re, err := compileRegex(k, get(k), false)
		if err != nil {
			return nil, err
		}
		res = append(res, reFilter{re, fields[k]})
	}
	var ip4, ip6 *regexp.Regexp
	if opts.Has("ip") {
		if ip4, err = compileRegex("ip", get("ip"), true); err != nil {
			return nil, err
		}
	}
	if opts.Has("ip6") {
		if ip6, err = compileRegex("ip6", get("ip6"), true); err != nil {
			return nil, err
		}
	}
	if len(res) > 0 || ip4 != nil || ip6 != nil {
		o.Match = func(in *apidb.Instance) bool {
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
	}
	return lr, nil
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

// forbidden2 is a 403 with a message of its own (not a policy's).
func forbidden2(msg string) error { return &httpError{http.StatusForbidden, msg} }

// pyList is Python's repr of a list of strings.
func pyList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = pyRepr(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
