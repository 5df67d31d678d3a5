package compute

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// The microversions this API serves.
var (
	MinVersion = Version{2, 1}
	MaxVersion = Version{2, 69}
)

// Version is a compute API microversion.
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v >= o.
func (v Version) AtLeast(o Version) bool {
	return v.Major > o.Major || (v.Major == o.Major && v.Minor >= o.Minor)
}

const keyVersion ctxKey = 100

// apiVersion is the microversion negotiated for the request.
func apiVersion(ctx context.Context) Version {
	if v, ok := ctx.Value(keyVersion).(Version); ok {
		return v
	}
	return MinVersion
}

// versionError is a microversion request refused: 400 when it does not
// parse, 406 when it is out of range (Nova's InvalidAPIVersionString and
// InvalidGlobalAPIVersion). Its message is the fault's.
type versionError struct {
	status int
	msg    string
}

// negotiate reads the requested microversion from OpenStack-API-Version
// ("compute 2.x") or X-OpenStack-Nova-API-Version; none means the minimum,
// "latest" the maximum.
func negotiate(h http.Header) (Version, *versionError) {
	var want string
	for _, v := range h.Values("OpenStack-API-Version") {
		for _, part := range strings.Split(v, ",") {
			svc, ver, ok := strings.Cut(strings.TrimSpace(part), " ")
			if ok && strings.EqualFold(svc, "compute") {
				want = strings.TrimSpace(ver)
			}
		}
	}
	if want == "" {
		want = strings.TrimSpace(h.Get("X-OpenStack-Nova-API-Version"))
	}
	if want == "" {
		return MinVersion, nil
	}
	if strings.EqualFold(want, "latest") {
		return MaxVersion, nil
	}
	a, b, ok := strings.Cut(want, ".")
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return Version{}, &versionError{http.StatusBadRequest, fmt.Sprintf("API Version String %s is of invalid format. Must be of format MajorNum.MinorNum.", want)}
	}
	v := Version{major, minor}
	if !v.AtLeast(MinVersion) || !MaxVersion.AtLeast(v) {
		return Version{}, &versionError{http.StatusNotAcceptable, fmt.Sprintf("Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, MinVersion, MaxVersion)}
	}
	return v, nil
}

func setVersionHeaders(w http.ResponseWriter, v Version) {
	w.Header().Set("OpenStack-API-Version", "compute "+v.String())
	w.Header().Set("X-OpenStack-Nova-API-Version", v.String())
	w.Header().Add("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
}

func versionDoc(r *http.Request) map[string]any {
	base := baseURL(r)
	return map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": MaxVersion.String(), "min_version": MinVersion.String(),
		"updated": "2013-07-23T11:33:21Z",
		"links": []map[string]string{{"rel": "self", "href": base + "/v2.1/"},
			{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}},
		"media-types": []map[string]string{{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}},
	}
}

// versions answers GET /: the versions this endpoint serves.
func (a *API) versions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"versions": []any{versionDoc(r)}})
}

// version answers GET /v2.1.
func (a *API) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": versionDoc(r)})
}
