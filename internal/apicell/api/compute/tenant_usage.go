package compute

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// os-simple-tenant-usage: what each project's instances used in a window,
// computed from every cell's own records of its instances (deleted ones
// included), gathered by the API cell.

// tenantUsageHandler is os-simple-tenant-usage.
type tenantUsageHandler struct {
	*base
}

// usageTimeFormats are the date formats Nova's _parse_datetime takes.
var usageTimeFormats = []string{"2006-01-02T15:04:05", "2006-01-02T15:04:05.999999", "2006-01-02 15:04:05.999999"}

// parseUsageTime reads start or end; absent (or empty) is now.
func parseUsageTime(q url.Values, name string, now time.Time) (time.Time, error) {
	vs := q[name]
	if len(vs) == 0 || vs[0] == "" {
		return now, nil
	}
	for _, f := range usageTimeFormats {
		if f == "2006-01-02 15:04:05.999999" && !strings.Contains(vs[0], ".") {
			continue // the space form needs its fraction, as in Nova
		}
		if t, err := time.Parse(f, vs[0]); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, bad("Invalid datetime string: Datetime is in invalid format")
}

// usageHours is the part of an instance's life inside [start, stop], in
// hours.
func usageHours(u wire.InstanceUsage, start, stop time.Time) float64 {
	if u.LaunchedAt.IsZero() || u.LaunchedAt.After(stop) || (!u.EndedAt.IsZero() && u.EndedAt.Before(start)) {
		return 0
	}
	end := stop
	if !u.EndedAt.IsZero() && u.EndedAt.Before(stop) {
		end = u.EndedAt
	}
	begin := u.LaunchedAt
	if begin.Before(start) {
		begin = start
	}
	return end.Sub(begin).Hours()
}

func (h *tenantUsageHandler) register(rt *router) {
	rt.handle("GET /v2.1/os-simple-tenant-usage", "os_compute_api:os-simple-tenant-usage:list", h.tenantUsage(true))
	rt.handle("GET /v2.1/os-simple-tenant-usage/{tenant}", "", h.tenantUsage(false))
}

func (h *tenantUsageHandler) tenantUsage(all bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		v := apiVersion(ctx)
		tenant := r.PathValue("tenant")
		if v.AtLeast(Version{2, 75}) {
			// Nova's index_query_v275 and show_query_v275: the window,
			// the page and, listing, detailed.
			allowed := []string{"start", "end", "limit", "marker"}
			if all {
				allowed = append(allowed, "detailed")
			}
			if err := checkQuery(r.URL.Query(), allowed...); err != nil {
				h.fail(w, r, err)
				return
			}
		}
		if !all {
			if err := h.authorize(ctx, "os_compute_api:os-simple-tenant-usage:show", policy.Target{"project_id": tenant}); err != nil {
				h.fail(w, r, err)
				return
			}
		}
		q := r.URL.Query()
		now := time.Now().UTC()
		start, stop, err := usageWindow(q, now)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		limit, marker := 1000, ""
		if v.AtLeast(Version{2, 40}) {
			if limit, err = queryLimit(q); err != nil {
				h.fail(w, r, err)
				return
			}
			marker = lastValue(q, "marker")
		}
		detailed := all && len(q["detailed"]) > 0 && q["detailed"][0] == "1"
		if !all {
			detailed = true
		}
		us, full, err := h.usagePage(w, r, wire.TenantUsageQuery{Start: start, Stop: stop, Project: tenant}, limit, marker)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		order, sums := summarizeUsage(us, start, stop, now)
		view := func(p string) map[string]any {
			s := sums[p]
			m := map[string]any{"tenant_id": p, "total_local_gb_usage": s.gb, "total_vcpus_usage": s.cpu,
				"total_memory_mb_usage": s.mem, "total_hours": s.hours, "start": novaTime(start), "stop": novaTime(stop)}
			if detailed {
				m["server_usages"] = s.servers
			}
			return m
		}
		linkKey, coll := "tenant_usages_links", "os-simple-tenant-usage"
		var resp map[string]any
		if all {
			list := make([]map[string]any, 0, len(order))
			for _, p := range order {
				list = append(list, view(p))
			}
			resp = map[string]any{"tenant_usages": list}
		} else {
			one := map[string]any{}
			if len(order) == 1 {
				one = view(order[0])
			}
			resp = map[string]any{"tenant_usage": one}
			linkKey, coll = "tenant_usage_links", coll+"/"+tenant
		}
		if v.AtLeast(Version{2, 40}) && full {
			resp[linkKey] = nextLink(r, coll, us[len(us)-1].UUID)
		}
		httpkit.WriteJSON(w, http.StatusOK, resp)
	}
}

