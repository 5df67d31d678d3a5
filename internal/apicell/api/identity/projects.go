package identity

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
)

// projectsHandler is /v3/projects, and /v3/auth/projects (the projects
// the caller may scope a token to).
type projectsHandler struct {
	*base
}

func (h *projectsHandler) register(rt *router) {
	rt.authed("GET /v3/auth/projects", "", h.authProjects)
	rt.authed("GET /v3/projects", "identity:list_projects", h.listProjects)
	rt.authed("POST /v3/projects", "identity:create_project", h.createProject)
	rt.authed("GET /v3/projects/{id}", "identity:get_project", h.showProject)
	rt.authed("PATCH /v3/projects/{id}", "identity:update_project", h.updateProject)
	rt.authed("DELETE /v3/projects/{id}", "identity:delete_project", h.deleteProject)
}

func (h *projectsHandler) projectView(r *http.Request, p identity.Project) map[string]any {
	return map[string]any{"id": p.ID, "name": p.Name, "domain_id": p.DomainID, "description": p.Description, "enabled": p.Enabled,
		"parent_id": p.DomainID, "is_domain": false, "tags": []string{}, "options": map[string]any{},
		"links": links(h.rootURL(r) + "/v3/projects/" + p.ID)}
}

// writeProjects answers a list of projects.
func (h *projectsHandler) writeProjects(w http.ResponseWriter, r *http.Request, ps []identity.Project) {
	out := make([]map[string]any, len(ps))
	for i, p := range ps {
		out[i] = h.projectView(r, p)
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"projects": out, "links": h.collectionLinks(r)})
}

func (h *projectsHandler) listProjects(w http.ResponseWriter, r *http.Request) {
	en, err := boolQuery(r, "enabled")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	ps, err := h.cfg.Store.ListProjects(r.Context(), identity.ProjectFilter{Name: q.Get("name"), DomainID: q.Get("domain_id"), Enabled: en})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeProjects(w, r, ps)
}

type projectBody struct {
	Name        *string `json:"name"`
	DomainID    *string `json:"domain_id"`
	Description *string `json:"description"`
	Enabled     *bool   `json:"enabled"`
	ParentID    *string `json:"parent_id"`
	IsDomain    *bool   `json:"is_domain"`
}

func (h *projectsHandler) createProject(w http.ResponseWriter, r *http.Request) {
	var b projectBody
	if err := h.decode(w, r, "project", &b); err != nil {
		h.fail(w, r, err)
		return
	}
	if b.Name == nil {
		h.fail(w, r, badRequest("Invalid input for field 'name': 'name' is a required property."))
		return
	}
	if b.IsDomain != nil && *b.IsDomain {
		h.fail(w, r, badRequest("Invalid input for field 'is_domain': projects acting as domains are not supported."))
		return
	}
	p := identity.Project{Name: *b.Name, Enabled: true}
	if b.DomainID != nil {
		p.DomainID = *b.DomainID
	} else {
		// Keystone puts a project in the domain of the caller's project.
		p.DomainID = caller(r.Context()).ProjectDomainID
	}
	if b.ParentID != nil && *b.ParentID != "" && *b.ParentID != p.DomainID {
		h.fail(w, r, badRequest("Invalid input for field 'parent_id': nested projects are not supported; the parent must be the domain."))
		return
	}
	if b.Description != nil {
		p.Description = *b.Description
	}
	if b.Enabled != nil {
		p.Enabled = *b.Enabled
	}
	if err := h.cfg.Store.CreateProject(r.Context(), &p); err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"project": h.projectView(r, p)})
}

func (h *projectsHandler) showProject(w http.ResponseWriter, r *http.Request) {
	p, err := h.cfg.Store.GetProject(r.Context(), r.PathValue("id"))
	if err == nil {
		err = h.check(r.Context(), "identity:get_project", map[string]string{"project_id": p.ID})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"project": h.projectView(r, p)})
}

func (h *projectsHandler) updateProject(w http.ResponseWriter, r *http.Request) {
	var b projectBody
	if err := h.decode(w, r, "project", &b); err != nil {
		h.fail(w, r, err)
		return
	}
	if b.DomainID != nil {
		h.fail(w, r, badRequest("Invalid input for field 'domain_id': a project's domain cannot be changed."))
		return
	}
	p, err := h.cfg.Store.UpdateProject(r.Context(), r.PathValue("id"), identity.ProjectPatch{Name: b.Name, Description: b.Description, Enabled: b.Enabled})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if b.Enabled != nil && !*b.Enabled && h.cfg.Cache != nil {
		h.cfg.Cache.ForgetAll()
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"project": h.projectView(r, p)})
}

func (h *projectsHandler) deleteProject(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Store.DeleteProject(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	if h.cfg.Cache != nil {
		h.cfg.Cache.ForgetAll()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *projectsHandler) authProjects(w http.ResponseWriter, r *http.Request) {
	ps, err := h.cfg.Store.ListProjects(r.Context(), identity.ProjectFilter{UserID: caller(r.Context()).UserID})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeProjects(w, r, ps)
}
