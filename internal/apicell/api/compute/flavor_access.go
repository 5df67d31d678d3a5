package compute

import (
	"errors"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// flavorAccessHandler is os-flavor-access: the projects a private flavor
// is shared with, and the addTenantAccess and removeTenantAccess actions.
type flavorAccessHandler struct {
	*base
	flavors *flavorsHandler
}

func (h *flavorAccessHandler) register(rt *router) {
	rt.handle("POST /v2.1/flavors/{id}/action", "", h.flavorAction)
	rt.handle("GET /v2.1/flavors/{id}/os-flavor-access", "", h.listFlavorAccess)
}

// flavorAction dispatches POST /flavors/{id}/action: addTenantAccess and
// removeTenantAccess.
func (h *flavorAccessHandler) flavorAction(w http.ResponseWriter, r *http.Request) {
	action, body, err := readAction(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	switch action {
	case "addTenantAccess", "removeTenantAccess":
		h.tenantAccess(w, r, body, action)
	default:
		h.fail(w, r, bad("There is no such action: %s", action))
	}
}

func (h *flavorAccessHandler) tenantAccess(w http.ResponseWriter, r *http.Request, body map[string]any, action string) {
	ctx := r.Context()
	vals, err := objectField(body, action, []string{"tenant"}, []string{"tenant"}, func(f map[string]any) error {
		if v, ok := f["tenant"]; ok {
			return checkString("tenant", v, 1, 255)
		}
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	add := action == "addTenantAccess"
	rule := "os_compute_api:os-flavor-access:remove_tenant_access"
	if add {
		rule = "os_compute_api:os-flavor-access:add_tenant_access"
	}
	if err := h.authorize(ctx, rule, nil); err != nil {
		h.fail(w, r, err)
		return
	}
	tenant := vals["tenant"].(string)
	id := r.PathValue("id")
	f, err := h.flavors.getFlavor(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if add && f.IsPublic && atLeast(r, 7) {
		h.fail(w, r, conflict("Can not add access to a public flavor."))
		return
	}
	var projects []string
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		var err error
		if add {
			err = apidb.AddFlavorAccess(ctx, tx, id, tenant)
		} else {
			err = apidb.RemoveFlavorAccess(ctx, tx, id, tenant)
		}
		if err != nil {
			return err
		}
		projects, err = apidb.FlavorProjects(ctx, tx, id)
		return err
	})
	switch {
	case errors.Is(err, apidb.ErrNotFound):
		err = notFound("Flavor %s could not be found.", id)
	case errors.Is(err, apidb.ErrAccessExists):
		err = conflict("Flavor access already exists for flavor %s and project %s combination.", id, tenant)
	case errors.Is(err, apidb.ErrAccessNotFound):
		err = notFound("Flavor access not found for %s / %s combination.", id, tenant)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("flavor access changed", "request_id", httpkit.RequestID(ctx), "flavor", id, "action", action, "project", tenant)
	httpkit.WriteJSON(w, http.StatusOK, flavorAccessView(id, projects))
}

func (h *flavorAccessHandler) listFlavorAccess(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := h.authorize(ctx, "os_compute_api:os-flavor-access", nil); err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	f, err := h.flavors.getFlavor(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if f.IsPublic {
		h.fail(w, r, notFound("Access list not available for public flavors."))
		return
	}
	projects, err := apidb.FlavorProjects(ctx, h.cfg.DB, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, flavorAccessView(id, projects))
}

func flavorAccessView(id string, projects []string) map[string]any {
	out := make([]map[string]string, 0, len(projects))
	for _, p := range projects {
		out = append(out, map[string]string{"flavor_id": id, "tenant_id": p})
	}
	return map[string]any{"flavor_access": out}
}
