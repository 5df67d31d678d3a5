package compute

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// os-hypervisors: every cell answers for its own compute nodes. A list
// gathers from every cell (and says which did not answer); one hypervisor
// is asked of its cell alone: below microversion 2.53 its id names the
// cell ("api!cell1@7"), from 2.53 it is a UUID the API cell maps to its
// cell.

// v288 drops the resource counts from a hypervisor's detail, adds its
// uptime, and removes GET /os-hypervisors/statistics and .../{id}/uptime.
const v288 = 88

// hypervisorsHandler is os-hypervisors, gathered from the cells.
type hypervisorsHandler struct {
	*base
}

// cellHypervisor is a hypervisor and its cell.
type cellHypervisor struct {
	cell string
	h    wire.Hypervisor
}

func stateOf(s wire.Service) string {
	if s.Up {
		return "up"
	}
	return "down"
}

func statusOf(s wire.Service) string {
	if s.Disabled {
		return "disabled"
	}
	return "enabled"
}

// hypervisorView is Nova's hypervisor at v: the summary, or the detail;
// with servers when asked (withServers), as a list of uuid and name.
func hypervisorView(v Version, ids hostIDs, ch cellHypervisor, detail, withServers bool) map[string]any {
	h := ch.h
	out := map[string]any{
		"id":                  ids.of(ch.cell, h.ID, h.UUID),
		"hypervisor_hostname": h.Hostname,
		"state":               stateOf(h.Service),
		"status":              statusOf(h.Service),
	}
	// From 2.75 servers is there, empty too, whenever it was asked for.
	if withServers && (len(h.Servers) > 0 || v.AtLeast(Version{2, 75})) {
		ss := make([]map[string]any, 0, len(h.Servers))
		for _, s := range h.Servers {
			ss = append(ss, map[string]any{"uuid": s.UUID, "name": s.Name})
		}
		out["servers"] = ss
	}
	if !detail {
		return out
	}
	out["hypervisor_type"] = h.Type
	out["hypervisor_version"] = h.Version
	out["host_ip"] = nil
	out["service"] = map[string]any{
		"id":              ids.of(ch.cell, h.Service.ID, h.Service.UUID),
		"host":            qualify(ch.cell, h.Service.Host),
		"disabled_reason": nullable(h.Service.DisabledReason),
	}
	// 2.88 drops the resource counts and cpu_info and adds uptime. The
	// fake driver cannot tell a host's uptime (as GET .../uptime below
	// 2.88 says, 501), which Nova's detail shows as null.
	if v.AtLeast(Version{2, v288}) {
		out["uptime"] = nil
		return out
	}
	out["vcpus"] = h.VCPUs
	out["vcpus_used"] = h.VCPUsUsed
	out["memory_mb"] = h.MemoryMB
	out["memory_mb_used"] = h.MemoryMBUsed
	out["local_gb"] = h.LocalGB
	out["local_gb_used"] = h.LocalGBUsed
	out["free_ram_mb"] = h.MemoryMB - h.MemoryMBUsed
	out["free_disk_gb"] = h.LocalGB - h.LocalGBUsed
	out["current_workload"] = 0
	out["running_vms"] = h.RunningVMs
	out["disk_available_least"] = 0
	if v.AtLeast(Version{2, 28}) {
		var info any = map[string]any{}
		if h.CPUInfo != "" {
			_ = json.Unmarshal([]byte(h.CPUInfo), &info)
		}
		out["cpu_info"] = info
	} else {
		out["cpu_info"] = h.CPUInfo
	}
	return out
}

func (h *hypervisorsHandler) register(rt *router) {
	rt.handle("GET /v2.1/os-hypervisors", "os_compute_api:os-hypervisors:list", h.listHypervisors(false))
	rt.handle("GET /v2.1/os-hypervisors/detail", "os_compute_api:os-hypervisors:list-detail", h.listHypervisors(true))
	rt.handle("GET /v2.1/os-hypervisors/statistics", "os_compute_api:os-hypervisors:statistics", h.hypervisorStatistics)
	rt.handle("GET /v2.1/os-hypervisors/{id}", "os_compute_api:os-hypervisors:show", h.showHypervisor)
	rt.handle("GET /v2.1/os-hypervisors/{id}/uptime", "os_compute_api:os-hypervisors:uptime", h.hypervisorUptime)
	rt.handle("GET /v2.1/os-hypervisors/{pattern}/search", "os_compute_api:os-hypervisors:search", h.searchHypervisors(false))
	rt.handle("GET /v2.1/os-hypervisors/{pattern}/servers", "os_compute_api:os-hypervisors:servers", h.searchHypervisors(true))
}

