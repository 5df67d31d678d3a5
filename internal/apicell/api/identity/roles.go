package identity

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
)

// rolesHandler is /v3/roles (global roles only).
type rolesHandler struct {
	*base
}

func (h *rolesHandler) register(rt *router) {
	rt.authed("GET /v3/roles", "identity:list_roles", h.listRoles)
	rt.authed("POST /v3/roles", "identity:create_role", h.createRole)
	rt.authed("GET /v3/roles/{id}", "identity:get_role", h.showRole)
	rt.authed("DELETE /v3/roles/{id}", "identity:delete_role", h.deleteRole)
}

func (h *rolesHandler) roleView(r *http.Request, ro identity.Role) map[string]any {
	v := map[string]any{"id": ro.ID, "name": ro.Name, "domain_id": nil, "options": map[string]any{},
		"links": links(h.rootURL(r) + "/v3/roles/" + ro.ID)}
	if ro.Description != "" {
		v["description"] = ro.Description
	}
	return v
}

// writeRoles answers a list of roles.
func (h *rolesHandler) writeRoles(w http.ResponseWriter, r *http.Request, rs []identity.Role) {
	out := make([]map[string]any, len(rs))
	for i, ro := range rs {
		out[i] = h.roleView(r, ro)
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"roles": out, "links": h.collectionLinks(r)})
}

func (h *rolesHandler) listRoles(w http.ResponseWriter, r *http.Request) {
	rs, err := h.cfg.Store.ListRoles(r.Context(), r.URL.Query().Get("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeRoles(w, r, rs)
}

func (h *rolesHandler) createRole(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name        *string `json:"name"`
		Description *string `json:"description"`
		DomainID    *string `json:"domain_id"`
	}
	if err := h.decode(w, r, "role", &b); err != nil {
		h.fail(w, r, err)
		return
	}
	if b.Name == nil {
		h.fail(w, r, badRequest("Invalid input for field 'name': 'name' is a required property."))
		return
	}
	if b.DomainID != nil && *b.DomainID != "" {
		h.fail(w, r, badRequest("Invalid input for field 'domain_id': domain-specific roles are not supported."))
		return
	}
	ro := identity.Role{Name: *b.Name}
	if b.Description != nil {
		ro.Description = *b.Description
	}
	if err := h.cfg.Store.CreateRole(r.Context(), &ro); err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"role": h.roleView(r, ro)})
}

func (h *rolesHandler) showRole(w http.ResponseWriter, r *http.Request) {
	ro, err := h.cfg.Store.GetRole(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"role": h.roleView(r, ro)})
}

func (h *rolesHandler) deleteRole(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Store.DeleteRole(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	if h.cfg.Cache != nil {
		h.cfg.Cache.ForgetAll()
	}
	w.WriteHeader(http.StatusNoContent)
}
