package identity

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
)

func (a *API) versions(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{a.versionDoc(r)}}})
}

func (a *API) version(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"version": a.versionDoc(r)})
}

func (a *API) versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []any{map[string]any{"rel": "self", "href": a.rootURL(r) + "/v3/"}},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}

// authBody is POST /v3/auth/tokens.
type authBody struct {
	Identity *struct {
		Methods  []string `json:"methods"`
		Password *struct {
			User *struct {
				ID       string   `json:"id"`
				Name     string   `json:"name"`
				Password *string  `json:"password"`
				Domain   *nameRef `json:"domain"`
			} `json:"user"`
		} `json:"password"`
		Token *struct {
			ID string `json:"id"`
		} `json:"token"`
	} `json:"identity"`
	Scope json.RawMessage `json:"scope"`
}

type nameRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (a *API) issueToken(w http.ResponseWriter, r *http.Request) {
	var body authBody
	if err := a.decode(w, r, "auth", &body); err != nil {
		a.fail(w, r, err)
		return
	}
	req, err := parseAuth(r, &body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	t, secret, err := a.cfg.Store.Issue(r.Context(), req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("token issued", "request_id", httpkit.RequestID(r.Context()), "user", t.User.ID, "project", projectID(t), "methods", t.Methods)
	w.Header().Set("X-Subject-Token", secret)
	httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"token": a.tokenView(r, t, !r.URL.Query().Has("nocatalog"))})
}

func projectID(t *identity.Token) string {
	if t.Project == nil {
		return ""
	}
	return t.Project.ID
}

// parseAuth checks an auth body as Keystone's schema does.
func parseAuth(r *http.Request, b *authBody) (identity.AuthRequest, error) {
	var req identity.AuthRequest
	if b.Identity == nil {
		return req, badRequest("Invalid input for field 'identity': 'identity' is a required property.")
	}
	if len(b.Identity.Methods) == 0 {
		return req, badRequest("Invalid input for field 'identity/methods': 'methods' is a required property with at least one method.")
	}
	for _, m := range b.Identity.Methods {
		switch m {
		case "password":
			p := b.Identity.Password
			if p == nil || p.User == nil {
				return req, badRequest("Invalid input for field 'identity/password/user': 'user' is a required property.")
			}
			if p.User.Password == nil {
				return req, badRequest("Invalid input for field 'identity/password/user/password': 'password' is a required property.")
			}
			pm := &identity.PasswordMethod{UserID: p.User.ID, UserName: p.User.Name, Password: *p.User.Password}
			if p.User.Domain != nil {
				pm.DomainID, pm.DomainName = p.User.Domain.ID, p.User.Domain.Name
			}
			req.Password = pm
		case "token":
			if b.Identity.Token == nil || b.Identity.Token.ID == "" {
				return req, badRequest("Invalid input for field 'identity/token/id': 'id' is a required property.")
			}
			req.Token = b.Identity.Token.ID
		default:
			return req, &httpkit.Fault{Status: http.StatusUnauthorized, Message: "Attempted to authenticate with an unsupported method."}
		}
	}
	if req.Password != nil && req.Token != "" {
		req.Token = ""
	}
	if len(b.Scope) == 0 || string(b.Scope) == "null" {
		return req, nil
	}
	var unscoped string
	if json.Unmarshal(b.Scope, &unscoped) == nil {
		if unscoped != "unscoped" {
			return req, badRequest("Invalid input for field 'scope': %q is not 'unscoped' or an object.", unscoped)
		}
		req.Scope.Unscoped = true
		return req, nil
	}
	var sc struct {
		Project *struct {
			ID     string   `json:"id"`
			Name   string   `json:"name"`
			Domain *nameRef `json:"domain"`
		} `json:"project"`
		Domain *nameRef        `json:"domain"`
		System json.RawMessage `json:"system"`
	}
	if err := json.Unmarshal(b.Scope, &sc); err != nil {
		return req, badRequest("Invalid input for field 'scope': %s", jsonError(err))
	}
	switch {
	case sc.Project != nil:
		if sc.Project.ID == "" && sc.Project.Name == "" {
			return req, badRequest("Invalid input for field 'scope/project': give an id or a name.")
		}
		req.Scope.ProjectID, req.Scope.ProjectName = sc.Project.ID, sc.Project.Name
		if sc.Project.Domain != nil {
			req.Scope.DomainID, req.Scope.DomainName = sc.Project.Domain.ID, sc.Project.Domain.Name
		}
	case sc.Domain != nil, len(sc.System) > 0:
		return req, &httpkit.Fault{Status: http.StatusUnauthorized, Message: "Domain and system scoped tokens are not supported; ask for a project-scoped token."}
	default:
		return req, badRequest("Invalid input for field 'scope': give a project.")
	}
	return req, nil
}

