package compute

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
)

// listServers serves GET /servers and, detail, /servers/detail: the query
// read (listOptions), the API cell's copy listed (apidb.List), the servers
// of down cells set apart (splitDown) and the next link.
func (h *serversHandler) listServers(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		lr, err := h.listOptions(r, detail)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		opts := lr.opts
		var insts []*apidb.Instance
		// limit=0, a status that matches nothing (before 2.38) and a flavor
		// the caller cannot see list nothing, as in Nova.
		if !lr.empty {
			if opts.Sort, err = lr.sortOptions(); err != nil {
				h.fail(w, r, err)
				return
			}
			insts, err = apidb.List(ctx, h.cfg.DB, opts)
		}
		if errors.Is(err, apidb.ErrNotFound) {
			h.fail(w, r, bad("marker [%s] not found", opts.Marker))
			return
		}
		if err == nil && detail && atLeast(r, 26) {
			err = apidb.LoadTags(ctx, h.cfg.DB, insts)
		}
		if err == nil && detail {
			err = loadSecurityGroups(ctx, h.cfg.DB, insts)
		}
		if err == nil && detail {
			err = loadPortAddresses(ctx, h.cfg.DB, insts)
		}
		if err == nil && detail {
			err = loadVolumesAttached(ctx, h.cfg.DB, insts)
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		base := httpkit.Origin(r)
		shown, unknown, err := h.splitDown(r, insts, detail)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		out := make([]any, 0, len(insts))
		out = append(out, unknown...)
		rights := h.rightsOn(r, httpkit.CallerFrom(ctx).ProjectID)
		for _, in := range shown {
			if detail {
				out = append(out, h.serverViewAs(r, in, rights))
			} else {
				out = append(out, map[string]any{"id": in.UUID, "name": in.Name, "links": links(base, in.ProjectID, "servers", in.UUID)})
			}
		}
		resp := map[string]any{"servers": out}
		if opts.Limit > 0 && len(insts) == opts.Limit {
			next := *r.URL
			nq := next.Query()
			nq.Set("marker", insts[len(insts)-1].UUID)
			nq.Set("limit", strconv.Itoa(opts.Limit))
			next.RawQuery = nq.Encode()
			resp["servers_links"] = []map[string]string{{"rel": "next", "href": base + next.RequestURI()}}
		}
		httpkit.WriteJSON(w, http.StatusOK, resp)
	}
}

// GET /servers and /servers/detail read their query as Nova's
// ServersController._get_servers does, up to 2.75: the query schema, the
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
// dropped. From 2.73 locked is a key that sorts (ignoredSortKeysV273 are
// the others); from 2.75 the ignored keys are refused (sortKeysAt).
var (
	ignoredSortKeys = []string{
		"architecture", "cell_name", "cleaned", "default_ephemeral_device", "default_swap_device", "deleted",
		"deleted_at", "disable_terminate", "ephemeral_gb", "ephemeral_key_uuid", "id", "key_data", "launched_on",
		"locked", "memory_mb", "os_type", "reservation_id", "root_gb", "shutdown_terminate", "user_data", "vcpus",
		"vm_mode",
	}
	ignoredSortKeysV273 = slices.DeleteFunc(slices.Clone(ignoredSortKeys), func(k string) bool { return k == "locked" })
	sortingKeys         = []string{
		"access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone", "config_drive", "created_at",
		"display_description", "display_name", "host", "hostname", "image_ref", "instance_type_id", "kernel_id",
		"key_name", "launch_index", "launched_at", "locked_by", "node", "power_state", "progress", "project_id",
		"ramdisk_id", "root_device_name", "task_state", "terminated_at", "updated_at", "user_id", "uuid", "vm_state",
	}
	validSortKeys     = append(slices.Clone(sortingKeys), ignoredSortKeys...)
	validSortKeysV273 = append(append([]string{"locked"}, sortingKeys...), ignoredSortKeysV273...)
	validSortKeysV275 = append([]string{"locked"}, sortingKeys...)
)

// sortKeysAt are the sort keys the query schema of the request's
// microversion accepts (Nova's VALID_SORT_KEYS, _V273 and _V275; Nova
// builds the later two through a set, so its messages list them in no
// set order: here locked comes first, then the keys in the order above).
func sortKeysAt(r *http.Request) []string {
	switch {
	case atLeast(r, 75):
		return validSortKeysV275
	case atLeast(r, 73):
		return validSortKeysV273
	}
	return validSortKeys
}

// listQueryParams are the parameters of Nova's GET /servers query schema
// at the request's microversion (index_query and its later versions),
// which from 2.75 refuses any other.
func listQueryParams(r *http.Request) []string {
	ps := []string{
		"user_id", "project_id", "tenant_id", "launch_index", "image_ref", "image", "vm_state", "task_state", "host",
		"uuid", "sort_key", "sort_dir", "all_tenants", "soft_deleted", "deleted", "status", "changes-since",
		"limit", "marker",
	}
	ps = append(ps, listRegexParams...)
	ps = append(ps, joinedTableParams...)
	if atLeast(r, 26) {
		ps = append(ps, tagFilters...)
	}
	if atLeast(r, 66) {
		ps = append(ps, "changes-before")
	}
	if atLeast(r, 73) {
		ps = append(ps, "locked")
	}
	return ps
}

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
	if atLeast(r, 73) {
		opts = append(opts, "locked")
	}
	if atLeast(r, v283) {
		opts = append(opts, memberFiltersV283...)
	}
	if atLeast(r, 90) {
		opts = append(opts, "hostname")
	}
	return opts
}

// v283 lets members filter by memberFiltersV283.
const v283 = 83

// memberFiltersV283 are the filters 2.83 gives members; below it they are
// an admin's (and a member's are dropped).
var memberFiltersV283 = []string{"availability_zone", "config_drive", "key_name", "created_at", "launched_at",
	"terminated_at", "power_state", "task_state", "vm_state", "progress", "user_id"}

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
