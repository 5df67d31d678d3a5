package identity

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
)

// assignmentsHandler is /v3/role_assignments: who has which role where,
// across users and projects.
type assignmentsHandler struct {
	*base
	domains *domainsHandler
}

func (h *assignmentsHandler) register(rt *router) {
	rt.authed("GET /v3/role_assignments", "identity:list_role_assignments", h.listAssignments)
}

// listAssignments is GET /v3/role_assignments with the filters user.id,
// scope.project.id and role.id, and include_names.
func (h *assignmentsHandler) listAssignments(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "user.id", "scope.project.id", "role.id", "include_names", "effective", "include_subtree":
		case "group.id", "scope.domain.id", "scope.system", "scope.OS-INHERIT:inherited_to":
			// Nothing is assigned to groups, domains or the system here.
			httpkit.WriteJSON(w, http.StatusOK, map[string]any{"role_assignments": []any{}, "links": h.collectionLinks(r)})
			return
		default:
			h.fail(w, r, badRequest("Invalid input for query parameter '%s': it is not a role assignment filter.", k))
			return
		}
	}
	as, err := h.cfg.Store.ListAssignments(ctx, identity.Assignment{UserID: q.Get("user.id"), ProjectID: q.Get("scope.project.id"), RoleID: q.Get("role.id")})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	names := q.Has("include_names") && q.Get("include_names") != "false" && q.Get("include_names") != "0"
	root := h.rootURL(r)
	out := make([]map[string]any, 0, len(as))
	for _, x := range as {
		role := map[string]any{"id": x.RoleID}
		user := map[string]any{"id": x.UserID}
		proj := map[string]any{"id": x.ProjectID}
		if names {
			if ro, err := h.cfg.Store.GetRole(ctx, x.RoleID); err == nil {
				role["name"] = ro.Name
			}
			if u, err := h.cfg.Store.GetUser(ctx, x.UserID); err == nil {
				user["name"] = u.Name
				user["domain"] = h.domains.domainRef(r, u.DomainID)
			}
			if p, err := h.cfg.Store.GetProject(ctx, x.ProjectID); err == nil {
				proj["name"] = p.Name
				proj["domain"] = h.domains.domainRef(r, p.DomainID)
			}
		}
		out = append(out, map[string]any{"role": role, "user": user, "scope": map[string]any{"project": proj},
			"links": map[string]any{"assignment": root + "/v3/projects/" + x.ProjectID + "/users/" + x.UserID + "/roles/" + x.RoleID}})
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"role_assignments": out, "links": h.collectionLinks(r)})
}
