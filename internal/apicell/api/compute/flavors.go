package compute

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// flavorsHandler is the flavors resource: list and show (flavors.go), and
// flavor management: create, update, delete (flavor_manage.go).
type flavorsHandler struct {
	*base
}

func (h *flavorsHandler) register(rt *router) {
	rt.handle("GET /v2.1/flavors", "", h.listFlavors(false))
	rt.handle("GET /v2.1/flavors/detail", "", h.listFlavors(true))
	rt.handle("GET /v2.1/flavors/{id}", "", h.showFlavor)
	rt.handle("POST /v2.1/flavors", "", h.createFlavor)
	rt.handle("PUT /v2.1/flavors/{id}", "", h.updateFlavor)
	rt.handle("DELETE /v2.1/flavors/{id}", "", h.deleteFlavor)
}

// flavorView is a flavor as the Compute API shows it at 2.1, from the
// fields every flavor copy has; flavorDetailView adds the rest.
func flavorView(base, project string, f wire.Flavor, detail bool) map[string]any {
	v := map[string]any{"id": f.ID, "name": f.Name, "links": links(base, project, "flavors", f.ID)}
	if !detail {
		return v
	}
	swap := any("")
	if f.SwapMB > 0 {
		swap = f.SwapMB
	}
	v["vcpus"] = f.VCPUs
	v["ram"] = f.RAMMB
	v["disk"] = f.RootGB
	v["OS-FLV-EXT-DATA:ephemeral"] = f.EphemeralGB
	v["swap"] = swap
	v["rxtx_factor"] = 1.0
	v["os-flavor-access:is_public"] = true
	v["OS-FLV-DISABLED:disabled"] = false
	return v
}

// flavorDetailView is a flavor as Nova's flavor view builder shows it at
// the request's microversion: the description from 2.55, extra_specs
// from 2.61 (every caller may read them by Nova's default policy), swap
// as a number from 2.75.
func flavorDetailView(r *http.Request, f apidb.FlavorDetail, detail bool) map[string]any {
	v := flavorView(httpkit.Origin(r), httpkit.CallerFrom(r.Context()).ProjectID, f.Flavor, detail)
	if atLeast(r, 55) {
		v["description"] = f.Description
	}
	if !detail {
		return v
	}
	v["rxtx_factor"] = f.RxTxFactor
	v["os-flavor-access:is_public"] = f.IsPublic
	v["OS-FLV-DISABLED:disabled"] = f.Disabled
	if atLeast(r, 61) {
		specs := f.ExtraSpecs
		if specs == nil {
			specs = map[string]string{}
		}
		v["extra_specs"] = specs
	}
	if atLeast(r, 75) {
		v["swap"] = f.SwapMB
	}
	return v
}

// flavorSortKeys are Nova's VALID_SORT_KEYS, in its order (for messages).
var flavorSortKeys = []any{"created_at", "description", "disabled", "ephemeral_gb", "flavorid", "id",
	"is_public", "memory_mb", "name", "root_gb", "rxtx_factor", "swap", "updated_at", "vcpu_weight", "vcpus"}

