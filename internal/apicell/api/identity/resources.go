package identity

import (
	"net/http"
	"strconv"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
)

// boolQuery reads a boolean filter (?enabled=true); nil when absent.
func boolQuery(r *http.Request, key string) (*bool, error) {
	if !r.URL.Query().Has(key) {
		return nil, nil
	}
	v, err := strconv.ParseBool(r.URL.Query().Get(key))
	if err != nil {
		return nil, badRequest("Invalid input for query parameter '%s': %q is not a boolean.", key, r.URL.Query().Get(key))
	}
	return &v, nil
}

// ---- domains ----

func (a *API) domainView(r *http.Request, d identity.Domain) map[string]any {
	return map[string]any{"id": d.ID, "name": d.Name, "description": d.Description, "enabled": d.Enabled, "tags": []string{}, "options": map[string]any{},
		"links": links(a.rootURL(r) + "/v3/domains/" + d.ID)}
}

func (a *API) listDomains(w http.ResponseWriter, r *http.Request) {
	ds, err := a.cfg.Store.ListDomains(r.Context(), r.URL.Query().Get("name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]map[string]any, len(ds))
	for i, d := range ds {
		out[i] = a.domainView(r, d)
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"domains": out, "links": a.collectionLinks(r)})
}

func (a *API) showDomain(w http.ResponseWriter, r *http.Request) {
	d, err := a.cfg.Store.GetDomain(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"domain": a.domainView(r, d)})
}

// ---- projects ----

func (a *API) projectView(r *http.Request, p identity.Project) map[string]any {
	return map[string]any{"id": p.ID, "name": p.Name, "domain_id": p.DomainID, "description": p.Description, "enabled": p.Enabled,
		"parent_id": p.DomainID, "is_domain": false, "tags": []string{}, "options": map[string]any{},
		"links": links(a.rootURL(r) + "/v3/projects/" + p.ID)}
}

func (a *API) writeProjects(w http.ResponseWriter, r *http.Request, ps []identity.Project) {
	out := make([]map[string]any, len(ps))
	for i, p := range ps {
		out[i] = a.projectView(r, p)
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"projects": out, "links": a.collectionLinks(r)})
}

func (a *API) listProjects(w http.ResponseWriter, r *http.Request) {
	en, err := boolQuery(r, "enabled")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	ps, err := a.cfg.Store.ListProjects(r.Context(), identity.ProjectFilter{Name: q.Get("name"), DomainID: q.Get("domain_id"), Enabled: en})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeProjects(w, r, ps)
}

type projectBody struct {
	Name        *string `json:"name"`
	DomainID    *string `json:"domain_id"`
	Description *string `json:"description"`
	Enabled     *bool   `json:"enabled"`
	ParentID    *string `json:"parent_id"`
	IsDomain    *bool   `json:"is_domain"`
}

func (a *API) createProject(w http.ResponseWriter, r *http.Request) {
	var b projectBody
	if err := a.decode(w, r, "project", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if b.Name == nil {
		a.fail(w, r, badRequest("Invalid input for field 'name': 'name' is a required property."))
		return
	}
	if b.IsDomain != nil && *b.IsDomain {
		a.fail(w, r, badRequest("Invalid input for field 'is_domain': projects acting as domains are not supported."))
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
		a.fail(w, r, badRequest("Invalid input for field 'parent_id': nested projects are not supported; the parent must be the domain."))
		return
	}
	if b.Description != nil {
		p.Description = *b.Description
	}
	if b.Enabled != nil {
		p.Enabled = *b.Enabled
	}
	if err := a.cfg.Store.CreateProject(r.Context(), &p); err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"project": a.projectView(r, p)})
}

func (a *API) showProject(w http.ResponseWriter, r *http.Request) {
	p, err := a.cfg.Store.GetProject(r.Context(), r.PathValue("id"))
	if err == nil && !a.allowed(r.Context(), "identity:get_project", map[string]string{"project_id": p.ID}) {
		writeError(w, http.StatusForbidden, forbidden("identity:get_project"))
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"project": a.projectView(r, p)})
}

