package network_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions"
)

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
	for _, a := range []string{"external-net", "net-mtu", "project-id", "binding", "pagination", "sorting", "filter-validation",
		"security-group", "stateful-security-group", "security-groups-normalized-cidr", "security-groups-rules-belongs-to-default-sg",
		"standard-attr-description", "standard-attr-revisions", "standard-attr-timestamp", "standard-attr-tag", "revision-if-match",
		"quotas", "quota_details"} {
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
