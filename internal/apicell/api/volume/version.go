package volume

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// version is a Block Storage microversion, 3.x.
type version struct{ major, minor int }

func (v version) String() string { return strconv.Itoa(v.major) + "." + strconv.Itoa(v.minor) }

func (v version) less(o version) bool {
	return v.major < o.major || (v.major == o.major && v.minor < o.minor)
}

var (
	// minVersion is what a request without the header gets.
	minVersion = version{3, 0}
	// maxVersion is the newest microversion served. 3.60 leaves out the
	// per-project default types (3.62) and the URLs without a project id
	// (3.67).
	maxVersion = version{3, 60}
)

// versionUpdated is the "updated" of the version documents: the date of
// Cinder's release that brought maxVersion (Victoria).
const versionUpdated = "2020-09-01T00:00:00Z"

// versionHeader is the request and response header of the microversion.
const versionHeader = "OpenStack-API-Version"

// versionFormat is Cinder's check of a version string: no leading zeros,
// a major of at least 1.
var versionFormat = regexp.MustCompile(`^([1-9]\d*)\.([1-9]\d*|0)$`)

// negotiate is the microversion a request asks for: the first "volume"
// item of its OpenStack-API-Version headers, minVersion without one,
// maxVersion for "latest". A string that is no version is a 400 and one
// outside [minVersion, maxVersion] a 406, with Cinder's texts.
func negotiate(h http.Header) (version, error) {
	var want string
	found := false
	for _, line := range h.Values(versionHeader) {
		for item := range strings.SplitSeq(line, ",") {
			service, v, _ := strings.Cut(strings.TrimSpace(item), " ")
			if strings.EqualFold(service, "volume") {
				want, found = strings.TrimSpace(v), true
				break
			}
		}
		if found {
			break
		}
	}
	if !found {
		// Cinder's header without a volume item is unverified (see the
		// reference notes, 1.2); such a request is taken as one without a
		// header.
		return minVersion, nil
	}
	if strings.EqualFold(want, "latest") {
		return maxVersion, nil
	}
	m := versionFormat.FindStringSubmatch(want)
	if m == nil {
		return version{}, fault(http.StatusBadRequest,
			fmt.Sprintf("API Version String %s is of invalid format. Must be of format MajorNum.MinorNum.", want))
	}
	major, err1 := strconv.Atoi(m[1])
	minor, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil {
		// Too many digits for an int: no version this API could serve.
		return version{}, notAcceptable(want)
	}
	v := version{major, minor}
	if v.less(minVersion) || maxVersion.less(v) {
		return version{}, notAcceptable(v.String())
	}
	return v, nil
}

func notAcceptable(v string) error {
	return fault(http.StatusNotAcceptable, fmt.Sprintf("Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, minVersion, maxVersion))
}

type versionKey struct{}

// withVersion returns ctx carrying the request's microversion.
func withVersion(ctx context.Context, v version) context.Context {
	return context.WithValue(ctx, versionKey{}, v)
}

// requestVersion is the microversion of the request of ctx (minVersion
// when none was negotiated).
func requestVersion(ctx context.Context) version {
	if v, ok := ctx.Value(versionKey{}).(version); ok {
		return v
	}
	return minVersion
}