// hypervisorIDs reads the ids of hypervisors (and, in the detail, their
// services) as the request's microversion shows them.
func (h *hypervisorsHandler) hypervisorIDs(r *http.Request, hs []cellHypervisor, detail bool) (hostIDs, error) {
	uuids := make([]string, 0, 2*len(hs))
	for _, ch := range hs {
		uuids = append(uuids, ch.h.UUID)
		if detail {
			uuids = append(uuids, ch.h.Service.UUID)
		}
	}
	return h.hostIDs(r, uuids)
}

// gatherHypervisors asks every cell, sorted by cell and id.
func (h *hypervisorsHandler) gatherHypervisors(w http.ResponseWriter, r *http.Request, q wire.HypervisorQuery) ([]cellHypervisor, []string, error) {
	var out []cellHypervisor
	missing, err := h.gather(w, r, wire.MethodHypervisors, q, func(cell string, raw json.RawMessage) error {
		hs, err := decodeList[wire.Hypervisor](raw)
		for _, h := range hs {
			out = append(out, cellHypervisor{cell, h})
		}
		return err
	})
	slices.SortFunc(out, func(x, y cellHypervisor) int {
		return cmp.Or(cmp.Compare(x.cell, y.cell), cmp.Compare(x.h.ID, y.h.ID))
	})
	return out, missing, err
}

func (h *hypervisorsHandler) listHypervisors(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := apiVersion(r.Context())
		q := r.URL.Query()
		var hq wire.HypervisorQuery
		paging := v.AtLeast(Version{2, 33})
		if v.AtLeast(v253) {
			if err := checkQuery(q, "limit", "marker", "hypervisor_hostname_pattern", "with_servers"); err != nil {
				h.fail(w, r, err)
				return
			}
			var err error
			if hq.WithServers, err = queryBool(q, "with_servers"); err != nil {
				h.fail(w, r, err)
				return
			}
			hq.Pattern = lastValue(q, "hypervisor_hostname_pattern")
			if q.Has("hypervisor_hostname_pattern") && (q.Has("limit") || lastValue(q, "marker") != "") {
				h.fail(w, r, bad("Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported."))
				return
			}
		}
		limit, marker := 1000, ""
		if paging {
			var err error
			if limit, err = queryLimit(q); err != nil {
				h.fail(w, r, err)
				return
			}
			marker = lastValue(q, "marker")
		}
		hs, _, err := h.gatherHypervisors(w, r, hq)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if hq.Pattern != "" && len(hs) == 0 {
			h.fail(w, r, notFound("No hypervisor matching '%s' could be found.", hq.Pattern))
			return
		}
		ids, err := h.hypervisorIDs(r, hs, detail)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if marker != "" {
			i := slices.IndexFunc(hs, func(ch cellHypervisor) bool { return ids.str(ch.cell, ch.h.ID, ch.h.UUID) == marker })
			if i < 0 {
				h.fail(w, r, bad("marker [%s] not found", marker))
				return
			}
			hs = hs[i+1:]
		}
		full := len(hs) >= limit && limit > 0
		hs = hs[:min(len(hs), limit)]
		list := make([]map[string]any, 0, len(hs))
		for _, ch := range hs {
			list = append(list, hypervisorView(v, ids, ch, detail, hq.WithServers))
		}
		resp := map[string]any{"hypervisors": list}
		if paging && hq.Pattern == "" && full {
			last := hs[len(hs)-1]
			coll := "os-hypervisors"
			if detail {
				coll += "/detail"
			}
			resp["hypervisors_links"] = nextLink(r, coll, ids.str(last.cell, last.h.ID, last.h.UUID))
		}
		httpkit.WriteJSON(w, http.StatusOK, resp)
	}
}

// findHypervisor asks the hypervisor's cell for it; nil when there is no
// such hypervisor.
func (h *hypervisorsHandler) findHypervisor(r *http.Request, id string, withServers bool) (*cellHypervisor, error) {
	v := apiVersion(r.Context())
	q := wire.HypervisorQuery{WithServers: withServers}
	var cell string
	if v.AtLeast(v253) {
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, bad("Invalid uuid %s", id)
		}
		q.UUID = u.String()
		c, ok, err := h.mappingCell(r, q.UUID, wire.MappingHypervisor)
		if err != nil || !ok {
			return nil, err
		}
		cell = c
	} else {
		// Nova: an id that is not an integer finds no hypervisor.
		old, ok, err := h.resolveOldHostID(r, id, wire.MappingHypervisor)
		if errors.Is(err, errNotAnID) || (err == nil && !ok) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		cell, q.UUID, q.ID = old.cell, old.uuid, old.id
	}
	var hs []wire.Hypervisor
	if err := h.callCell(r, cell, wire.MethodHypervisors, q, &hs); err != nil {
		return nil, err
	}
	if len(hs) != 1 {
		return nil, nil
	}
	return &cellHypervisor{cell, hs[0]}, nil
}

