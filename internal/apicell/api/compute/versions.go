package compute

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// versionsHandler is the version documents: GET / and GET /v2.1.
type versionsHandler struct {
	*base
}

func (h *versionsHandler) register(rt *router) {
	rt.mux.HandleFunc("GET /{$}", h.versions)
	// The v2.1 document is under microversion control, and a project id in
	// its path must be the caller's, as in Nova (GET / is neither).
	rt.mux.HandleFunc("GET /v2.1", h.public(h.version))
	rt.handle("GET /v2.1/{$}", "", h.version)
}

func versionDoc(r *http.Request) map[string]any {
	base := httpkit.Origin(r)
	return map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": MaxVersion.String(), "min_version": MinVersion.String(),
		"updated": "2013-07-23T11:33:21Z",
		"links": []map[string]string{{"rel": "self", "href": base + "/v2.1/"},
			{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}},
		"media-types": []map[string]string{{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}},
	}
}

// versions answers GET /: the versions this endpoint serves.
func (h *versionsHandler) versions(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"versions": []any{versionDoc(r)}})
}

// version answers GET /v2.1.
func (h *versionsHandler) version(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"version": versionDoc(r)})
}
