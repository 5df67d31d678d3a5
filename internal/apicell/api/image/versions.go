package image

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// apiVersions are the Image API versions this endpoint reports: all of
// them are "/v2/" (Glance's minor versions mark features; 2.7 is the
// newest whose image fields — os_hidden, os_hash_algo, os_hash_value —
// this API has).
var apiVersions = []struct{ id, status string }{
	{"v2.7", "CURRENT"}, {"v2.6", "SUPPORTED"}, {"v2.5", "SUPPORTED"}, {"v2.4", "SUPPORTED"}, {"v2.3", "SUPPORTED"},
	{"v2.2", "SUPPORTED"}, {"v2.1", "SUPPORTED"}, {"v2.0", "SUPPORTED"},
}

// versionsHandler is the versions document (which the router answers
// itself, see API.route) and GET /v2/info/import.
type versionsHandler struct{ *base }

func (h *versionsHandler) register(rt *router) {
	rt.handle("GET /v2/info/import", h.importInfo)
}

// versions answers the versions document: 200 for GET /versions, and 300
// Multiple Choices for the root (or any path that names no version), as
// Glance does.
func (h *versionsHandler) versions(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		href := baseURL(r) + "/v2/"
		out := make([]map[string]any, len(apiVersions))
		for i, v := range apiVersions {
			out[i] = map[string]any{"id": v.id, "status": v.status, "links": []map[string]string{{"rel": "self", "href": href}}}
		}
		httpkit.WriteMarshal(w, status, map[string]any{"versions": out})
	}
}

// importInfo answers GET /v2/info/import: no interoperable import method
// is enabled, so clients upload with PUT /file.
func (h *versionsHandler) importInfo(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteMarshal(w, http.StatusOK, map[string]any{"import-methods": map[string]any{
		"description": "Import methods available.", "type": "array", "value": []string{},
	}})
}
