package network_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/apiversions"
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
