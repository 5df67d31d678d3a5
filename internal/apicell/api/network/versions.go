package network

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// versionsHandler is the version document (GET /, open to all) and the
// collections of v2.0 (GET /v2.0).
type versionsHandler struct{ *base }

func (h *versionsHandler) register(rt *router) {
	rt.open("GET /{$}", h.versions)
	rt.handle("GET /v2.0", h.resources)
	rt.handle("GET /v2.0/{$}", h.resources)
}

// versions answers GET /: the one version this endpoint serves.
func (h *versionsHandler) versions(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"versions": []any{map[string]any{
		"id": "v2.0", "status": "CURRENT",
		"links": []map[string]string{{"rel": "self", "href": baseURL(r) + "/v2.0/"}},
	}}})
}

// resources answers GET /v2.0/: the core collections served.
func (h *versionsHandler) resources(w http.ResponseWriter, r *http.Request) {
	root := baseURL(r) + "/v2.0/"
	var out []map[string]any
	for _, c := range [][2]string{{"network", "networks"}, {"subnet", "subnets"}, {"port", "ports"}} {
		out = append(out, map[string]any{"name": c[0], "collection": c[1],
			"links": []map[string]string{{"rel": "self", "href": root + c[1]}}})
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"resources": out})
}