// usageWindow reads start and end: the end is at most now (read from the
// clock after the start, as Nova's two readings are: with neither given
// the window is empty, not refused).
func usageWindow(q url.Values, now time.Time) (start, stop time.Time, err error) {
	if start, err = parseUsageTime(q, "start", now); err != nil {
		return start, stop, err
	}
	if stop, err = parseUsageTime(q, "end", now.Add(time.Microsecond)); err != nil {
		return start, stop, err
	}
	if !start.Before(stop) {
		return start, stop, bad("Invalid start time. The start time cannot occur after the end time.")
	}
	if stop.After(now.Add(time.Microsecond)) {
		stop = now.Add(time.Microsecond)
	}
	return start, stop, nil
}

// usagePage gathers the instances' usage from every cell, sorted by
// project and instance, and returns the page after marker; full says the
// page holds limit instances (so a next link is due).
func (h *tenantUsageHandler) usagePage(w http.ResponseWriter, r *http.Request, uq wire.TenantUsageQuery, limit int, marker string) (us []wire.InstanceUsage, full bool, err error) {
	_, err = h.gather(w, r, wire.MethodTenantUsage, uq, func(_ string, raw json.RawMessage) error {
		got, err := decodeList[wire.InstanceUsage](raw)
		us = append(us, got...)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	slices.SortFunc(us, func(x, y wire.InstanceUsage) int {
		return cmp.Or(cmp.Compare(x.ProjectID, y.ProjectID), cmp.Compare(x.UUID, y.UUID))
	})
	if marker != "" {
		i := slices.IndexFunc(us, func(u wire.InstanceUsage) bool { return u.UUID == marker })
		if i < 0 {
			return nil, false, bad("Marker %s could not be found.", marker)
		}
		us = us[i+1:]
	}
	full = limit > 0 && len(us) >= limit
	return us[:min(len(us), limit)], full, nil
}

// usageSummary is one project's usage in the window.
type usageSummary struct {
	servers []map[string]any
	hours   float64
	gb, cpu float64
	mem     float64
}

// summarizeUsage sums the usage of each project (in the order the
// projects come) and lists its servers' usage.
func summarizeUsage(us []wire.InstanceUsage, start, stop, now time.Time) (order []string, sums map[string]*usageSummary) {
	sums = map[string]*usageSummary{}
	for _, u := range us {
		s := sums[u.ProjectID]
		if s == nil {
			s = &usageSummary{}
			sums[u.ProjectID] = s
			order = append(order, u.ProjectID)
		}
		hours := usageHours(u, start, stop)
		localGB := u.Flavor.RootGB + u.Flavor.EphemeralGB
		s.hours += hours
		s.gb += float64(localGB) * hours
		s.cpu += float64(u.Flavor.VCPUs) * hours
		s.mem += float64(u.Flavor.RAMMB) * hours
		state, ended := u.VMState, any(nil)
		uptime := int64(now.Sub(u.LaunchedAt).Seconds())
		if !u.EndedAt.IsZero() {
			state, ended = "terminated", novaTime(u.EndedAt)
			uptime = int64(u.EndedAt.Sub(u.LaunchedAt).Seconds())
		}
		s.servers = append(s.servers, map[string]any{
			"instance_id": u.UUID, "name": u.Name, "tenant_id": u.ProjectID, "hours": hours, "memory_mb": u.Flavor.RAMMB,
			"local_gb": localGB, "vcpus": u.Flavor.VCPUs, "flavor": u.Flavor.Name, "started_at": novaTime(u.LaunchedAt),
			"ended_at": ended, "state": state, "uptime": uptime,
		})
	}
	return order, sums
}