func (h *hypervisorsHandler) showHypervisor(w http.ResponseWriter, r *http.Request) {
	v := apiVersion(r.Context())
	id := r.PathValue("id")
	withServers := false
	if v.AtLeast(v253) {
		q := r.URL.Query()
		if err := checkQuery(q, "with_servers"); err != nil {
			h.fail(w, r, err)
			return
		}
		var err error
		if withServers, err = queryBool(q, "with_servers"); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	ch, err := h.findHypervisor(r, id, withServers)
	if err == nil && ch == nil {
		err = notFound("Hypervisor with ID '%s' could not be found.", id)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ids, err := h.hypervisorIDs(r, []cellHypervisor{*ch}, true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"hypervisor": hypervisorView(v, ids, *ch, true, withServers)})
}

// hypervisorUptime is GET /os-hypervisors/{id}/uptime. The fake driver
// cannot tell a host's uptime, as in Nova: 501 once the hypervisor is found.
// Gone from 2.88 (404), where the detail has uptime.
func (h *hypervisorsHandler) hypervisorUptime(w http.ResponseWriter, r *http.Request) {
	if atLeast(r, v288) {
		h.fail(w, r, notFound("The resource could not be found."))
		return
	}
	id := r.PathValue("id")
	ch, err := h.findHypervisor(r, id, false)
	if err == nil && ch == nil {
		err = notFound("Hypervisor with ID '%s' could not be found.", id)
	}
	if err == nil {
		err = fault(http.StatusNotImplemented, "The requested functionality is not supported.")
	}
	h.fail(w, r, err)
}

// searchHypervisors is GET /os-hypervisors/{pattern}/search and /servers
// (gone at 2.53, replaced by query parameters of the list).
func (h *hypervisorsHandler) searchHypervisors(withServers bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := apiVersion(r.Context())
		if v.AtLeast(v253) {
			h.fail(w, r, notFound("The resource could not be found."))
			return
		}
		pattern := r.PathValue("pattern")
		hs, _, err := h.gatherHypervisors(w, r, wire.HypervisorQuery{Pattern: pattern, WithServers: withServers})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if len(hs) == 0 {
			h.fail(w, r, notFound("No hypervisor matching '%s' could be found.", pattern))
			return
		}
		ids, err := h.hypervisorIDs(r, hs, false)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		list := make([]map[string]any, 0, len(hs))
		for _, ch := range hs {
			list = append(list, hypervisorView(v, ids, ch, false, withServers))
		}
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"hypervisors": list})
	}
}

// hypervisorStatistics sums every cell's enabled compute nodes. When a
// cell did not answer, missing_cells names it (and the sums leave it out).
// Gone from 2.88 (404).
func (h *hypervisorsHandler) hypervisorStatistics(w http.ResponseWriter, r *http.Request) {
	if atLeast(r, v288) {
		h.fail(w, r, notFound("The resource could not be found."))
		return
	}
	hs, missing, err := h.gatherHypervisors(w, r, wire.HypervisorQuery{})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var count, vcpus, vcpusUsed, running int
	var mem, memUsed, disk, diskUsed int64
	for _, ch := range hs {
		h := ch.h
		if h.Service.Disabled {
			continue
		}
		count++
		vcpus += h.VCPUs
		vcpusUsed += h.VCPUsUsed
		running += h.RunningVMs
		mem += h.MemoryMB
		memUsed += h.MemoryMBUsed
		disk += h.LocalGB
		diskUsed += h.LocalGBUsed
	}
	stats := map[string]any{
		"count": count, "vcpus": vcpus, "vcpus_used": vcpusUsed, "memory_mb": mem, "memory_mb_used": memUsed,
		"local_gb": disk, "local_gb_used": diskUsed, "free_ram_mb": mem - memUsed, "free_disk_gb": disk - diskUsed,
		"current_workload": 0, "running_vms": running, "disk_available_least": 0,
	}
	if len(missing) > 0 {
		stats["missing_cells"] = missing
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"hypervisor_statistics": stats})
}
