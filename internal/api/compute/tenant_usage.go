package compute

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/policy"
	"github.com/cellcloud/cellcloud/internal/wire"
)

// tenantUsageHandler is os-simple-tenant-usage.
type tenantUsageHandler struct {
	*base
}

// os-simple-tenant-usage: what each project's instances used in a window,
// computed from every cell's own records of its instances (deleted ones
// included), gathered by the API cell.

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
		if !all {
			if err := h.authorize(ctx, "os_compute_api:os-simple-tenant-usage:show", policy.Target{"project_id": tenant}); err != nil {
				h.fail(w, r, err)
				return
			}
		}
		q := r.URL.Query()
		now := time.Now().UTC()
		start, err := parseUsageTime(q, "start", now)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		// An absent end is read from the clock after the start, as Nova's
		// two readings are: with neither given the window is empty, not
		// refused.
		stop, err := parseUsageTime(q, "end", now.Add(time.Microsecond))
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if !start.Before(stop) {
			h.fail(w, r, bad("Invalid start time. The start time cannot occur after the end time."))
			return
		}
		if stop.After(now.Add(time.Microsecond)) {
			stop = now.Add(time.Microsecond)
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
		var us []wire.InstanceUsage
		_, err = h.gather(w, r, wire.MethodTenantUsage, wire.TenantUsageQuery{Start: start, Stop: stop, Project: tenant},
			func(_ string, raw json.RawMessage) error {
				got, err := decodeList[wire.InstanceUsage](raw)
				us = append(us, got...)
				return err
			})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		slices.SortFunc(us, func(x, y wire.InstanceUsage) int {
			return cmp.Or(cmp.Compare(x.ProjectID, y.ProjectID), cmp.Compare(x.UUID, y.UUID))
		})
		if marker != "" {
			i := slices.IndexFunc(us, func(u wire.InstanceUsage) bool { return u.UUID == marker })
			if i < 0 {
				h.fail(w, r, bad("Marker %s could not be found.", marker))
				return
			}
			us = us[i+1:]
		}
		full := limit > 0 && len(us) >= limit
		us = us[:min(len(us), limit)]

		type summary struct {
			servers []map[string]any
			hours   float64
			gb, cpu float64
			mem     float64
		}
		var order []string
		sums := map[string]*summary{}
		for _, u := range us {
			s := sums[u.ProjectID]
			if s == nil {
				s = &summary{}
				sums[u.ProjectID] = s
				order = append(order, u.ProjectID)
			}
			h := usageHours(u, start, stop)
			localGB := u.Flavor.RootGB + u.Flavor.EphemeralGB
			s.hours += h
			s.gb += float64(localGB) * h
			s.cpu += float64(u.Flavor.VCPUs) * h
			s.mem += float64(u.Flavor.RAMMB) * h
			state, ended := u.VMState, any(nil)
			uptime := int64(now.Sub(u.LaunchedAt).Seconds())
			if !u.EndedAt.IsZero() {
				state, ended = "terminated", novaTime(u.EndedAt)
				uptime = int64(u.EndedAt.Sub(u.LaunchedAt).Seconds())
			}
			s.servers = append(s.servers, map[string]any{
				"instance_id": u.UUID, "name": u.Name, "tenant_id": u.ProjectID, "hours": h, "memory_mb": u.Flavor.RAMMB,
				"local_gb": localGB, "vcpus": u.Flavor.VCPUs, "flavor": u.Flavor.Name, "started_at": novaTime(u.LaunchedAt),
				"ended_at": ended, "state": state, "uptime": uptime,
			})
		}
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
		writeJSON(w, http.StatusOK, resp)
	}
}