func (a *API) updateProject(w http.ResponseWriter, r *http.Request) {
	var b projectBody
	if err := a.decode(w, r, "project", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if b.DomainID != nil {
		a.fail(w, r, badRequest("Invalid input for field 'domain_id': a project's domain cannot be changed."))
		return
	}
	p, err := a.cfg.Store.UpdateProject(r.Context(), r.PathValue("id"), identity.ProjectPatch{Name: b.Name, Description: b.Description, Enabled: b.Enabled})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if b.Enabled != nil && !*b.Enabled && a.cfg.Cache != nil {
		a.cfg.Cache.ForgetAll()
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"project": a.projectView(r, p)})
}

func (a *API) deleteProject(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Store.DeleteProject(r.Context(), r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	if a.cfg.Cache != nil {
		a.cfg.Cache.ForgetAll()
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- users ----

func (a *API) userView(r *http.Request, u identity.User) map[string]any {
	v := map[string]any{"id": u.ID, "name": u.Name, "domain_id": u.DomainID, "enabled": u.Enabled, "password_expires_at": nil, "options": map[string]any{},
		"links": links(a.rootURL(r) + "/v3/users/" + u.ID)}
	if u.DefaultProjectID != "" {
		v["default_project_id"] = u.DefaultProjectID
	}
	if u.Email != "" {
		v["email"] = u.Email
	}
	if u.Description != "" {
		v["description"] = u.Description
	}
	return v
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	en, err := boolQuery(r, "enabled")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	us, err := a.cfg.Store.ListUsers(r.Context(), identity.UserFilter{Name: q.Get("name"), DomainID: q.Get("domain_id"), Enabled: en})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]map[string]any, len(us))
	for i, u := range us {
		out[i] = a.userView(r, u)
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"users": out, "links": a.collectionLinks(r)})
}

type userBody struct {
	Name             *string `json:"name"`
	DomainID         *string `json:"domain_id"`
	Password         *string `json:"password"`
	Enabled          *bool   `json:"enabled"`
	DefaultProjectID *string `json:"default_project_id"`
	Email            *string `json:"email"`
	Description      *string `json:"description"`
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	var b userBody
	if err := a.decode(w, r, "user", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if b.Name == nil {
		a.fail(w, r, badRequest("Invalid input for field 'name': 'name' is a required property."))
		return
	}
	u := identity.User{Name: *b.Name, Enabled: true}
	if b.DomainID != nil {
		u.DomainID = *b.DomainID
	} else {
		u.DomainID = caller(r.Context()).ProjectDomainID
	}
	if b.Enabled != nil {
		u.Enabled = *b.Enabled
	}
	if b.DefaultProjectID != nil {
		u.DefaultProjectID = *b.DefaultProjectID
	}
	if b.Email != nil {
		u.Email = *b.Email
	}
	if b.Description != nil {
		u.Description = *b.Description
	}
	pw := ""
	if b.Password != nil {
		pw = *b.Password
	}
	if err := a.cfg.Store.CreateUser(r.Context(), &u, pw); err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"user": a.userView(r, u)})
}

// ownOr checks rule with the user as the target, so a user may always act
// on themselves where the rule says user_id:%(user_id)s.
func (a *API) ownOr(w http.ResponseWriter, r *http.Request, rule string) bool {
	if !a.allowed(r.Context(), rule, map[string]string{"user_id": r.PathValue("id")}) {
		writeError(w, http.StatusForbidden, forbidden(rule))
		return false
	}
	return true
}

