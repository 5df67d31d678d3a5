package identity

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
)

// usersHandler is /v3/users, and a user's projects.
type usersHandler struct {
	*base
	projects *projectsHandler
}

func (h *usersHandler) register(rt *router) {
	rt.authed("GET /v3/users", "identity:list_users", h.listUsers)
	rt.authed("POST /v3/users", "identity:create_user", h.createUser)
	rt.authed("GET /v3/users/{id}", "identity:get_user", h.showUser)
	rt.authed("PATCH /v3/users/{id}", "identity:update_user", h.updateUser)
	rt.authed("DELETE /v3/users/{id}", "identity:delete_user", h.deleteUser)
	rt.authed("GET /v3/users/{id}/projects", "identity:list_user_projects", h.userProjects)
}

func (h *usersHandler) userView(r *http.Request, u identity.User) map[string]any {
	v := map[string]any{"id": u.ID, "name": u.Name, "domain_id": u.DomainID, "enabled": u.Enabled, "password_expires_at": nil, "options": map[string]any{},
		"links": links(h.rootURL(r) + "/v3/users/" + u.ID)}
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

func (h *usersHandler) listUsers(w http.ResponseWriter, r *http.Request) {
	en, err := boolQuery(r, "enabled")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	us, err := h.cfg.Store.ListUsers(r.Context(), identity.UserFilter{Name: q.Get("name"), DomainID: q.Get("domain_id"), Enabled: en})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]map[string]any, len(us))
	for i, u := range us {
		out[i] = h.userView(r, u)
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"users": out, "links": h.collectionLinks(r)})
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

func (h *usersHandler) createUser(w http.ResponseWriter, r *http.Request) {
	var b userBody
	if err := h.decode(w, r, "user", &b); err != nil {
		h.fail(w, r, err)
		return
	}
	if b.Name == nil {
		h.fail(w, r, badRequest("Invalid input for field 'name': 'name' is a required property."))
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
	if err := h.cfg.Store.CreateUser(r.Context(), &u, pw); err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"user": h.userView(r, u)})
}

// ownOr checks rule with the user as the target, so a user may always act
// on themselves where the rule says user_id:%(user_id)s.
func (h *usersHandler) ownOr(r *http.Request, rule string) error {
	return h.check(r.Context(), rule, map[string]string{"user_id": r.PathValue("id")})
}

func (h *usersHandler) showUser(w http.ResponseWriter, r *http.Request) {
	if err := h.ownOr(r, "identity:get_user"); err != nil {
		h.fail(w, r, err)
		return
	}
	u, err := h.cfg.Store.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"user": h.userView(r, u)})
}

// updateUser is PATCH /v3/users/{id}. The body is Keystone's
// user_update_request (keystone/identity/schema.py): "user" an object of at
// least one property; null or {} is a 400, as in Keystone.
func (h *usersHandler) updateUser(w http.ResponseWriter, r *http.Request) {
	var raw json.RawMessage
	if err := h.decode(w, r, "user", &raw); err != nil {
		h.fail(w, r, err)
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		h.fail(w, r, badRequest("Invalid input for field 'user': %s is not of type 'object'.", schemaValue(raw)))
		return
	}
	if len(fields) == 0 {
		h.fail(w, r, badRequest("Invalid input for field 'user': {} does not have enough properties."))
		return
	}
	var b userBody
	if err := json.Unmarshal(raw, &b); err != nil {
		h.fail(w, r, badRequest("Invalid input for field 'user': %s", jsonError(err)))
		return
	}
	if b.DomainID != nil {
		h.fail(w, r, badRequest("Invalid input for field 'domain_id': a user's domain cannot be changed."))
		return
	}
	u, err := h.cfg.Store.UpdateUser(r.Context(), r.PathValue("id"), identity.UserPatch{Name: b.Name, Description: b.Description, Email: b.Email,
		DefaultProjectID: b.DefaultProjectID, Password: b.Password, Enabled: b.Enabled})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if (b.Password != nil || (b.Enabled != nil && !*b.Enabled)) && h.cfg.Cache != nil {
		h.cfg.Cache.ForgetAll()
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"user": h.userView(r, u)})
}

func (h *usersHandler) deleteUser(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Store.DeleteUser(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	if h.cfg.Cache != nil {
		h.cfg.Cache.ForgetAll()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *usersHandler) userProjects(w http.ResponseWriter, r *http.Request) {
	if err := h.ownOr(r, "identity:list_user_projects"); err != nil {
		h.fail(w, r, err)
		return
	}
	if _, err := h.cfg.Store.GetUser(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	ps, err := h.cfg.Store.ListProjects(r.Context(), identity.ProjectFilter{UserID: r.PathValue("id")})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.projects.writeProjects(w, r, ps)
}

// schemaValue shows a JSON value in a validation message as Keystone's
// (Python) messages do for the common cases: null as None, true and false
// as True and False, a string in single quotes, anything else as its JSON
// text; cut short.
func schemaValue(raw json.RawMessage) string {
	switch t := strings.TrimSpace(string(raw)); t {
	case "null":
		return "None"
	case "true":
		return "True"
	case "false":
		return "False"
	default:
		var str string
		if json.Unmarshal(raw, &str) == nil {
			t = "'" + str + "'"
		}
		if len(t) > 40 {
			return t[:40] + "..."
		}
		return t
	}
}
