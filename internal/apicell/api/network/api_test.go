package network_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/apiversions"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions"
)

func TestVersionDocuments(t *testing.T) {
	e := newEnv(t)
	pages, err := apiversions.ListVersions(e.client(demo)).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	vs, err := apiversions.ExtractAPIVersions(pages)
	if err != nil || len(vs) != 1 || vs[0].ID != "v2.0" || vs[0].Status != "CURRENT" {
		t.Fatalf("versions = %+v, %v", vs, err)
	}
	// The self link keeps the mount prefix, with and without a slash.
	for _, path := range []string{"/networking/", "/networking"} {
		var doc struct {
			Versions []struct {
				Links []struct{ Rel, Href string } `json:"links"`
			} `json:"versions"`
		}
		r := e.do(http.MethodGet, path, "", nil)
		r.json(t, &doc)
		if r.status != 200 || len(doc.Versions) != 1 || doc.Versions[0].Links[0].Href != e.srv.URL+"/networking/v2.0/" {
			t.Fatalf("GET %s = %d %s", path, r.status, r.body)
		}
	}
	res, err := apiversions.ListVersionResources(e.client(demo), "v2.0").AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := apiversions.ExtractVersionResources(res)
	if err != nil || len(rs) != 3 {
		t.Fatalf("resources = %+v, %v", rs, err)
	}
	got := map[string]string{}
	for _, r := range rs {
		got[r.Name] = r.Collection
	}
	if got["network"] != "networks" || got["subnet"] != "subnets" || got["port"] != "ports" {
		t.Fatalf("resources = %+v", rs)
	}
	if r := e.do(http.MethodGet, "/networking/v2.0", demo, nil); r.status != 200 || !strings.Contains(string(r.body), e.srv.URL+"/networking/v2.0/networks") {
		t.Fatalf("GET /v2.0 = %d %s", r.status, r.body)
	}
}

func TestExtensions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pages, err := extensions.List(e.client(demo)).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exts, err := extensions.ExtractExtensions(pages)
	if err != nil {
		t.Fatal(err)
	}
	aliases := map[string]bool{}
	for _, x := range exts {
		if x.Name == "" || x.Description == "" || x.Updated == "" {
			t.Fatalf("incomplete extension %+v", x)
		}
		aliases[x.Alias] = true
	}
	for _, a := range []string{"external-net", "net-mtu", "project-id", "binding", "pagination", "sorting", "filter-validation"} {
		if !aliases[a] {
			t.Errorf("extension %s not listed: %v", a, aliases)
		}
	}
	x, err := extensions.Get(ctx, e.client(demo), "net-mtu").Extract()
	if err != nil || x.Alias != "net-mtu" {
		t.Fatalf("get net-mtu = %+v, %v", x, err)
	}
	_, err = extensions.Get(ctx, e.client(demo), "router").Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get an extension not served: %v", err)
	}
}

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
