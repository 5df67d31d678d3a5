package compute

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
)

// Down cells (microversion 2.69). The API cell keeps a copy of every
// instance, but the copy of an instance whose cell is down may be stale.
// From 2.69 such an instance is shown as Nova shows one of a cell it
// cannot reach: status UNKNOWN and the few fields the API cell knows for
// certain. Below 2.69, and in filtered, sorted or paged lists, it is left
// out (Nova's list_records_by_skipping_down_cells), and showing it is a
// 503 naming the cell.

// minimalConstructs reports whether a list may show down-cell instances
// as UNKNOWN: from 2.69, with no paging or sorting, and no filter but
// all_tenants (Nova's conditions).
func minimalConstructs(r *http.Request) bool {
	if !apiVersion(r.Context()).AtLeast(v269) {
		return false
	}
	for k := range r.URL.Query() {
		if k != "all_tenants" {
			return false
		}
	}
	return true
}

// downListView is a down-cell instance in a list at 2.69.
func downListView(r *http.Request, in *apidb.Instance, detail bool) map[string]any {
	v := map[string]any{"id": in.UUID, "status": "UNKNOWN", "links": links(httpkit.Origin(r), in.ProjectID, "servers", in.UUID)}
	if detail {
		v["tenant_id"] = in.ProjectID
		v["created"] = isoTime(in.CreatedAt)
	}
	return v
}

// splitDown takes the instances of down cells out of a list: as minimal
// entries first when the list may show them, else not at all.
func (h *serversHandler) splitDown(r *http.Request, insts []*apidb.Instance, detail bool) ([]*apidb.Instance, []any, error) {
	down, err := h.downCells(r)
	if err != nil || len(down) == 0 {
		return insts, nil, err
	}
	minimal := minimalConstructs(r)
	var up []*apidb.Instance
	var unknown []any
	for _, in := range insts {
		if _, ok := down.holds(in); !ok {
			up = append(up, in)
			continue
		}
		if minimal {
			unknown = append(unknown, downListView(r, in, detail))
		}
	}
	return up, unknown, nil
}

// downShowView is a down-cell instance shown at 2.69: what the API cell
// holds from the request that created it.
func downShowView(r *http.Request, in *apidb.Instance) map[string]any {
	base := httpkit.Origin(r)
	v := downListView(r, in, true)
	var image any = ""
	if in.ImageRef != "" {
		image = map[string]any{"id": in.ImageRef, "links": []map[string]string{{"rel": "bookmark", "href": base + "/" + in.ProjectID + "/images/" + in.ImageRef}}}
	}
	v["image"] = image
	f := map[string]any{
		"vcpus": in.Flavor.VCPUs, "ram": in.Flavor.RAMMB, "disk": in.Flavor.RootGB,
		"ephemeral": in.Flavor.EphemeralGB, "swap": in.Flavor.SwapMB, "original_name": in.Flavor.Name,
	}
	if httpkit.CallerFrom(r.Context()).Admin {
		specs := in.Flavor.ExtraSpecs
		if specs == nil {
			specs = map[string]string{}
		}
		f["extra_specs"] = specs
	}
	v["flavor"] = f
	az := in.AvailabilityZone
	if az == "" {
		az = "UNKNOWN"
	}
	v["OS-EXT-AZ:availability_zone"] = az
	v["OS-EXT-STS:power_state"] = 0
	user := in.UserID
	if user == "" {
		user = "UNKNOWN"
	}
	v["user_id"] = user
	return v
}

// showDown answers a show of an instance whose cell is down; ok is false
// when its cell is up.
func (h *serversHandler) showDown(w http.ResponseWriter, r *http.Request, in *apidb.Instance) (handled bool) {
	down, err := h.downCells(r)
	if err != nil {
		h.fail(w, r, err)
		return true
	}
	cell, ok := down.holds(in)
	if !ok {
		return false
	}
	if !apiVersion(r.Context()).AtLeast(v269) {
		h.fail(w, r, fault(http.StatusServiceUnavailable, "Cell "+cell+" is not responding, so the state of server "+in.UUID+
			" is unknown; from microversion 2.69 it is shown with status UNKNOWN."))
		return true
	}
	v := downShowView(r, in)
	// 2.71: the API cell holds the groups, as Nova's API database does.
	if err := h.serverGroupsView(r, in, v); err != nil {
		h.fail(w, r, err)
		return true
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"server": v})
	return true
}
