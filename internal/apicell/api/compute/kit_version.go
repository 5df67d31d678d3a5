package compute

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

var v269 = Version{2, 69}

// atLeast reports whether the request's microversion is at least 2.minor.
func atLeast(r *http.Request, minor int) bool {
	return apiVersion(r.Context()).AtLeast(Version{2, minor})
}

// v253 gives hypervisors and services UUIDs.
var v253 = Version{2, 53}

// The microversions this API serves. Some change only what is not served
// yet, and so change nothing here: 2.72 (ports with a resource request),
// 2.76 and 2.82 (os-server-external-events), 2.80 (os-migrations). 2.87
// (rescue of a volume-backed server) is checkRescueVolumeBacked's.
// docs/architecture.md §7.1 says what each does.
var (
	MinVersion = Version{2, 1}
	MaxVersion = Version{2, 92}
)

// Version is a compute API microversion.
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v >= o.
func (v Version) AtLeast(o Version) bool {
	return v.Major > o.Major || (v.Major == o.Major && v.Minor >= o.Minor)
}

// apiVersion is the microversion negotiated for the request.
func apiVersion(ctx context.Context) Version {
	if v, ok := ctx.Value(keyVersion).(Version); ok {
		return v
	}
	return MinVersion
}

// negotiate reads the requested microversion from OpenStack-API-Version
// ("compute 2.x") or X-OpenStack-Nova-API-Version; none means the minimum,
// "latest" the maximum. A request refused is a 400 when it does not
// parse, a 406 when it is out of range (Nova's InvalidAPIVersionString and
// InvalidGlobalAPIVersion).
func negotiate(h http.Header) (Version, *httpkit.Fault) {
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
		return Version{}, httpkit.Errorf(http.StatusBadRequest, "API Version String %s is of invalid format. Must be of format MajorNum.MinorNum.", want)
	}
	v := Version{major, minor}
	if !v.AtLeast(MinVersion) || !MaxVersion.AtLeast(v) {
		return Version{}, httpkit.Errorf(http.StatusNotAcceptable, "Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, MinVersion, MaxVersion)
	}
	return v, nil
}

func setVersionHeaders(w http.ResponseWriter, v Version) {
	w.Header().Set("OpenStack-API-Version", "compute "+v.String())
	w.Header().Set("X-OpenStack-Nova-API-Version", v.String())
	w.Header().Add("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
}
