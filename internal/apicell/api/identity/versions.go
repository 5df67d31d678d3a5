package identity

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// versionsHandler is version discovery: GET / lists the one version, v3.
type versionsHandler struct {
	*base
}

func (h *versionsHandler) register(rt *router) {
	rt.open("GET /{$}", h.versions)
	rt.open("GET /v3", h.version)
	rt.open("GET /v3/{$}", h.version)
}

func (h *versionsHandler) versions(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{h.versionDoc(r)}}})
}

func (h *versionsHandler) version(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"version": h.versionDoc(r)})
}

func (h *versionsHandler) versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []any{map[string]any{"rel": "self", "href": h.rootURL(r) + "/v3/"}},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}
