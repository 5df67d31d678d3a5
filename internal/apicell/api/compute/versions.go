package compute

import (
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// versionsHandler is the version documents, as Nova's versions.py and
// views/versions.py write them: GET / lists v2.0 and v2.1; GET /v2 and
// /v2.1 (with or without the slash) describe one, without a token, as
// does GET /v2.1/versions/{id} with one; any other path outside /v2 and
// /v2.1 is 300 with the choices (route sends these here).
type versionsHandler struct {
	*base
}

func (h *versionsHandler) register(rt *router) {
	rt.versions = h
	// The bare /v2.1 and /v2.1/ are served by route (discovery, no
	// token); /v2.1/{project_id}/ comes here, behind authentication, and
	// its project id must be the caller's, as in Nova.
	rt.handle("GET /v2.1/{$}", "", h.version)
	rt.handle("GET /v2.1/versions/{id}", "", h.showVersion)
}

// versionEntry is one entry of Nova's VERSIONS.
type versionEntry struct {
	id, status, version, minVersion, updated, mediaType string
	// path is the version's root under the endpoint ("v2" or "v2.1").
	path string
}

// apiVersions are Nova's VERSIONS, in the order its views sort them, as
// the releases clients are checked against (Zed to 2025.1) list them: v2.0
// SUPPORTED. (Nova's master deprecated v2.0 on 2025-07-04, df630cd1b2.)
var apiVersions = []versionEntry{
	{id: "v2.0", status: "SUPPORTED", updated: "2011-01-21T11:33:21Z",
		mediaType: "application/vnd.openstack.compute+json;version=2", path: "v2"},
	{id: "v2.1", status: "CURRENT", version: MaxVersion.String(), minVersion: MinVersion.String(), updated: "2013-07-23T11:33:21Z",
		mediaType: "application/vnd.openstack.compute+json;version=2.1", path: "v2.1"},
}

func findVersion(id string) (versionEntry, bool) {
	for _, v := range apiVersions {
		if v.id == id {
			return v, true
		}
	}
	return versionEntry{}, false
}

func (v versionEntry) mediaTypes() []map[string]string {
	return []map[string]string{{"base": "application/json", "type": v.mediaType}}
}

// versions is GET / (Nova's build_versions): each version with a self
// link to its root, no media types.
func (h *versionsHandler) versions(w http.ResponseWriter, r *http.Request) {
	base := httpkit.Origin(r)
	out := make([]map[string]any, 0, len(apiVersions))
	for _, v := range apiVersions {
		out = append(out, map[string]any{
			"id": v.id, "status": v.status, "version": v.version, "min_version": v.minVersion, "updated": v.updated,
			"links": []map[string]string{{"rel": "self", "href": base + "/" + v.path + "/"}},
		})
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"versions": out})
}

// versionDoc is Nova's build_version of v, whose self link is root (the
// application the request came to, with a slash).
func versionDoc(v versionEntry, root string) map[string]any {
	return map[string]any{"version": map[string]any{
		"id": v.id, "status": v.status, "version": v.version, "min_version": v.minVersion, "updated": v.updated,
		"links":       []map[string]string{{"rel": "self", "href": root}, {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}},
		"media-types": v.mediaTypes(),
	}}
}

// version is GET /v2.1 and /v2.1/: the v2.1 document, under microversion
// control.
func (h *versionsHandler) version(w http.ResponseWriter, r *http.Request) {
	v, _ := findVersion("v2.1")
	httpkit.WriteJSON(w, http.StatusOK, versionDoc(v, httpkit.Origin(r)+"/v2.1/"))
}

// legacyVersion is GET /v2 and /v2/: the v2.0 document, without
// microversions (Nova's legacy v2 pipeline).
func (h *versionsHandler) legacyVersion(w http.ResponseWriter, r *http.Request) {
	v, _ := findVersion("v2.0")
	httpkit.WriteJSON(w, http.StatusOK, versionDoc(v, httpkit.Origin(r)+"/v2/"))
}

// showVersion is GET /v2.1/versions/{id}: the document of v2.0 or v2.1,
// its self link the v2.1 root as in Nova; 404 for another id.
func (h *versionsHandler) showVersion(w http.ResponseWriter, r *http.Request) {
	v, ok := findVersion(r.PathValue("id"))
	if !ok {
		h.fail(w, r, fault(http.StatusNotFound, "The resource could not be found."))
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, versionDoc(v, httpkit.Origin(r)+"/v2.1/"))
}

// choices is Nova's 300 Multiple Choices for a path under neither
// version: each version with a link to the path under its root.
func (h *versionsHandler) choices(w http.ResponseWriter, r *http.Request) {
	base := httpkit.Origin(r)
	tail := strings.Trim(r.URL.Path, "/")
	out := make([]map[string]any, 0, len(apiVersions))
	for _, v := range apiVersions {
		href := base + "/" + v.path
		if tail != "" {
			href += "/" + tail
		}
		out = append(out, map[string]any{
			"id": v.id, "status": v.status, "media-types": v.mediaTypes(),
			"links": []map[string]string{{"rel": "self", "href": href}},
		})
	}
	httpkit.WriteJSON(w, http.StatusMultipleChoices, map[string]any{"choices": out})
}
