package identity

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
)

// domainsHandler is /v3/domains, and /v3/auth/domains (the domains a
// token may be scoped to: none, as only project scope is offered).
type domainsHandler struct {
	*base
}

func (h *domainsHandler) register(rt *router) {
	rt.authed("GET /v3/auth/domains", "", h.authDomains)
	rt.authed("GET /v3/domains", "identity:list_domains", h.listDomains)
	rt.authed("GET /v3/domains/{id}", "identity:get_domain", h.showDomain)
}

func (h *domainsHandler) domainView(r *http.Request, d identity.Domain) map[string]any {
	return map[string]any{"id": d.ID, "name": d.Name, "description": d.Description, "enabled": d.Enabled, "tags": []string{}, "options": map[string]any{},
		"links": links(h.rootURL(r) + "/v3/domains/" + d.ID)}
}

// domainRef is a domain's id and name, or only the id if it cannot be
// read.
func (h *domainsHandler) domainRef(r *http.Request, id string) map[string]any {
	d, err := h.cfg.Store.GetDomain(r.Context(), id)
	if err != nil {
		return map[string]any{"id": id}
	}
	return map[string]any{"id": d.ID, "name": d.Name}
}

func (h *domainsHandler) listDomains(w http.ResponseWriter, r *http.Request) {
	ds, err := h.cfg.Store.ListDomains(r.Context(), r.URL.Query().Get("name"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]map[string]any, len(ds))
	for i, d := range ds {
		out[i] = h.domainView(r, d)
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"domains": out, "links": h.collectionLinks(r)})
}

func (h *domainsHandler) showDomain(w http.ResponseWriter, r *http.Request) {
	d, err := h.cfg.Store.GetDomain(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"domain": h.domainView(r, d)})
}

func (h *domainsHandler) authDomains(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"domains": []any{}, "links": h.collectionLinks(r)})
}
