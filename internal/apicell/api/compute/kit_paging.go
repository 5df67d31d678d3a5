package compute

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// queryLimit checks the limit and marker query parameters (Nova's
// pagination_parameters) and returns the page size: at most 1000
// (max_limit), 1000 when absent, 0 meaning an empty page.
func queryLimit(q url.Values) (int, error) {
	for _, s := range q["limit"] {
		if s == "" {
			return 0, bad("Invalid input for query parameters limit. Value: . '' should be non-empty")
		}
		if strings.Trim(s, "0123456789") != "" {
			return 0, bad("Invalid input for query parameters limit. Value: %s. %s does not match '^[0-9]*$'", s, pyRepr(s))
		}
	}
	limit := 1000
	if s := lastValue(q, "limit"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n < limit {
			limit = n
		}
	}
	return limit, nil
}

// nextLink is Nova's "next" collection link: this request's query
// parameters, sorted, with the marker set.
func nextLink(r *http.Request, collection, marker string) []map[string]string {
	q := url.Values{}
	for k, v := range r.URL.Query() {
		q.Set(k, v[len(v)-1])
	}
	q.Set("marker", marker)
	prefix := httpkit.Origin(r) + "/v2.1"
	if p, _ := r.Context().Value(keyPathProject).(string); p != "" {
		prefix += "/" + p
	}
	return []map[string]string{{"rel": "next", "href": prefix + "/" + collection + "?" + q.Encode()}}
}

// queryOffset checks the offset query parameters (Nova's
// non_negative_integer) and returns the last one's value, 0 when absent.
// An offset past every group lists none.
func queryOffset(q url.Values) (int, error) {
	for _, s := range q["offset"] {
		if s == "" {
			return 0, bad("Invalid input for query parameters offset. Value: . '' should be non-empty")
		}
		if strings.Trim(s, "0123456789") != "" {
			return 0, bad("Invalid input for query parameters offset. Value: %s. %s does not match '^[0-9]*$'", s, pyRepr(s))
		}
	}
	s := lastValue(q, "offset")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > 1<<31 {
		n = 1 << 31 // more digits than any offset needs
	}
	return n, nil
}
