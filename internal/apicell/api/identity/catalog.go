package identity

import (
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// catalogHandler is the service catalog: as a token's catalog
// (GET /v3/auth/catalog, and in a token's body), and as Keystone's
// services, endpoints and regions. It comes from the configuration, not
// the store.
type catalogHandler struct {
	*base
}

func (h *catalogHandler) register(rt *router) {
	rt.authed("GET /v3/auth/catalog", "", h.authCatalog)
	rt.authed("GET /v3/services", "identity:list_services", h.listServices)
	rt.authed("GET /v3/endpoints", "identity:list_endpoints", h.listEndpoints)
	rt.authed("GET /v3/regions", "identity:list_regions", h.listRegions)
}

// catalog is the service catalog for a request of a token scoped to
// project: every service with a public, an internal and an admin endpoint
// (all the same URL), the project put in the URLs that template it.
func (h *catalogHandler) catalog(r *http.Request, project string) []map[string]any {
	base := httpkit.Origin(r)
	out := make([]map[string]any, 0, len(h.cfg.Catalog))
	for _, e := range h.cfg.Catalog {
		url := strings.ReplaceAll(e.URL(base), ProjectIDTemplate, project)
		var eps []map[string]any
		for _, iface := range []string{"public", "internal", "admin"} {
			eps = append(eps, map[string]any{"id": endpointID(e.Type, iface), "interface": iface, "region": h.cfg.Region, "region_id": h.cfg.Region, "url": url})
		}
		out = append(out, map[string]any{"id": serviceID(e.Type), "type": e.Type, "name": e.Name, "endpoints": eps})
	}
	return out
}

// Service and endpoint ids are stable names, so that the catalog needs
// no table.
func serviceID(typ string) string         { return typ + "-service" }
func endpointID(typ, iface string) string { return typ + "-" + iface }

func (h *catalogHandler) authCatalog(w http.ResponseWriter, r *http.Request) {
	if caller(r.Context()).ProjectID == "" {
		h.fail(w, r, httpkit.Errorf(http.StatusForbidden, "A project-scoped token is required to produce a service catalog."))
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"catalog": h.catalog(r, caller(r.Context()).ProjectID), "links": h.collectionLinks(r)})
}

func (h *catalogHandler) listServices(w http.ResponseWriter, r *http.Request) {
	out := []map[string]any{}
	for _, e := range h.cfg.Catalog {
		out = append(out, map[string]any{"id": serviceID(e.Type), "type": e.Type, "name": e.Name, "enabled": true,
			"links": links(h.rootURL(r) + "/v3/services/" + serviceID(e.Type))})
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"services": out, "links": h.collectionLinks(r)})
}

func (h *catalogHandler) listEndpoints(w http.ResponseWriter, r *http.Request) {
	out := []map[string]any{}
	for _, e := range h.cfg.Catalog {
		for _, iface := range []string{"public", "internal", "admin"} {
			out = append(out, map[string]any{"id": endpointID(e.Type, iface), "interface": iface, "region": h.cfg.Region, "region_id": h.cfg.Region,
				"service_id": serviceID(e.Type), "url": e.URL(httpkit.Origin(r)), "enabled": true,
				"links": links(h.rootURL(r) + "/v3/endpoints/" + endpointID(e.Type, iface))})
		}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"endpoints": out, "links": h.collectionLinks(r)})
}

func (h *catalogHandler) listRegions(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"regions": []any{map[string]any{"id": h.cfg.Region, "description": "", "parent_region_id": nil,
		"links": links(h.rootURL(r) + "/v3/regions/" + h.cfg.Region)}}, "links": h.collectionLinks(r)})
}
