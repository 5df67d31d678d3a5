package compute_test

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestRoutes: the router tells no such route (404) from a wrong method
// (405), takes a first segment that names no resource as the caller's
// project id, and answers every refusal with a fault.
func TestRoutes(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v2.1/servers/x/y", 404},
		{"GET", "/v2.1/servers/detail/x", 404},
		{"GET", "/v2.1/demo/nosuch", 404},
		{"GET", "/v2.1/demo/nosuch/deeper", 404},
		// A first segment that names no resource is a project id, as in
		// Nova, and it must be the caller's.
		{"GET", "/v2.1/nosuch", 400},
		{"GET", "/v2.1/other/servers", 400},
		{"GET", "/v2.1/demo", 200},
		{"GET", "/v2.1/demo/", 200},
		{"GET", "/v2.1/demo/flavors", 200},
		// Outside /v2 and /v2.1 is Nova's version application: 300 with
		// the choices; /v2/... is its legacy API, which is not served.
		{"GET", "/v3/servers", 300},
		{"GET", "/v2/servers", 404},
		{"GET", "/v2.1/servers/00000000-0000-0000-0000-000000000000", 404},
		{"DELETE", "/v2.1/servers/00000000-0000-0000-0000-000000000000", 404},
		{"GET", "/v2.1/flavors/999", 404},
		{"PUT", "/v2.1/servers", 405},
		{"DELETE", "/v2.1/servers", 405},
		{"PATCH", "/v2.1/servers", 405},
		{"POST", "/v2.1/flavors/1", 405},
		{"DELETE", "/v2.1/flavors", 405},
		// Nova's version documents answer any method.
		{"POST", "/", 200},
	} {
		r := tr.Do(t, c.method, c.path, demo, nil)
		if r.Status != c.status {
			t.Errorf("%s %s: %s, want %d", c.method, c.path, r, c.status)
			continue
		}
		if c.status >= 400 {
			testtree.Fault(t, r, c.status)
		}
	}
}