// tokenView is the token body of Keystone v3.
func (a *API) tokenView(r *http.Request, t *identity.Token, catalog bool) map[string]any {
	v := map[string]any{
		"methods":    t.Methods,
		"user":       map[string]any{"id": t.User.ID, "name": t.User.Name, "domain": map[string]any{"id": t.UserDom.ID, "name": t.UserDom.Name}, "password_expires_at": nil},
		"audit_ids":  []string{t.AuditID},
		"expires_at": timestamp(t.ExpiresAt),
		"issued_at":  timestamp(t.IssuedAt),
	}
	if t.Project != nil {
		v["project"] = map[string]any{"id": t.Project.ID, "name": t.Project.Name, "domain": map[string]any{"id": t.ProjDom.ID, "name": t.ProjDom.Name}}
		v["is_domain"] = false
		roles := make([]map[string]any, len(t.Roles))
		for i, ro := range t.Roles {
			roles[i] = map[string]any{"id": ro.ID, "name": ro.Name}
		}
		v["roles"] = roles
		if catalog {
			v["catalog"] = a.catalog(r)
		}
	}
	return v
}

// catalog is the service catalog for a request: every service with a
// public, an internal and an admin endpoint (all the same URL).
func (a *API) catalog(r *http.Request) []map[string]any {
	base := baseURL(r)
	out := make([]map[string]any, 0, len(a.cfg.Catalog))
	for _, e := range a.cfg.Catalog {
		url := e.URL(base)
		var eps []map[string]any
		for _, iface := range []string{"public", "internal", "admin"} {
			eps = append(eps, map[string]any{"id": endpointID(e.Type, iface), "interface": iface, "region": a.cfg.Region, "region_id": a.cfg.Region, "url": url})
		}
		out = append(out, map[string]any{"id": serviceID(e.Type), "type": e.Type, "name": e.Name, "endpoints": eps})
	}
	return out
}

// Service and endpoint ids are stable names, so that the catalog needs
// no table.
func serviceID(typ string) string         { return typ + "-service" }
func endpointID(typ, iface string) string { return typ + "-" + iface }

// subject validates the X-Subject-Token of a token request.
func (a *API) subject(w http.ResponseWriter, r *http.Request) (*identity.Token, bool) {
	sub := r.Header.Get("X-Subject-Token")
	if sub == "" {
		writeError(w, http.StatusBadRequest, "Invalid input for field 'X-Subject-Token': the header is required.")
		return nil, false
	}
	t, err := a.cfg.Store.Validate(r.Context(), sub)
	if err != nil {
		if errors.Is(err, identity.ErrTokenNotFound) {
			writeError(w, http.StatusNotFound, "Could not find token: "+abbrev(sub)+".")
			return nil, false
		}
		a.fail(w, r, err)
		return nil, false
	}
	// A token may always look at itself; looking at another's needs the rule.
	if t.User.ID != caller(r.Context()).UserID && !a.allowed(r.Context(), "identity:validate_token", map[string]string{"user_id": t.User.ID}) {
		writeError(w, http.StatusForbidden, forbidden("identity:validate_token"))
		return nil, false
	}
	return t, true
}

func abbrev(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

func (a *API) validateToken(w http.ResponseWriter, r *http.Request) {
	t, ok := a.subject(w, r)
	if !ok {
		return
	}
	w.Header().Set("X-Subject-Token", r.Header.Get("X-Subject-Token"))
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"token": a.tokenView(r, t, !r.URL.Query().Has("nocatalog"))})
}

func (a *API) checkToken(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.subject(w, r); !ok {
		return
	}
	w.Header().Set("X-Subject-Token", r.Header.Get("X-Subject-Token"))
	w.WriteHeader(http.StatusOK)
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.subject(w, r); !ok {
		return
	}
	sub := r.Header.Get("X-Subject-Token")
	if err := a.cfg.Store.Revoke(r.Context(), sub); err != nil {
		a.fail(w, r, err)
		return
	}
	if a.cfg.Cache != nil {
		a.cfg.Cache.Forget(sub)
	}
	a.log.Info("token revoked", "request_id", httpkit.RequestID(r.Context()), "by", caller(r.Context()).UserID)
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) authCatalog(w http.ResponseWriter, r *http.Request) {
	if caller(r.Context()).ProjectID == "" {
		writeError(w, http.StatusForbidden, "A project-scoped token is required to produce a service catalog.")
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"catalog": a.catalog(r), "links": a.collectionLinks(r)})
}

func (a *API) authProjects(w http.ResponseWriter, r *http.Request) {
	ps, err := a.cfg.Store.ListProjects(r.Context(), identity.ProjectFilter{UserID: caller(r.Context()).UserID})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeProjects(w, r, ps)
}

func (a *API) authDomains(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"domains": []any{}, "links": a.collectionLinks(r)})
}
