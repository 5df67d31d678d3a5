package network_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestErrorsAreNeutronShaped(t *testing.T) {
	e := newEnv(t)
	r := e.do(http.MethodGet, "/networking/v2.0/routers", demo, nil)
	if typ, _ := r.fault(t, http.StatusNotFound); typ != "HTTPNotFound" {
		t.Fatalf("unknown collection: %s", typ)
	}
	if r.header.Get("X-Openstack-Request-Id") == "" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("headers = %v", r.header)
	}
	r = e.do(http.MethodPatch, "/networking/v2.0/networks", demo, nil)
	r.fault(t, http.StatusMethodNotAllowed)
	r = e.do(http.MethodGet, "/networking/v2.0/networks", ":nobody", nil)
	r.fault(t, http.StatusUnauthorized)
	r = e.do(http.MethodGet, "/networking/v2.0/networks/"+"00000000-0000-0000-0000-000000000000", demo, nil)
	if typ, msg := r.fault(t, http.StatusNotFound); typ != "NetworkNotFound" ||
		msg != "Network 00000000-0000-0000-0000-000000000000 could not be found." {
		t.Fatalf("missing network: %s %q", typ, msg)
	}
	// Old clients' ".json" suffix is accepted.
	if r := e.do(http.MethodGet, "/networking/v2.0/networks.json", demo, nil); r.status != 200 {
		t.Fatalf("networks.json = %d %s", r.status, r.body)
	}
	// Bodies that are not a resource.
	for _, body := range []string{"", "null", "[]", "{", `{"network": []}`, `{"port": {}}`, `{"networks": [{"name": "x"}]}`} {
		r := e.do(http.MethodPost, "/networking/v2.0/networks", admin, body)
		if typ, _ := r.fault(t, http.StatusBadRequest); typ != "HTTPBadRequest" {
			t.Errorf("body %q: %s %s", body, typ, r.body)
		}
	}
	if n := e.count("networks"); n != 1 {
		t.Fatalf("networks = %d after refused creates; want 1", n)
	}
	r = e.do(http.MethodDelete, "/networking/v2.0/networks/"+e.private, admin, `{"x": 1}`)
	if _, msg := r.fault(t, http.StatusBadRequest); msg != "Request body is not supported in DELETE." {
		t.Fatalf("delete with a body: %s", msg)
	}
}