func (a *API) showUser(w http.ResponseWriter, r *http.Request) {
	if !a.ownOr(w, r, "identity:get_user") {
		return
	}
	u, err := a.cfg.Store.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"user": a.userView(r, u)})
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request) {
	var b userBody
	if err := a.decode(w, r, "user", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if b.DomainID != nil {
		a.fail(w, r, badRequest("Invalid input for field 'domain_id': a user's domain cannot be changed."))
		return
	}
	u, err := a.cfg.Store.UpdateUser(r.Context(), r.PathValue("id"), identity.UserPatch{Name: b.Name, Description: b.Description, Email: b.Email,
		DefaultProjectID: b.DefaultProjectID, Password: b.Password, Enabled: b.Enabled})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if (b.Password != nil || (b.Enabled != nil && !*b.Enabled)) && a.cfg.Cache != nil {
		a.cfg.Cache.ForgetAll()
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"user": a.userView(r, u)})
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Store.DeleteUser(r.Context(), r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	if a.cfg.Cache != nil {
		a.cfg.Cache.ForgetAll()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) userProjects(w http.ResponseWriter, r *http.Request) {
	if !a.ownOr(w, r, "identity:list_user_projects") {
		return
	}
	if _, err := a.cfg.Store.GetUser(r.Context(), r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	ps, err := a.cfg.Store.ListProjects(r.Context(), identity.ProjectFilter{UserID: r.PathValue("id")})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeProjects(w, r, ps)
}

// ---- roles ----

func (a *API) roleView(r *http.Request, ro identity.Role) map[string]any {
	v := map[string]any{"id": ro.ID, "name": ro.Name, "domain_id": nil, "options": map[string]any{},
		"links": links(a.rootURL(r) + "/v3/roles/" + ro.ID)}
	if ro.Description != "" {
		v["description"] = ro.Description
	}
	return v
}

func (a *API) writeRoles(w http.ResponseWriter, r *http.Request, rs []identity.Role) {
	out := make([]map[string]any, len(rs))
	for i, ro := range rs {
		out[i] = a.roleView(r, ro)
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"roles": out, "links": a.collectionLinks(r)})
}

func (a *API) listRoles(w http.ResponseWriter, r *http.Request) {
	rs, err := a.cfg.Store.ListRoles(r.Context(), r.URL.Query().Get("name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeRoles(w, r, rs)
}

func (a *API) createRole(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name        *string `json:"name"`
		Description *string `json:"description"`
		DomainID    *string `json:"domain_id"`
	}
	if err := a.decode(w, r, "role", &b); err != nil {
		a.fail(w, r, err)
		return
	}
	if b.Name == nil {
		a.fail(w, r, badRequest("Invalid input for field 'name': 'name' is a required property."))
		return
	}
	if b.DomainID != nil && *b.DomainID != "" {
		a.fail(w, r, badRequest("Invalid input for field 'domain_id': domain-specific roles are not supported."))
		return
	}
	ro := identity.Role{Name: *b.Name}
	if b.Description != nil {
		ro.Description = *b.Description
	}
	if err := a.cfg.Store.CreateRole(r.Context(), &ro); err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"role": a.roleView(r, ro)})
}

func (a *API) showRole(w http.ResponseWriter, r *http.Request) {
	ro, err := a.cfg.Store.GetRole(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"role": a.roleView(r, ro)})
}

