package identity

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
)

// tokensHandler is /v3/auth/tokens: issuing a token (password or token
// method, project scope), and validating, checking and revoking one named
// by X-Subject-Token.
type tokensHandler struct {
	*base
	catalog *catalogHandler
}

func (h *tokensHandler) register(rt *router) {
	rt.open("POST /v3/auth/tokens", h.issueToken)
	rt.authed("GET /v3/auth/tokens", "identity:validate_token", h.validateToken)
	rt.authed("HEAD /v3/auth/tokens", "identity:check_token", h.checkToken)
	rt.authed("DELETE /v3/auth/tokens", "identity:revoke_token", h.revokeToken)
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

func (h *tokensHandler) issueToken(w http.ResponseWriter, r *http.Request) {
	var body authBody
	if err := h.decode(w, r, "auth", &body); err != nil {
		h.fail(w, r, err)
		return
	}
	req, err := parseAuth(r, &body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	req.Source = r.RemoteAddr
	t, secret, err := h.cfg.Store.Issue(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("token issued", "request_id", httpkit.RequestID(r.Context()), "user", t.User.ID, "project", projectID(t), "methods", t.Methods)
	w.Header().Set("X-Subject-Token", secret)
	httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"token": h.tokenView(r, t, !r.URL.Query().Has("nocatalog"))})
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
func (h *tokensHandler) tokenView(r *http.Request, t *identity.Token, catalog bool) map[string]any {
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
			v["catalog"] = h.catalog.catalog(r, t.Project.ID)
		}
	}
	return v
}

// subject validates the X-Subject-Token of a token request.
func (h *tokensHandler) subject(r *http.Request) (*identity.Token, error) {
	sub := r.Header.Get("X-Subject-Token")
	if sub == "" {
		return nil, badRequest("Invalid input for field 'X-Subject-Token': the header is required.")
	}
	t, err := h.cfg.Store.Validate(r.Context(), sub)
	if errors.Is(err, identity.ErrTokenNotFound) {
		return nil, notFound("Could not find token: %s.", abbrev(sub))
	}
	if err != nil {
		return nil, err
	}
	// A token may always look at itself; looking at another's needs the rule.
	if t.User.ID != caller(r.Context()).UserID {
		if err := h.check(r.Context(), "identity:validate_token", map[string]string{"user_id": t.User.ID}); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func abbrev(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

func (h *tokensHandler) validateToken(w http.ResponseWriter, r *http.Request) {
	t, err := h.subject(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("X-Subject-Token", r.Header.Get("X-Subject-Token"))
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"token": h.tokenView(r, t, !r.URL.Query().Has("nocatalog"))})
}

func (h *tokensHandler) checkToken(w http.ResponseWriter, r *http.Request) {
	if _, err := h.subject(r); err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("X-Subject-Token", r.Header.Get("X-Subject-Token"))
	w.WriteHeader(http.StatusOK)
}

func (h *tokensHandler) revokeToken(w http.ResponseWriter, r *http.Request) {
	if _, err := h.subject(r); err != nil {
		h.fail(w, r, err)
		return
	}
	sub := r.Header.Get("X-Subject-Token")
	if err := h.cfg.Store.Revoke(r.Context(), sub); err != nil {
		h.fail(w, r, err)
		return
	}
	if h.cfg.Cache != nil {
		h.cfg.Cache.Forget(sub)
	}
	h.log.Info("token revoked", "request_id", httpkit.RequestID(r.Context()), "by", caller(r.Context()).UserID)
	w.WriteHeader(http.StatusNoContent)
}
