package identity

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/identity"
)

// grantsHandler is a user's roles on a project
// (/v3/projects/{project}/users/{user}/roles): granting, checking,
// revoking and listing them.
type grantsHandler struct {
	*base
	roles *rolesHandler
}

func (h *grantsHandler) register(rt *router) {
	rt.authed("GET /v3/projects/{project}/users/{user}/roles", "identity:list_grants", h.listGrants)
	rt.authed("PUT /v3/projects/{project}/users/{user}/roles/{role}", "identity:create_grant", h.grant)
	rt.authed("GET /v3/projects/{project}/users/{user}/roles/{role}", "identity:check_grant", h.checkGrant)
	rt.authed("HEAD /v3/projects/{project}/users/{user}/roles/{role}", "identity:check_grant", h.checkGrant)
	rt.authed("DELETE /v3/projects/{project}/users/{user}/roles/{role}", "identity:revoke_grant", h.ungrant)
}

func assignmentOf(r *http.Request) identity.Assignment {
	return identity.Assignment{UserID: r.PathValue("user"), ProjectID: r.PathValue("project"), RoleID: r.PathValue("role")}
}

func (h *grantsHandler) grant(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Store.Grant(r.Context(), assignmentOf(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *grantsHandler) checkGrant(w http.ResponseWriter, r *http.Request) {
	ok, err := h.cfg.Store.HasAssignment(r.Context(), assignmentOf(r))
	if err == nil && !ok {
		err = notFound("Could not find role assignment.")
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *grantsHandler) ungrant(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Store.Ungrant(r.Context(), assignmentOf(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	if h.cfg.Cache != nil {
		h.cfg.Cache.ForgetAll()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *grantsHandler) listGrants(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if _, err := h.cfg.Store.GetUser(ctx, r.PathValue("user")); err != nil {
		h.fail(w, r, err)
		return
	}
	if _, err := h.cfg.Store.GetProject(ctx, r.PathValue("project")); err != nil {
		h.fail(w, r, err)
		return
	}
	as, err := h.cfg.Store.ListAssignments(ctx, identity.Assignment{UserID: r.PathValue("user"), ProjectID: r.PathValue("project")})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var rs []identity.Role
	for _, x := range as {
		ro, err := h.cfg.Store.GetRole(ctx, x.RoleID)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		rs = append(rs, ro)
	}
	h.roles.writeRoles(w, r, rs)
}