// flavorListOptions reads a flavor list's query as Nova's index_query
// schema (strict from 2.75) and _get_flavors do; limit is the page size.
func flavorListOptions(r *http.Request) (apidb.FlavorListOptions, int, error) {
	ctx := r.Context()
	q := r.URL.Query()
	c := httpkit.CallerFrom(ctx)
	o := apidb.FlavorListOptions{Viewer: flavorViewer(ctx)}
	limit, err := queryLimit(q)
	if err != nil {
		return o, 0, err
	}
	for _, p := range []struct {
		key  string
		enum []any
	}{{"sort_key", flavorSortKeys}, {"sort_dir", []any{"asc", "desc"}}} {
		for _, v := range q[p.key] {
			if !slices.Contains(p.enum, any(v)) {
				return o, 0, bad("Invalid input for query parameters %s. Value: %s. %s is not one of %s", p.key, v, pyRepr(v), pyRepr(p.enum))
			}
		}
	}
	if atLeast(r, 75) {
		if err := checkQuery(q, "limit", "marker", "is_public", "minRam", "minDisk", "sort_key", "sort_dir"); err != nil {
			return o, 0, err
		}
	}
	o.SortKey, o.SortDir = lastValue(q, "sort_key"), lastValue(q, "sort_dir")
	o.Marker = lastValue(q, "marker")
	if c.Admin {
		// Only admins choose; anyone else sees public and accessible
		// flavors, never disabled ones.
		o.IncludeDisabled = true
		yes := true
		o.IsPublic = &yes
		if q.Has("is_public") {
			s := lastValue(q, "is_public")
			switch v := strings.ToLower(strings.TrimSpace(s)); {
			case strings.ToLower(s) == "none":
				o.IsPublic = nil
			case slices.Contains([]string{"1", "t", "true", "on", "y", "yes"}, v):
			case slices.Contains([]string{"0", "f", "false", "off", "n", "no"}, v):
				no := false
				o.IsPublic = &no
			default:
				return o, 0, bad("Invalid is_public filter [%s]", s)
			}
		}
	} else {
		yes := true
		o.IsPublic = &yes
	}
	for _, p := range []struct {
		key string
		dst **int64
	}{{"minRam", &o.MinRAMMB}, {"minDisk", &o.MinRootGB}} {
		if !q.Has(p.key) {
			continue
		}
		s := lastValue(q, p.key)
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return o, 0, bad("Invalid %s filter [%s]", p.key, s)
		}
		*p.dst = &n
	}
	return o, limit, nil
}

// flavorViewer is who the caller is, to the flavor store.
func flavorViewer(ctx context.Context) apidb.FlavorViewer {
	c := httpkit.CallerFrom(ctx)
	return apidb.FlavorViewer{Admin: c.Admin, ProjectID: c.ProjectID}
}

// getFlavor reads a flavor the caller may see (Nova's common.get_flavor):
// any other is a 404.
func (h *flavorsHandler) getFlavor(ctx context.Context, id string) (apidb.FlavorDetail, error) {
	f, err := apidb.GetFlavorDetail(ctx, h.cfg.DB, id, flavorViewer(ctx))
	if errors.Is(err, apidb.ErrNotFound) {
		return f, notFound("Flavor %s could not be found.", id)
	}
	return f, err
}

// listFlavors answers GET /flavors and /flavors/detail as Nova's
// FlavorsController._get_flavors: an admin sees every flavor (is_public
// chooses: absent or true, the public ones and those their project has
// access to; false, the private ones; none, all), anyone else the public
// ones and the private ones their project has access to; minRam and
// minDisk filter, sort_key and sort_dir sort, limit and marker page.
func (h *flavorsHandler) listFlavors(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		o, limit, err := flavorListOptions(r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		var fs []apidb.FlavorDetail
		if limit > 0 {
			o.Limit = limit
			fs, err = apidb.ListFlavorDetails(ctx, h.cfg.DB, o)
		}
		if errors.Is(err, apidb.ErrNotFound) {
			h.fail(w, r, bad("marker [%s] not found", o.Marker))
			return
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		out := make([]any, 0, len(fs))
		for _, f := range fs {
			out = append(out, flavorDetailView(r, f, detail))
		}
		resp := map[string]any{"flavors": out}
		if limit > 0 && len(fs) == limit {
			coll := "flavors"
			if detail {
				coll = "flavors/detail"
			}
			resp["flavors_links"] = nextLink(r, coll, fs[len(fs)-1].ID)
		}
		httpkit.WriteJSON(w, http.StatusOK, resp)
	}
}

func (h *flavorsHandler) showFlavor(w http.ResponseWriter, r *http.Request) {
	f, err := h.getFlavor(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"flavor": flavorDetailView(r, f, true)})
}
