package volume

import (
	"net/http"
	"regexp"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// versionsHandler is the version documents: GET / (Cinder's "all", 300
// Multiple Choices) and GET /v3/ (its "index", 200), both open to all.
type versionsHandler struct{ *base }

func (h *versionsHandler) register(rt *router) {
	rt.open("GET /{$}", false, h.all)
	rt.open("GET /v3", true, h.index)
	rt.open("GET /v3/{$}", true, h.index)
}

func (h *versionsHandler) all(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusMultipleChoices, h.document(r))
}

func (h *versionsHandler) index(w http.ResponseWriter, r *http.Request) {
	httpkit.WriteJSON(w, http.StatusOK, h.document(r))
}

// versionSuffix is what Cinder takes off the application URL before it
// writes the links: a trailing "/vN".
var versionSuffix = regexp.MustCompile(`v[1-9]+/?$`)

// document is {"versions": [v3.0]}, as Cinder's views write it.
func (h *versionsHandler) document(r *http.Request) map[string]any {
	root := versionSuffix.ReplaceAllString(baseURL(r)+r.URL.Path, "")
	if root == "" || root[len(root)-1] != '/' {
		root += "/"
	}
	return map[string]any{"versions": []any{map[string]any{
		"id": "v3.0", "status": "CURRENT", "version": maxVersion.String(), "min_version": minVersion.String(), "updated": versionUpdated,
		"links": []map[string]string{
			{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
			{"rel": "self", "href": root + "v3/"},
		},
		"media-types": []map[string]string{{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}},
	}}}
}