func (a *API) deleteRole(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Store.DeleteRole(r.Context(), r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	if a.cfg.Cache != nil {
		a.cfg.Cache.ForgetAll()
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- grants and assignments ----

func assignmentOf(r *http.Request) identity.Assignment {
	return identity.Assignment{UserID: r.PathValue("user"), ProjectID: r.PathValue("project"), RoleID: r.PathValue("role")}
}

func (a *API) grant(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Store.Grant(r.Context(), assignmentOf(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) checkGrant(w http.ResponseWriter, r *http.Request) {
	ok, err := a.cfg.Store.HasAssignment(r.Context(), assignmentOf(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "Could not find role assignment.")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) ungrant(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Store.Ungrant(r.Context(), assignmentOf(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	if a.cfg.Cache != nil {
		a.cfg.Cache.ForgetAll()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listGrants(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if _, err := a.cfg.Store.GetUser(ctx, r.PathValue("user")); err != nil {
		a.fail(w, r, err)
		return
	}
	if _, err := a.cfg.Store.GetProject(ctx, r.PathValue("project")); err != nil {
		a.fail(w, r, err)
		return
	}
	as, err := a.cfg.Store.ListAssignments(ctx, identity.Assignment{UserID: r.PathValue("user"), ProjectID: r.PathValue("project")})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var rs []identity.Role
	for _, x := range as {
		ro, err := a.cfg.Store.GetRole(ctx, x.RoleID)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		rs = append(rs, ro)
	}
	a.writeRoles(w, r, rs)
}

// listAssignments is GET /v3/role_assignments with the filters user.id,
// scope.project.id and role.id, and include_names.
func (a *API) listAssignments(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "user.id", "scope.project.id", "role.id", "include_names", "effective", "include_subtree":
		case "group.id", "scope.domain.id", "scope.system", "scope.OS-INHERIT:inherited_to":
			// Nothing is assigned to groups, domains or the system here.
			httpkit.WriteJSON(w, http.StatusOK, map[string]any{"role_assignments": []any{}, "links": a.collectionLinks(r)})
			return
		default:
			a.fail(w, r, badRequest("Invalid input for query parameter '%s': it is not a role assignment filter.", k))
			return
		}
	}
	as, err := a.cfg.Store.ListAssignments(ctx, identity.Assignment{UserID: q.Get("user.id"), ProjectID: q.Get("scope.project.id"), RoleID: q.Get("role.id")})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	names := q.Has("include_names") && q.Get("include_names") != "false" && q.Get("include_names") != "0"
	root := a.rootURL(r)
	out := make([]map[string]any, 0, len(as))
	for _, x := range as {
		role := map[string]any{"id": x.RoleID}
		user := map[string]any{"id": x.UserID}
		proj := map[string]any{"id": x.ProjectID}
		if names {
			if ro, err := a.cfg.Store.GetRole(ctx, x.RoleID); err == nil {
				role["name"] = ro.Name
			}
			if u, err := a.cfg.Store.GetUser(ctx, x.UserID); err == nil {
				user["name"] = u.Name
				user["domain"] = a.domainRef(r, u.DomainID)
			}
			if p, err := a.cfg.Store.GetProject(ctx, x.ProjectID); err == nil {
				proj["name"] = p.Name
				proj["domain"] = a.domainRef(r, p.DomainID)
			}
		}
		out = append(out, map[string]any{"role": role, "user": user, "scope": map[string]any{"project": proj},
			"links": map[string]any{"assignment": root + "/v3/projects/" + x.ProjectID + "/users/" + x.UserID + "/roles/" + x.RoleID}})
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"role_assignments": out, "links": a.collectionLinks(r)})
}

func (a *API) domainRef(r *http.Request, id string) map[string]any {
	d, err := a.cfg.Store.GetDomain(r.Context(), id)
	if err != nil {
		return map[string]any{"id": id}
	}
	return map[string]any{"id": d.ID, "name": d.Name}
}

// ---- the catalog as services, endpoints and regions ----

func (a *API) listServices(w http.ResponseWriter, r *http.Request) {
	out := []map[string]any{}
	for _, e := range a.cfg.Catalog {
		out = append(out, map[string]any{"id": serviceID(e.Type), "type": e.Type, "name": e.Name, "enabled": true,
			"links": links(a.rootURL(r) + "/v3/services/" + serviceID(e.Type))})
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"services": out, "links": a.collectionLinks(r)})
}

func (a *API) listEndpoints(w http.ResponseWriter, r *http.Request) {
	out := []map[string]any{}
	for _, e := range a.cfg.Catalog {
		for _, iface := range []string{"public", "internal", "admin"} {
			out = append(out, map[string]any{"id": endpointID(e.Type, iface), "interface": iface, "region": a.cfg.Region, "region_id": a.cfg.Region,
				"service_id": serviceID(e.Type), "url": e.URL(baseURL(r)), "enabled": true,
				"links": links(a.rootURL(r) + "/v3/endpoints/" + endpointID(e.Type, iface))})
		}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"endpoints": out, "links": a.collectionLinks(r)})
}

func (a *API) listRegions(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"regions": []any{map[string]any{"id": a.cfg.Region, "description": "", "parent_region_id": nil,
		"links": links(a.rootURL(r) + "/v3/regions/" + a.cfg.Region)}}, "links": a.collectionLinks(r)})
}
